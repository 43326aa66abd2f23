"""Measurements of the reference convolution against torch (not tests: nothing here asserts a time)."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable


def threads_from_argv(default: int, argv: list[str] | None = None) -> int:
    """--threads N of the command line (``argv``, default sys.argv[1:]), read before NumPy loads:
    OpenBLAS fixes its thread count when it is loaded.

    >>> threads_from_argv(1, ["-k", "X3D", "--threads", "2"]), threads_from_argv(1, ["-k", "X3D"])
    (2, 1)
    """
    argv = sys.argv[1:] if argv is None else argv
    return int(argv[argv.index("--threads") + 1]) if "--threads" in argv[:-1] else default


def pin_blas_threads(threads: int) -> None:
    """For a benchmark run as the main program, before it imports NumPy: OpenBLAS on ``threads``,
    like torch and numba; then reference_impl, whose import sets OpenBLAS's thread timeout
    (reference_impl.OPENBLAS_THREAD_TIMEOUT) while NumPy is still unloaded."""
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
    import reference_impl  # noqa: F401


def fastest_call(function: Callable[[], object], calls: int) -> float:
    """The fastest of ``calls`` calls of ``function``, in seconds: the least disturbed call on a
    shared machine."""
    best = math.inf
    for _ in range(calls):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best
