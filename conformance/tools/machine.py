"""The machine a benchmark runs on: thread counts, held equal for NumPy and torch, and the two
physical limits a convolution cannot beat (the roofline): float32 GEMM throughput and memory
bandwidth, each measured once per run.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

GEMM_SIZE = 2048  # a float32 (2048 x 2048) @ (2048 x 2048) product: 17.2 GFLOP, BLAS at its best
COPY_BYTES = 128 * 2**20  # far larger than any last-level cache, so the copy runs at memory speed
REPEATS = 3  # best of: the limits are what the machine *can* do
BLAS_ENVIRONMENT = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


@dataclass
class Threads:
    """How many threads each side computes with, and where the BLAS number comes from."""

    torch: int
    blas: int | None  # None: unknown (no threadpoolctl, no environment variable)
    blas_source: str  # "threadpoolctl", an environment variable's name, or "unknown"
    blas_libraries: list[dict[str, Any]] = field(default_factory=list)


@contextlib.contextmanager
def same_threads(threads: int | None = None) -> Iterator[Threads]:
    """Run torch and NumPy's BLAS with the same number of threads (default: torch's own count).

    With threadpoolctl installed, BLAS is limited to that number and its actual count read back;
    without it, the count comes from the usual environment variables (it can no longer be
    changed once NumPy is loaded). torch's setting is restored on exit.
    """
    wanted = threads or torch.get_num_threads()
    previous = torch.get_num_threads()
    torch.set_num_threads(wanted)
    restore_numba = _limit_numba_threads(wanted)
    try:
        try:
            from threadpoolctl import threadpool_info, threadpool_limits
        except ImportError:
            yield _threads_from_environment(wanted)
            return
        with threadpool_limits(limits=wanted, user_api="blas"):
            libraries = [
                {key: info.get(key) for key in ("internal_api", "version", "num_threads", "threading_layer")}
                for info in threadpool_info()
                if info.get("user_api") == "blas"
            ]
            counts = [library["num_threads"] for library in libraries if library["num_threads"]]
            yield Threads(torch.get_num_threads(), max(counts) if counts else None, "threadpoolctl", libraries)
    finally:
        torch.set_num_threads(previous)
        restore_numba()


def _limit_numba_threads(wanted: int) -> Callable[[], None]:
    """numba's threads (the reference's compiled kernels, or a plug-in's) to ``wanted``; returns the undo.

    numba loaded: its count is set now and restored on exit (never above the pool it started with).
    Not loaded yet (the reference imports it on its first compiled call): NUMBA_NUM_THREADS, which
    numba reads once at import, sizes its pool, unless the user set it; if numba is imported inside
    the block, this process's pool keeps that size. Without this a ``--threads 1`` run still
    computed on every core in numba.
    """
    numba = sys.modules.get("numba")
    if numba is None:
        if "NUMBA_NUM_THREADS" in os.environ:
            return lambda: None
        os.environ["NUMBA_NUM_THREADS"] = str(wanted)  # for an import inside the block; not for subprocesses after

        def unset() -> None:
            os.environ.pop("NUMBA_NUM_THREADS", None)

        return unset
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(wanted, numba.config.NUMBA_NUM_THREADS)))
    return lambda: numba.set_num_threads(previous)


def _threads_from_environment(torch_threads: int) -> Threads:
    for name in BLAS_ENVIRONMENT:
        value = os.environ.get(name, "")
        if value.isdigit():
            return Threads(torch_threads, int(value), name)
    return Threads(torch_threads, None, "unknown")


@dataclass
class Machine:
    """What every benchmark of one run shares; ``to_json`` is the report's ``machine``."""

    cpu: str
    logical_cpus: int | None
    threads: Threads
    gemm_flops_per_s: float
    bandwidth_bytes_per_s: float
    implementation: str = ""
    software: dict[str, str] = field(default_factory=dict)

    def roofline_seconds(self, flops: float, bytes_moved: float) -> tuple[float, str]:
        """The least time the work can take here, and what bounds it ("compute" or "memory")."""
        compute, memory = flops / self.gemm_flops_per_s, bytes_moved / self.bandwidth_bytes_per_s
        return (compute, "compute") if compute >= memory else (memory, "memory")

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu": self.cpu,
            "logical_cpus": self.logical_cpus,
            "implementation": self.implementation,
            "torch_threads": self.threads.torch,
            "blas_threads": self.threads.blas,
            "blas_threads_source": self.threads.blas_source,
            "blas_libraries": self.threads.blas_libraries,
            "gemm_gflops": self.gemm_flops_per_s / 1e9,
            "gemm_size": GEMM_SIZE,
            "bandwidth_gb_s": self.bandwidth_bytes_per_s / 1e9,
            "copy_bytes": COPY_BYTES,
            **self.software,
        }


def measure_gemm_flops_per_s(size: int | None = None) -> float:
    """Best float32 ``a @ b`` throughput of NumPy's BLAS, in FLOP/s (2·size³ per product)."""
    size = size or GEMM_SIZE
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)  # warm-up: thread pool start, page faults
    return 2.0 * size**3 / _best_seconds(lambda: np.matmul(a, b, out=out))


def measure_bandwidth_bytes_per_s(nbytes: int | None = None) -> float:
    """Best copy speed of a buffer far larger than the caches, in bytes/s (read + write counted).

    torch's ``copy_`` is used because it spreads a large copy over the configured threads, as
    the convolutions do; ``np.copyto`` would measure one core.
    """
    count = (nbytes or COPY_BYTES) // 4
    source = torch.ones(count, dtype=torch.float32)
    target = torch.empty_like(source)
    target.copy_(source)  # warm-up: page faults
    return 2.0 * source.numel() * 4 / _best_seconds(lambda: target.copy_(source))


def _best_seconds(function) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return max(best, 1e-9)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_machine(threads: Threads, implementation: str = "") -> Machine:
    """Measure the roofline's two limits with the current thread settings (about a second)."""
    return Machine(
        cpu=cpu_name(),
        logical_cpus=os.cpu_count(),
        threads=threads,
        gemm_flops_per_s=measure_gemm_flops_per_s(),
        bandwidth_bytes_per_s=measure_bandwidth_bytes_per_s(),
        implementation=implementation,
        software={
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "platform": f"{sys.platform} {platform.machine()}",
        },
    )
