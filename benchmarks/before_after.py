"""The reference's conv2d against an older checkout's, call by call, on the Conv2d layers.

    git archive <commit> reference_impl | tar -x -C DIR
    OPENBLAS_NUM_THREADS=1 python -m benchmarks.before_after DIR [--threads 1] [--calls 40]

The two versions alternate call by call (the order flipped every call), so machine noise falls
on both alike: the per-layer ratio of medians is the regression check that the block-wise
same-run table of network_layers.py (--before) cannot give on a loaded machine. No torch here.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import reference_impl
from benchmarks import network_layers
from benchmarks.layers import LAYERS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="directory holding the older reference_impl/")
    parser.add_argument("--threads", type=int, default=1, help="numba threads (set OPENBLAS_NUM_THREADS to match)")
    parser.add_argument("--calls", type=int, default=40, help="timed calls per version per layer")
    args = parser.parse_args(argv)
    before = network_layers.load_before(args.before)
    if reference_impl.algorithms.numba_available():
        import numba

        numba.set_num_threads(args.threads)
    for layer in LAYERS:
        x, w = layer.tensors()
        kwargs = layer.conv_kwargs()
        versions = {
            "new": partial(reference_impl.conv2d, x, w, None, **kwargs),
            "before": partial(before.conv2d, x, w, None, **kwargs),
        }
        times: dict[str, list[float]] = {name: [] for name in versions}
        for function in versions.values():
            function()  # warm: compile or load numba's cache, first-touch the buffers
        for call in range(args.calls):
            for name in ("new", "before") if call % 2 else ("before", "new"):
                start = time.perf_counter()
                versions[name]()
                times[name].append(time.perf_counter() - start)
        new, old = (np.array(times[name]) * 1e3 for name in ("new", "before"))
        print(
            f"{layer.name:30s} new min {new.min():7.2f} med {np.median(new):7.2f}  before min {old.min():7.2f} "
            f"med {np.median(old):7.2f}  new/before med {np.median(new) / np.median(old):.2f} "
            f"min {new.min() / old.min():.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
