"""Depthwise conv2d and conv3d with output rows paired (compiled.pairs_rows) against the same kernel unpaired.

    python -m benchmarks.row_pairs --threads 1 [--rounds 9] [--strided]

One process, one kernel build: each round times a block of calls paired, one unpaired, and one
unpaired again (the A/A control: two identical arms whose ratio says how far the order of blocks
alone moves a number; round 11 saw an in-process A/B swing 0.95x-1.49x without one). Reported per
shape: the minima, and the ratios of the medians of the block minima. ``--strided`` pairs the
stride-2 shapes too (compiled.can_pair_rows), which the rule leaves unpaired. The reference only,
no torch; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import fastest_call, pin_blas_threads, threads_from_argv  # noqa: E402

THREADS = threads_from_argv(default=1)
if __name__ == "__main__":
    pin_blas_threads(THREADS)

import numpy as np  # noqa: E402

import reference_impl  # noqa: E402
from reference_impl.geometry import ConvGeometry  # noqa: E402

Rule = Callable[[ConvGeometry], bool]  # compiled.pairs_rows and its stand-ins


class Shape(NamedTuple):
    """A depthwise layer: ``kernel`` and ``size`` per spatial dim (2-d or 3-d), padded to keep the size."""

    name: str
    channels: int
    kernel: tuple[int, ...]
    stride: int
    size: tuple[int, ...]
    batch: int = 2


SHAPES = [
    Shape("MobileNetV2 dw3x3", 144, (3, 3), 1, (56, 56)),
    Shape("ConvNeXt-T dw7x7", 96, (7, 7), 1, (56, 56)),
    Shape("dw3x3 28x28", 192, (3, 3), 1, (28, 28)),
    Shape("dw5x5 56x56", 96, (5, 5), 1, (56, 56)),
    Shape("dw5x5 28x28", 240, (5, 5), 1, (28, 28)),
    Shape("dw7x7 14x14 (rows by map: never paired)", 384, (7, 7), 1, (14, 14)),
    # benchmarks/layers.py's depthwise Conv3d layers
    Shape("X3D dw conv3d 3x3x3", 96, (3, 3, 3), 1, (16, 28, 28), batch=1),
    Shape("MoViNet dw conv3d 5x3x3", 40, (5, 3, 3), 1, (8, 28, 28), batch=1),
]
STRIDED = [
    Shape("MobileNetV2 dw3x3 s2", 96, (3, 3), 2, (112, 112)),
    Shape("EfficientNet-B0 dw5x5 s2", 144, (5, 5), 2, (56, 56)),
]


def compare(shape: Shape, rounds: int, calls: int, paired_rule: Rule) -> dict[str, float]:
    """Block minima of the paired and the unpaired kernel (twice), alternating, ``rounds`` times."""
    from reference_impl.algorithms import compiled

    rng = np.random.default_rng(0)
    x = rng.standard_normal((shape.batch, shape.channels, *shape.size), dtype=np.float32)
    w = rng.standard_normal((shape.channels, 1, *shape.kernel), dtype=np.float32)
    padding = tuple(k // 2 for k in shape.kernel)

    def run() -> np.ndarray:
        return reference_impl.convolve(
            x, w, None, shape.stride, padding, 1, shape.channels, spatial_dims=len(shape.size)
        )

    arms: dict[str, Rule] = {"paired": paired_rule, "unpaired": lambda geo: False, "unpaired again": lambda geo: False}
    times: dict[str, list[float]] = {arm: [] for arm in arms}
    original = compiled.pairs_rows
    try:
        for round_ in range(rounds + 1):
            for arm, rule in arms.items():
                compiled.pairs_rows = rule
                best = fastest_call(run, calls)
                if round_:  # round 0 warms each arm up
                    times[arm].append(best)
    finally:
        compiled.pairs_rows = original
    medians = {arm: float(np.median(values)) for arm, values in times.items()}
    return {
        "paired_min_ms": 1e3 * min(times["paired"]),
        "unpaired_min_ms": 1e3 * min(times["unpaired"]),
        "ratio": medians["paired"] / medians["unpaired"],
        "control": medians["unpaired again"] / medians["unpaired"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--rounds", type=int, default=9, help="alternating rounds per shape")
    parser.add_argument("--calls", type=int, default=5, help="calls per block (its minimum counts)")
    parser.add_argument("--strided", action="store_true", help="also the stride-2 shapes, paired by force")
    args = parser.parse_args(argv)
    if not reference_impl.algorithms.numba_available():
        sys.exit("row_pairs: numba is not installed (the compiled kernel is what this compares)")
    import numba

    from reference_impl.algorithms import compiled

    numba.set_num_threads(args.threads)
    print(f"threads {args.threads}; ratio = paired / unpaired, medians of block minima; control = unpaired / unpaired")
    print("| shape | paired ms | unpaired ms | ratio | control |")
    print("|---|---:|---:|---:|---:|")
    shapes = SHAPES + (STRIDED if args.strided else [])
    for shape in shapes:
        rule = compiled.can_pair_rows if shape.stride > 1 else compiled.pairs_rows
        row = compare(shape, args.rounds, args.calls, rule)
        print(
            f"| {shape.name} | {row['paired_min_ms']:.3f} | {row['unpaired_min_ms']:.3f} "
            f"| **{row['ratio']:.2f}** | {row['control']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
