"""``conformance run``: every case through the implementation under test and torch."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch

from conformance.api import describe_cases, run_all
from conformance.commands import (
    NoCasesSelected,
    UsageError,
    add_selection_arguments,
    default_cases,
    ensure_parent,
    guarded,
    implementation_from,
    library_version,
    positive_int,
    select_cases,
)
from conformance.judging.environment import environment_facts
from conformance.judging.xfail import XfailFileError, load_xfail_files
from conformance.reporting.junit import write_junit
from conformance.reporting.terminal import (
    case_line,
    checked_nothing,
    format_failure,
    run_succeeded,
    summary_line,
    write_json,
)
from conformance.running.devices import DEVICES, DeviceError, configure_device
from conformance.running.implementations import Implementation
from conformance.running.isolation import DEFAULT_TIMEOUT
from conformance.running.runner import PASSED, SKIPPED, CaseResult
from conformance.tools.machine import Threads, same_threads


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run cases and compare with torch",
        description="Run cases (default: the bundled case library) through the "
        "implementation under test and torch; exit 0 only if no case "
        "failed, 5 if no case was selected.",
    )
    add_selection_arguments(parser)
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument(
        "--html", metavar="DIR", help="write a static HTML report (DIR/index.html, with explanations and pictures)"
    )
    parser.add_argument("--junit", metavar="FILE", help="write the results as JUnit XML (one testcase per case)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    parser.add_argument("--device", choices=DEVICES, default="cpu", help="where torch runs (default: cpu)")
    parser.add_argument(
        "--allow-tf32",
        action="store_true",
        help="on cuda, leave TF32 on (off by default: it is less accurate than float32)",
    )
    parser.add_argument(
        "--xfail",
        metavar="FILE",
        action="append",
        default=[],
        help="a YAML list of expected failures (- case: NAME-or-glob, reason: WHY, link: URL); "
        "repeatable. Listed cases that fail are xfailed; listed cases that pass fail the run",
    )
    parser.add_argument(
        "--allow-unsupported",
        action="store_true",
        help="skip cases the implementation reports unsupported (NotImplementedError) instead of failing them",
    )
    parser.add_argument(
        "--strict-errors",
        action="store_true",
        help="judge the wording of the implementation's refusals by the cases' match: too "
        "(by default match: judges torch only)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        default=None,
        help="threads for torch, NumPy's BLAS and so the implementation (default: the "
        "machine's cores); recorded in the results",
    )
    parser.add_argument(
        "--repro",
        metavar="DIR",
        help="write, per failing case, a standalone script + .npz that reruns it on the "
        "implementation and torch and prints the disagreement",
    )
    parser.add_argument(
        "--durations",
        type=_count,
        metavar="N",
        default=None,
        help="print the N slowest cases with their time per stage (0: all), and the run's time per stage",
    )
    parser.set_defaults(handler=guarded(run_command), isolate_by_default=True)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def rerun_options(args: argparse.Namespace, threads: int | None = None) -> list[str]:
    """Every option of this run that can change a case's verdict, for the ``rerun:`` line: how the
    implementation is called and judged (``--impl``, ``--arrays``, ``--impl-device``,
    ``--refusal-type``, ``--strict-errors``, ``--allow-unsupported``, isolation and its timeout),
    the xfail files, the thread count (``threads``: the one this run used, default or not) and the
    oracle's device.

    >>> rerun_options(argparse.Namespace(impl="m", xfail=["known.yaml"], allow_unsupported=True), threads=4)
    ['--impl', 'm', '--allow-unsupported', '--xfail', 'known.yaml', '--threads', '4']
    """
    options = []
    if getattr(args, "impl", None):
        options += ["--impl", args.impl]
    if getattr(args, "arrays", None):
        options += ["--arrays", args.arrays]
    if getattr(args, "impl_device", "cpu") not in (None, "cpu"):
        options += ["--impl-device", args.impl_device]
    for name in getattr(args, "refusal_type", None) or ():
        options += ["--refusal-type", name]
    if getattr(args, "strict_errors", False):
        options.append("--strict-errors")
    if getattr(args, "allow_unsupported", False):
        options.append("--allow-unsupported")
    if getattr(args, "isolate", None) is False:  # run isolates plug-ins by default; keep an explicit opt-out
        options.append("--no-isolate")
    elif getattr(args, "timeout", DEFAULT_TIMEOUT) != DEFAULT_TIMEOUT:  # a hang is judged by it
        options += ["--timeout", f"{args.timeout:g}"]
    for path in getattr(args, "xfail", None) or ():
        options += ["--xfail", str(path)]
    if threads is not None or getattr(args, "threads", None):
        options += ["--threads", str(threads or args.threads)]
    if getattr(args, "device", "cpu") != "cpu":
        options += ["--device", args.device]
    if getattr(args, "allow_tf32", False):
        options.append("--allow-tf32")
    return options


def run_cases(args: argparse.Namespace) -> tuple[list[CaseResult], dict[str, Any]]:
    """Load, run and print; returns the results and what the run was (for the JSON report)."""
    implementation = implementation_from(args)
    device = getattr(args, "device", "cpu")
    try:
        configure_device(device, getattr(args, "allow_tf32", False))
    except DeviceError as exc:
        raise UsageError(str(exc)) from None
    try:
        xfails = load_xfail_files(getattr(args, "xfail", None) or [])
    except XfailFileError as exc:
        raise UsageError(str(exc)) from None
    items = select_cases(args.paths, args.keyword)
    if not items:
        where = " ".join(args.paths) or f"the bundled library ({default_cases()})"
        keyword = f" matching -k {args.keyword!r}" if args.keyword else ""
        raise NoCasesSelected(f"no case selected: {where} holds no case{keyword}")
    quiet = getattr(args, "quiet", False)
    version = library_version()
    threads_wanted = getattr(args, "threads", None) or os.cpu_count() or 1
    with same_threads(threads_wanted) as threads:
        # read inside: the thread counts are this run's, and an adapter's settings are in force
        xfails.facts = environment = environment_facts(implementation)
        if not quiet:
            print(header(implementation, device, threads, version))
        results = run_all(
            items,
            implementation,
            device,
            strict_errors=getattr(args, "strict_errors", False),
            allow_unsupported=getattr(args, "allow_unsupported", False),
            xfails=xfails,
            repro_dir=getattr(args, "repro", None),
            rerun_options=rerun_options(args, threads.torch),
            on_result=lambda result: _print_result(result, quiet),
        )
    # -k or PATH: only the entries that reach into the selection can be judged stale
    unused = xfails.unused(results, whole_library=not args.paths and not args.keyword, keyword=args.keyword)
    for entry in unused:
        print(f"xfail entry matches no case: {entry.label!r} ({entry.location}, reason: {entry.reason})")
    paths = [str(p) for p in args.paths] or [default_cases()]
    about = {
        "library": {"version": version, "paths": paths, "cases": describe_cases(paths)},
        "implementation": {
            "name": implementation.name,
            "spec": getattr(args, "impl", None),
            **implementation.options,
            "computes_in_float64": implementation.computes_in_float64,
        },
        "threads": {
            "requested": threads_wanted,
            "torch": threads.torch,
            "blas": threads.blas,
            "blas_source": threads.blas_source,
        },
        "options": {
            "strict_errors": getattr(args, "strict_errors", False),
            "allow_unsupported": getattr(args, "allow_unsupported", False),
        },
        "environment": environment,
        "xfail": {
            "files": list(getattr(args, "xfail", None) or []),
            "unused": [
                {"case": e.case, "selects": e.label, "reason": e.reason, "location": e.location} for e in unused
            ],
        },
    }
    return results, about


def header(implementation: Implementation, device: str, threads: Threads, version: str | None) -> str:
    mode = "computes in float64" if implementation.computes_in_float64 else "gets the case's dtype"
    where = "" if implementation.arrays == "numpy" else f" on {implementation.device}"
    library = f"; case library {version}" if version else ""
    blas = f", BLAS {threads.blas}" if threads.blas is not None else ""
    return (
        f"implementation under test: {implementation.name} ({implementation.arrays} arrays{where}, {mode}); "
        f"oracle: torch {torch.__version__} on {device}; threads: torch {threads.torch}{blas}{library}"
    )


def _print_result(result: CaseResult, quiet: bool) -> None:
    if result.status in (PASSED, SKIPPED):
        if not quiet:
            print(case_line(result))
    else:
        print(format_failure(result))


def run_command(args: argparse.Namespace) -> int:
    results, about = run_cases(args)
    if args.json:
        write_json(results, ensure_parent(args.json), extra=about)
    if args.html:
        from conformance.reporting.html import (
            coverage_section,
            write_html_report,
        )  # imported only when a report is asked for
        from conformance.tools.coverage import coverage_grid

        grid = coverage_grid([item for result in results if (item := result.case or result.load_error) is not None])
        page = write_html_report(results, args.html, extra_sections=[coverage_section(grid)])
        print(f"HTML report: {page}")
    if getattr(args, "junit", None):
        write_junit(results, ensure_parent(args.junit), properties=_junit_properties(about))
    if getattr(args, "repro", None) and any(r.notes and r.status != PASSED for r in results):
        print(f"repro scripts: {Path(args.repro).resolve()}")
    if getattr(args, "durations", None) is not None:
        from conformance.reporting.durations import slowest_lines, totals_line

        print("\n".join([*slowest_lines(results, args.durations), totals_line(results)]))
    print(summary_line(results))
    if checked_nothing(results):
        # e.g. a conv2d-only plug-in on a folder of Conv3d cases: a gate that checked nothing must not pass
        raise NoCasesSelected("every selected case was skipped (see the reasons above): nothing was checked")
    return 0 if run_succeeded(results) else 1


def _junit_properties(about: dict[str, Any]) -> dict[str, str]:
    return {
        "library_version": str(about["library"]["version"]),
        "cases": str(about["library"]["cases"]),
        "implementation": about["implementation"]["name"],
        "arrays": about["implementation"]["arrays"],
        "impl_device": about["implementation"]["device"],
        "threads": str(about["threads"]["requested"]),
        **{f"env.{fact}": value for fact, value in about["environment"].items()},
    }
