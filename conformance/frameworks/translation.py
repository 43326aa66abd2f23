"""Keeping an adapter's own translation code apart from the framework's call, so that an error in
the adapter is never blamed on the framework (and never hides as a framework's refusal).

An adapter builds the framework's arguments (layouts, pads, a graph) inside ``with translating():``
and calls the framework's op outside it. An exception raised inside becomes
:class:`AdapterTranslationError` (the original chained), which :func:`judge_error` — the adapter
hook of the trust work — names ``adapter_error``; ``Unsupported`` passes through unchanged (saying
the framework cannot express something is the adapter's job). Exceptions from the framework's call
are left to the default rule (``None``): ValueError/RuntimeError refused, NotImplementedError
unsupported, anything else crashed.

>>> try:
...     with translating("mlx"):
...         [1, 2][5]
... except AdapterTranslationError as error:
...     print(error, "->", judge_error(error))
the mlx adapter's translation failed: IndexError: list index out of range -> adapter_error
>>> judge_error(AdapterTranslationError("x")), judge_error(IndexError("framework"))
('adapter_error', None)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from conformance.judging.outcomes import ADAPTER_ERROR


class AdapterTranslationError(Exception):
    """The adapter's own code failed while translating torch's arguments: a bug of the adapter."""


@contextmanager
def translating(adapter: str) -> Iterator[None]:
    """Run the adapter's translation code; an error in it is the adapter's (see the module docstring)."""
    try:
        yield
    except NotImplementedError:  # Unsupported: a deliberate verdict of the adapter
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here is the adapter's own
        raise AdapterTranslationError(
            f"the {adapter} adapter's translation failed: {type(exc).__name__}: {exc}"
        ) from exc


def judge_error(error: BaseException) -> str | None:
    """``adapter_error`` for a failure of the adapter's translation, else None (the default rule).
    Compared by name too: across the worker's pipe the exception is rebuilt as a class of the same
    name when this module is not imported in the parent."""
    if isinstance(error, AdapterTranslationError) or type(error).__name__ == AdapterTranslationError.__name__:
        return ADAPTER_ERROR
    # Not through error_origin's adapter-line rule: a native framework (MLX, Paddle, LiteRT) raises from
    # C++ called on an adapter line, which that rule would blame on the adapter.
    return None


# The same rule under a name an adapter with a judge_error of its own can import (executorch_xnnpack.py):
# the repro scripts inline the adapter's imports verbatim, so no `import ... as ...` alias is needed.
judge_translation = judge_error
