"""Whether a call made a JIT compile or load machine code, so that its one-time cost is not a case's time.

The reference's numba kernels compile on a machine's first call and load from numba's cache on a
process's first call of each kernel: 0.1-0.5 s, where the call itself takes milliseconds. The
runner warms up once per op and dtype, but which kernel a call takes depends on its shape (the
serial or the parallel twin, the transposed convolution's placed kernel, ...), so a later case can
still be the one that pays. The runner (conformance/running/runner.py) watches the reference's timed
call with :class:`JitWatch` and, when it fired, times a second call for the case and counts the
difference as ``warm_up``.

It reads numba's own events ("numba:compiler_lock" wraps every compile and every cache load) and
whether numba was imported during the call; it never imports numba itself.

>>> with JitWatch() as watch:
...     total = sum(range(10))
>>> watch.fired
False
"""

from __future__ import annotations

import sys
from functools import cache
from types import TracebackType
from typing import Any

COMPILE_EVENT = "numba:compiler_lock"


@cache
def _flag_listener_class() -> type:
    """A numba event listener that sets ``watch.fired`` when a compile or a cache load starts (made
    on first use: numba is imported only by then)."""
    from numba.core import event

    class FlagListener(event.Listener):
        def __init__(self, watch: JitWatch) -> None:
            self.watch = watch

        def on_start(self, event: Any) -> None:
            self.watch.fired = True

        def on_end(self, event: Any) -> None:
            pass

    return FlagListener


class JitWatch:
    """A context manager: ``fired`` is True after the block if numba compiled or loaded machine code in
    it, or was first imported in it (its import is part of the first call's one-time cost)."""

    def __init__(self) -> None:
        self.fired = False
        self._listener: Any = None
        self._numba_before = False

    def __enter__(self) -> JitWatch:
        self.fired = False
        self._numba_before = "numba" in sys.modules
        if self._numba_before:
            from numba.core import event

            self._listener = _flag_listener_class()(self)
            event.register(COMPILE_EVENT, self._listener)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._listener is not None:
            from numba.core import event

            event.unregister(COMPILE_EVENT, self._listener)
            self._listener = None
        if not self._numba_before and "numba" in sys.modules:
            self.fired = True
