"""``conformance bench``: time every case through the implementation under test and torch."""

from __future__ import annotations

import argparse
import math

from conformance.cases.errors import CaseError
from conformance.cases.schema import Case
from conformance.commands import (
    NoCasesSelected,
    add_selection_arguments,
    ensure_parent,
    guarded,
    implementation_from,
    positive_int,
    select_cases,
)
from conformance.judging.json_numbers import json_text
from conformance.reporting.progress import ProgressBar
from conformance.tools.benchmark import CaseBenchmark, benchmark_case
from conformance.tools.machine import GEMM_SIZE, Machine, measure_machine, same_threads


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="time cases: the implementation under test against torch, with the roofline",
        description="Time each case's forward through the implementation under test and torch (median and "
        "interquartile range over many rounds, same thread count for both), with GFLOP/s and the "
        "roofline bound; exit 1 if a case is broken or a timed output disagrees with torch.",
    )
    add_selection_arguments(parser)
    parser.add_argument("--json", metavar="FILE", help="write the machine and per-case timings as JSON")
    parser.add_argument(
        "--rounds",
        type=positive_int,
        metavar="N",
        help="timed rounds per case (default: at least 5, until each side has run 0.2 s)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="threads for torch and NumPy's BLAS alike (default: torch's own count)",
    )
    parser.set_defaults(handler=guarded(bench_command))


def bench_command(args: argparse.Namespace) -> int:
    implementation = implementation_from(args)
    items = select_cases(args.paths, args.keyword)
    if not items:
        raise NoCasesSelected("no case selected")
    broken = [item for item in items if isinstance(item, CaseError)]
    valid = [item for item in items if isinstance(item, Case) and item.expect_error is None]
    cases = [case for case in valid if implementation.supports(case)]
    missing = [case for case in valid if not implementation.supports(case)]  # an op it does not define
    skipped = [item for item in items if isinstance(item, Case) and item.expect_error is not None]
    for error in broken:
        print(error.format(snippets=True))

    with same_threads(args.threads) as threads:
        machine = measure_machine(threads, implementation.name)
        print(machine_lines(machine))
        progress = ProgressBar(len(cases))
        results = []
        for case in cases:
            progress.step(case.name)
            results.append(benchmark_case(case, implementation, machine, args.rounds))
        progress.close()

    print(format_table(results, implementation.name))
    for case in skipped:
        print(f"skipped {case.name}: expect_error (an invalid layer has no forward to time)")
    for case in missing:
        print(f"skipped {case.name}: {implementation.missing_reason(case)}")
    disagree = [r for r in results if not r.agrees]
    print(summary_line(results, len(skipped) + len(missing), len(broken), ops=[case.conv.type for case in cases]))
    if args.json:
        document = {
            "machine": machine.to_json(),
            "cases": [{**r.to_json(), "op": case.conv.type} for r, case in zip(results, cases, strict=False)],
            "skipped": [{"name": c.name, "reason": "expect_error"} for c in skipped]
            + [{"name": c.name, "reason": implementation.missing_reason(c)} for c in missing]
            + [{"name": e.case_name or str(e.file), "reason": "broken case file"} for e in broken],
        }
        ensure_parent(args.json).write_text(json_text(document, indent=2) + "\n", encoding="utf-8")
    return 1 if disagree or broken else 0


def machine_lines(machine: Machine) -> str:
    threads = machine.threads
    blas = f"{threads.blas} ({threads.blas_source})" if threads.blas is not None else "unknown"
    return (
        f"implementation under test: {machine.implementation} (timed in the case's dtype); "
        f"oracle: torch {machine.software.get('torch', '')}\n"
        f"machine: {machine.cpu}, {machine.logical_cpus} logical CPUs; threads: torch {threads.torch}, "
        f"NumPy BLAS {blas}\n"
        f"roofline: float32 GEMM peak {machine.gemm_flops_per_s / 1e9:.1f} GFLOP/s (NumPy matmul, "
        f"{GEMM_SIZE}x{GEMM_SIZE}), memory bandwidth {machine.bandwidth_bytes_per_s / 1e9:.1f} GB/s (large copy)"
    )


def seconds_label(seconds: float) -> str:
    """3 significant digits in a readable unit.

    >>> seconds_label(0.0123), seconds_label(4.5e-6), seconds_label(2.0), seconds_label(9.46e-12)
    ('12.3 ms', '4.50 µs', '2.00 s', '0.00946 ns')
    """
    if not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            value = seconds / scale
            return f"{value:.3g} {unit}" if value >= 100 else f"{value:#.3g} {unit}"
    raise AssertionError("unreachable")


def format_table(results: list[CaseBenchmark], implementation_name: str) -> str:
    """One row per case: both medians ± IQR, their ratio, GFLOP/s and the roofline."""
    header = (
        "case",
        f"{_short(implementation_name)} (median ± IQR)",
        "torch (median ± IQR)",
        "ratio",
        "GFLOP/s",
        "torch GFLOP/s",
        "roofline",
        "agrees",
    )
    rows: list[tuple[str, ...]] = []
    for r in results:
        if r.error:
            rows.append((r.name, "-", "-", "-", "-", "-", seconds_label(r.roofline_s), f"ERROR: {r.error}"))
            continue
        assert r.implementation is not None and r.torch is not None  # (narrowing: both timed without error)
        rows.append(
            (
                r.name,
                f"{seconds_label(r.implementation.median)} ± {seconds_label(r.implementation.iqr)}",
                f"{seconds_label(r.torch.median)} ± {seconds_label(r.torch.iqr)}",
                f"{r.ratio:.2f}",
                f"{r.gflops(r.implementation):.3g}",
                f"{r.gflops(r.torch):.3g}",
                f"{seconds_label(r.roofline_s)} ({r.bound})",
                "yes" if r.agrees else f"NO: {r.comparison.summary() if r.comparison else 'not compared'}",
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:-1], widths[1:], strict=False)
        ]
        lines.append("  ".join(cells + [row[-1]]))
    return "\n".join(lines)


def _short(name: str) -> str:
    return name if len(name) <= 24 else "…" + name[-23:]


def summary_line(results: list[CaseBenchmark], skipped: int, broken: int, ops: list[str] | None = None) -> str:
    """'N cases timed; ratio geometric mean X (max Y); M disagree with torch; ...'; with ``ops`` (each
    result's torch.nn module) naming more than one op, the geometric mean of each op too."""
    ratios = [r.ratio for r in results if not r.error and math.isfinite(r.ratio) and r.ratio > 0]
    parts = [f"{len(results)} cases timed"]
    if ratios:
        parts.append(f"time ratio to torch: geometric mean {_geometric_mean(ratios):.2f}, worst {max(ratios):.2f}")
    if ops and len(set(ops)) > 1:
        by_op: dict[str, list[float]] = {}
        for result, op in zip(results, ops, strict=False):
            if not result.error and math.isfinite(result.ratio) and result.ratio > 0:
                by_op.setdefault(op, []).append(result.ratio)
        parts.append(
            "by op: " + ", ".join(f"{op} {_geometric_mean(values):.2f} ({len(values)})" for op, values in by_op.items())
        )
    disagree = sum(not r.agrees for r in results)
    parts.append(f"{disagree} disagree with torch or failed")
    if skipped:
        parts.append(f"{skipped} skipped")
    if broken:
        parts.append(f"{broken} broken case files")
    return "; ".join(parts)


def _geometric_mean(values: list[float]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))
