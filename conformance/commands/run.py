"""``conformance run``: every case through the implementation under test and torch."""
from __future__ import annotations

import argparse

import torch

from ..devices import DEVICES, DeviceError, configure_device
from ..errors import CaseError
from ..junit import write_junit
from ..report import case_line, format_failure, summary_line, write_json
from ..runner import PASSED, SKIPPED, CaseResult, error_result, run_case
from . import UsageError, add_selection_arguments, ensure_parent, guarded, implementation_from, select_cases


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run cases and compare with torch.nn.Conv2d",
                                   description="Run cases through the implementation under test and torch; "
                                               "exit 0 only if every case passed.")
    add_selection_arguments(parser)
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--html", metavar="DIR",
                        help="write a static HTML report (DIR/index.html, with explanations and pictures)")
    parser.add_argument("--junit", metavar="FILE", help="write the results as JUnit XML (one testcase per case)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    parser.add_argument("--device", choices=DEVICES, default="cpu", help="where torch runs (default: cpu)")
    parser.add_argument("--allow-tf32", action="store_true",
                        help="on cuda, leave TF32 on (off by default: it is less accurate than float32)")
    parser.set_defaults(handler=guarded(run_command))


def run_cases(args: argparse.Namespace) -> list[CaseResult]:
    """Load, run and print; returns the results (also used by other commands)."""
    implementation = implementation_from(args)
    device = getattr(args, "device", "cpu")
    try:
        configure_device(device, getattr(args, "allow_tf32", False))
    except DeviceError as exc:
        raise UsageError(str(exc)) from None
    items = select_cases(args.paths, args.keyword)
    if not getattr(args, "quiet", False):
        mode = "computes in float64" if implementation.computes_in_float64 else "gets the case's dtype"
        print(f"implementation under test: {implementation.name} ({mode}); oracle: torch {torch.__version__} "
              f"on {device}")
    results = []
    for item in items:
        result = error_result(item) if isinstance(item, CaseError) else run_case(item, implementation, device)
        results.append(result)
        if result.status == SKIPPED:
            if not getattr(args, "quiet", False):
                print(case_line(result))
        elif result.status != PASSED:
            print(format_failure(result))
        elif not getattr(args, "quiet", False):
            print(case_line(result))
    return results


def run_command(args: argparse.Namespace) -> int:
    results = run_cases(args)
    if args.json:
        write_json(results, ensure_parent(args.json))
    if args.html:
        from ..coverage import coverage_grid
        from ..html_report import coverage_section, write_html_report  # matplotlib is imported only for a report

        grid = coverage_grid([result.case or result.load_error for result in results])
        print(f"HTML report: {write_html_report(results, args.html, extra_sections=[coverage_section(grid)])}")
    if getattr(args, "junit", None):
        write_junit(results, ensure_parent(args.junit))
    print(summary_line(results))
    return 0 if all(r.status in (PASSED, SKIPPED) for r in results) else 1
