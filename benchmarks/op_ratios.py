"""reference/torch on the network layers of all six ops, interleaved, at one thread count per run.

    python -m benchmarks.op_ratios --threads 1 --repeats 7     # every layer of benchmarks/layers.py
    python -m benchmarks.op_ratios --threads 2 -k X3D          # the layers whose name holds "X3D"

Per layer: a warm-up of both sides, then ``--repeats`` rounds of (a block of torch calls, a block of
reference calls), alternating, the reference's default path (what conv*d / conv_transpose*d pick).
Reported: the minimum of each side over all calls (the least disturbed call on a shared machine)
and the median of the per-round block minima, and their ratios; the load average before and after
each layer. Alternating blocks instead of one long block each: the machine's state (other jobs,
frequency) drifts over seconds, and both sides see the same drift. torch, numba and OpenBLAS all
run on ``--threads``. Nothing here asserts a time (docs/performance.md, round 4).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from benchmarks import fastest_call, pin_blas_threads, threads_from_argv  # noqa: E402

THREADS = threads_from_argv(default=1)
if __name__ == "__main__":
    pin_blas_threads(THREADS)

import numpy as np  # noqa: E402

import reference_impl  # noqa: E402
from benchmarks.layers import LAYERS, ND_LAYERS, Layer  # noqa: E402


def time_layer(layer: Layer, repeats: int, calls: int) -> dict[str, Any]:
    import torch

    x, w = layer.tensors()
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    kwargs = layer.conv_kwargs()
    torch_op, reference_op = getattr(torch.nn.functional, layer.op), getattr(reference_impl, layer.op)

    def run_torch() -> torch.Tensor:
        with torch.no_grad():
            return torch_op(tx, tw, None, **kwargs)

    def run_reference() -> np.ndarray:
        return reference_op(x, w, None, **kwargs)

    expected = run_torch().numpy()
    got = run_reference()
    scale = max(1.0, float(np.abs(expected).max()))
    assert got.dtype == np.float32 and np.allclose(got, expected, rtol=1e-3, atol=1e-3 * scale), layer.name
    load_before = os.getloadavg()[0]
    for function in (run_torch, run_reference):  # warm-up: caches, numba, torch's first calls of a shape
        start = time.perf_counter()
        while time.perf_counter() - start < 0.3:
            function()
    rounds: dict[str, list[float]] = {"torch": [], "reference": []}
    for _ in range(repeats):
        rounds["torch"].append(fastest_call(run_torch, calls))
        rounds["reference"].append(fastest_call(run_reference, calls))
    row: dict[str, Any] = {"layer": layer.name, "op": layer.op, "threads": THREADS, "load_before": load_before}
    for side, values in rounds.items():
        row[f"{side}_min"], row[f"{side}_median"] = min(values), float(np.median(values))
    row["ratio_min"] = row["reference_min"] / row["torch_min"]
    row["ratio_median"] = row["reference_median"] / row["torch_median"]
    row["load_after"] = os.getloadavg()[0]
    return row


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--repeats", type=int, default=7, help="alternating rounds per layer")
    parser.add_argument("--calls", type=int, default=3, help="calls per block (its minimum counts)")
    parser.add_argument("-k", dest="keyword", default="", help="only layers whose name holds this")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(THREADS)
    if reference_impl.algorithms.numba_available():
        import numba

        numba.set_num_threads(THREADS)
    rows = []
    print(f"threads {THREADS}; load average {os.getloadavg()[0]:.1f} at start", flush=True)
    print("| layer | op | torch ms (min / median) | reference ms (min / median) | ref/torch min | median | load |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for layer in [*LAYERS, *ND_LAYERS]:
        if args.keyword.lower() not in layer.name.lower():
            continue
        row = time_layer(layer, args.repeats, args.calls)
        rows.append(row)
        load = f"{row['load_before']:.1f}-{row['load_after']:.1f}"
        print(
            f"| {row['layer']} | {row['op']} | {row['torch_min'] * 1e3:.2f} / {row['torch_median'] * 1e3:.2f} | "
            f"{row['reference_min'] * 1e3:.2f} / {row['reference_median'] * 1e3:.2f} | "
            f"**{row['ratio_min']:.2f}** | {row['ratio_median']:.2f} | {load} |",
            flush=True,
        )
    for label, selected in (
        ("Conv2d layers", [r for r in rows if r["op"] == "conv2d"]),
        ("other ops", [r for r in rows if r["op"] != "conv2d"]),
    ):
        if selected:
            print(
                f"| **geometric mean, {label}** | | | | **{geomean([r['ratio_min'] for r in selected]):.2f}** | "
                f"{geomean([r['ratio_median'] for r in selected]):.2f} | |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
