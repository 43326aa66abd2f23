"""The evidence behind choose_algorithm's channels-per-group thresholds: each shape through every
general algorithm and torch, in one process.

    python -m benchmarks.chooser_shapes --threads 1
    python -m benchmarks.chooser_shapes --threads 2

Per shape: the minimum of 10 calls, twice over (the better of the two), for torch and for
"compiled", "einsum" and "taps" forced; the chooser's pick beside them. The shapes sit around the
thresholds: 32 channels per group in 1-, 2- and 3-d (COMPILED_MAX_CHANNELS_PER_GROUP), 48-128 with a
long kernel (COMPILED_LONG_KERNEL_MAX_CHANNELS_PER_GROUP), AlexNet's 48 with a 5x5 kernel (einsum's).
Nothing here asserts a time (docs/performance.md, round 6).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import fastest_call, pin_blas_threads, threads_from_argv  # noqa: E402

THREADS = threads_from_argv(default=1)
if __name__ == "__main__":
    pin_blas_threads(THREADS)

import numpy as np  # noqa: E402

import reference_impl  # noqa: E402
from reference_impl.algorithms import choose_algorithm  # noqa: E402

# (input shape, weight shape, stride, padding, groups, op)
SHAPES = [
    ((2, 64, 56, 56), (64, 32, 3, 3), 1, 1, 2, "conv2d"),
    ((8, 1024, 14, 14), (1024, 32, 3, 3), 1, 1, 32, "conv2d"),  # ResNeXt stage 4, stride 1
    ((8, 1024, 14, 14), (1024, 32, 3, 3), 2, 1, 32, "conv2d"),  # ResNeXt stage 4, stride 2
    ((2, 256, 28, 28), (256, 32, 3, 3), 1, 1, 8, "conv2d"),
    ((2, 512, 28, 28), (512, 16, 3, 3), 2, 1, 32, "conv2d"),
    ((2, 128, 56, 56), (128, 32, 3, 3), 2, 1, 4, "conv2d"),
    ((2, 128, 28, 28), (128, 64, 3, 3), 1, 1, 2, "conv2d"),
    ((2, 96, 27, 27), (256, 48, 5, 5), 1, 2, 2, "conv2d"),  # AlexNet 5x5
    ((1, 64, 2000), (64, 32, 5), 1, 2, 2, "conv1d"),
    ((1, 512, 400), (512, 32, 64), 1, 32, 16, "conv1d"),
    ((1, 768, 200), (768, 48, 128), 1, 64, 16, "conv1d"),  # wav2vec2's positional conv
    ((1, 512, 200), (512, 64, 64), 1, 32, 8, "conv1d"),
    ((1, 512, 200), (512, 128, 64), 1, 32, 4, "conv1d"),
    ((1, 64, 8, 28, 28), (64, 32, 3, 3, 3), 1, 1, 2, "conv3d"),
]
ALGORITHMS = ("compiled", "einsum", "taps")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.parse_args(argv)
    import numba
    import torch

    torch.set_num_threads(THREADS)
    numba.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    counts = f"torch {torch.get_num_threads()}, numba {numba.get_num_threads()}"
    print(f"threads {THREADS} ({counts}); load average {os.getloadavg()[0]:.1f} at start")
    print("| input | weight | stride | groups | torch ms | " + " | ".join(ALGORITHMS) + " | chosen |")
    print("|---|---|---:|---:|---:|" + "---:|" * len(ALGORITHMS) + "---|")
    for x_shape, w_shape, stride, padding, groups, op in SHAPES:
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal(w_shape, dtype=np.float32)
        reference, torch_op = getattr(reference_impl, op), getattr(torch.nn.functional, op)
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        args = (None, stride, padding, 1, groups)
        sides: dict[str, Callable[[], object]] = {"torch": partial(torch_op, tx, tw, *args)}
        for name in ALGORITHMS:
            sides[name] = partial(reference, x, w, *args, algorithm=name)
        for side in sides.values():
            side()  # compile, warm caches
        times = {name: 1e3 * min(fastest_call(side, 10) for _ in range(2)) for name, side in sides.items()}  # ms
        geo = reference_impl.plan_conv(x.shape, w.shape, None, stride, padding, 1, groups, spatial_dims=x.ndim - 2)
        cells = " | ".join(f"{times[name]:.2f}" for name in ALGORITHMS)
        print(
            f"| {x_shape} | {w_shape} | {stride} | {groups} | {times['torch']:.2f} | {cells} | "
            f"{choose_algorithm(geo, dtype=x.dtype)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
