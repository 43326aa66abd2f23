"""Measure how tight the error bound is: the largest |torch - reference| / bound per layer, dtype
and tensor (output, grad_input, grad_weight, grad_bias), on the network layers of
cases/precision/networks_half.yaml run in float64, float32, float16 and bfloat16.

A ratio near 1 means torch's worst element used most of its allowance; far below 1 means the
bound is loose there. The last columns give the same ratio under torch.testing.assert_close's
fixed (rtol, atol) table, where a ratio over 1 means assert_close would have failed torch.

    .venv/bin/python scripts/bound_ratios.py [--device cpu|cuda] [--markdown]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance.cases.loader import load_file  # noqa: E402
from conformance.cases.schema import DEFAULT_TOLERANCES  # noqa: E402
from conformance.judging.compare import compare_arrays  # noqa: E402
from conformance.running.devices import configure_device  # noqa: E402
from conformance.running.implementations import load_implementation  # noqa: E402
from conformance.running.runner import run_case  # noqa: E402

CASES = ROOT / "cases" / "precision" / "networks_half.yaml"
DTYPES = ("float64", "float32", "float16", "bfloat16")
TENSORS = ("output", "grad_input", "grad_weight", "grad_bias")


def layers() -> dict[str, object]:
    """One case per layer (the float16 documents), to be re-run in each dtype."""
    found = {}
    for case in load_file(CASES):
        if case.dtype == "float16":
            found[case.name.removeprefix("precision/").removesuffix("_float16")] = case
    return found


def measure(case, device: str) -> dict[str, tuple[float, float]]:
    """tensor -> (error / bound, error / assert_close allowance), the worst element of each."""
    result = run_case(case, load_implementation(None), device)
    if result.status != "passed":
        print(f"warning: {case.name} did not pass: {result.message}", file=sys.stderr)
    rtol, atol = DEFAULT_TOLERANCES[case.dtype]
    ratios = {}
    for check in result.checks:
        comparison = check.comparison
        if comparison is None or comparison.expected_name != "torch":
            continue
        if check.tensor == "output":
            reference, oracle = result.run.impl.output, result.run.torch.output
        else:
            reference, oracle = check.arrays["reference"], check.arrays["torch"]
        fixed = compare_arrays(oracle, reference, rtol, atol)
        ratios[check.tensor] = (comparison.max_error_ratio, fixed.max_error_ratio)
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    configure_device(args.device)
    rows = []
    for name, case in layers().items():
        for dtype in DTYPES:
            variant = dataclasses.replace(case, dtype=dtype, name=f"precision/{name}_{dtype}")
            ratios = measure(variant, args.device)
            rows.append((name, dtype, ratios))
            print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    def cell(ratios, tensor, which):
        return f"{ratios[tensor][which]:.3g}" if tensor in ratios else "-"

    header = ["layer", "dtype"] + [f"{t} / bound" for t in TENSORS] + ["worst / assert_close"]
    lines = []
    for name, dtype, ratios in rows:
        tensor, (_, worst_fixed) = max(ratios.items(), key=lambda item: item[1][1])
        lines.append([name, dtype] + [cell(ratios, t, 0) for t in TENSORS] + [f"{worst_fixed:.3g} ({tensor})"])
    for dtype in DTYPES:
        picked = [ratios for _, d, ratios in rows if d == dtype]
        worst = [max((r[t][0] for r in picked if t in r), default=float("nan")) for t in TENSORS]
        worst_fixed = max(value[1] for r in picked for value in r.values())
        lines.append(["**all layers**", f"**{dtype}**"] + [f"**{w:.3g}**" for w in worst] + [f"**{worst_fixed:.3g}**"])
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(str(row[i]).strip("*")) for row in [header] + lines) for i in range(len(header))]
        for row in [header] + lines:
            print("  ".join(str(v).strip("*").ljust(w) for v, w in zip(row, widths, strict=False)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
