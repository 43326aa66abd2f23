"""Human-readable verdicts: one line per case, and for a failure a domain report that says
which element of which output channel (and so which group) broke, with all values side by side."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from conformance.cases.schema import Case
from conformance.judging.compare import Comparison
from conformance.judging.json_numbers import json_text
from conformance.judging.outcomes import ERROR, FAILED, KINDS, PASSED, SKIPPED, STATUSES, XFAILED, XPASSED
from conformance.judging.verdict import CaseResult, Check


def _g(value: float) -> str:
    return f"{value:.6g}"


def describe_index(case: Case | None, index: tuple[int, ...], tensor: str = "output") -> str:
    """(0, 2, 0, 0) -> 'y[n=0, o=2, h=0, w=0]: output channel 2 is in group 1 of 3, which reads input
    channels 2-3'; the element's names and its group follow the case's op (conformance/reporting/indices.py)."""
    from conformance.reporting.indices import describe_gradient_index, describe_output_index

    if tensor != "output":
        return describe_gradient_index(case, tensor, index)
    return describe_output_index(case, index)


def comparison_details(
    case: Case | None, comparison: Comparison, outputs: dict[str, np.ndarray], tensor: str = "output"
) -> list[str]:
    """The domain report: shapes, then dtype, then the worst element with every side's value."""
    c = comparison
    lines = [f"shapes: {c.actual_name} {c.actual_shape}, {c.expected_name} {c.expected_shape}"]
    if not c.shape_ok:
        return lines
    if c.dtype_problem:
        lines.append(f"dtype: {c.dtype_problem}")
    if c.worst_index is None:
        return lines
    lines.append(f"worst element {describe_index(case, c.worst_index, tensor)}")
    values = []
    if c.expected_name not in outputs:  # a derived comparison (torch variant, metamorphic relation): its two sides
        values = [f"{c.actual_name} = {_g(c.worst_actual)}", f"{c.expected_name} = {_g(c.worst_expected)}"]
    for name, array in outputs.items() if not values else ():
        if array is not None and tuple(np.shape(array)) == c.actual_shape:
            values.append(f"{name} = {_g(float(np.asarray(array)[c.worst_index]))}")
    lines.append("  " + ", ".join(values))
    if c.allowed_text:
        lines.append(
            f"  abs error {_g(c.worst_abs_error)}, rel error {_g(c.worst_rel_error)}; allowed "
            f"{_g(c.worst_allowed)} = {c.allowed_text}: the error is {_ratio(c.failures[0])} its bound"
        )
    else:
        lines.append(
            f"  abs error {_g(c.worst_abs_error)}, rel error {_g(c.worst_rel_error)}; allowed "
            f"{_g(c.worst_allowed)} = atol {_g(c.atol)} + rtol {_g(c.rtol)} x |{_g(c.worst_expected)}|"
        )
    for failure in c.failures[1:]:
        index, actual, expected, error = failure[:4]
        lines.append(
            f"  also {describe_index(case, index, tensor).split(':')[0]}: {c.actual_name} {actual:.9g}, "
            f"{c.expected_name} {expected:.9g}, abs error {_g(error)} = {_ratio(failure)} its allowance"
        )
    if c.mismatched > len(c.failures):
        lines.append(f"  ... and {c.mismatched - len(c.failures)} more failing elements")
    lines.append(f"max abs error {_g(c.max_abs_error)}, max rel error {_g(c.max_rel_error)} over all elements")
    return lines


def _ratio(failure: tuple) -> str:
    """'3.2 x' — a failing element's error as a multiple of what it was allowed."""
    _, _, _, error, allowed = failure
    return f"{error / allowed:.3g} x" if allowed > 0 else "infinitely many times (allowed 0)"


def outputs_of(result: CaseResult) -> dict[str, np.ndarray]:
    run = result.run
    if run is None:
        return {}
    named = {run.implementation.name: run.impl.output, "torch": run.torch.output}
    if run.tensors.expected is not None:
        named["expected"] = run.tensors.expected
    return {name: array for name, array in named.items() if array is not None}


def format_failure(result: CaseResult) -> str:
    """The full report of a failed, broken, xfailed or xpassed case."""
    where = f"{result.case.location}" if result.case is not None else result.file
    kind = f" [{result.kind}]" if result.kind else ""
    lines = [f"{result.status.upper()}: case {result.name} ({where}){kind}"]
    if result.status == ERROR and not result.checks:
        text = result.load_error.format(snippets=True) if result.load_error else result.message
        lines.extend("  " + line for line in text.splitlines())
        return "\n".join(lines)
    if result.status in (ERROR, XFAILED, XPASSED, SKIPPED) and result.message:
        lines.append(f"  {result.message}")
    for check in result.checks:
        lines.extend(_check_lines(result, check))
    # imported here: the explanations (teaching/) are only needed for a failure, and a passing run's start
    # saves their import (~35 ms)
    from conformance.teaching.explain_text import failure_explanation

    lines.extend(f"  {line}" for line in failure_explanation(result))  # the worst wrong element as its sum
    lines.extend(f"  {line}" for line in result.notes)
    return "\n".join(lines)


def _check_lines(result: CaseResult, check: Check) -> list[str]:
    mark = "ok  " if check.passed else "FAIL"
    lines = [f"  {mark} {check.summary}"]
    if check.passed:
        return lines
    details = list(check.details)
    if check.comparison is not None:
        arrays = check.arrays if check.arrays is not None else outputs_of(result)
        details = comparison_details(result.case, check.comparison, arrays, check.tensor) + details
    lines.extend("         " + line for line in details)
    return lines


LABELS = {PASSED: "PASS ", FAILED: "FAIL ", ERROR: "ERROR", SKIPPED: "SKIP ", XFAILED: "XFAIL", XPASSED: "XPASS"}


def case_line(result: CaseResult) -> str:
    label = LABELS[result.status]
    error, ratio = result.max_abs_error, result.max_error_ratio
    detail = f"max abs err {error:.2e}" if error is not None and result.status == PASSED else ""
    if detail and ratio:  # the error as a share of what the case's bound allows (none at all: nothing to say)
        detail += f", {ratio:.0%} of the allowed error" if ratio >= 0.01 else ", under 1% of the allowed error"
    if result.status in (SKIPPED, XFAILED, XPASSED, FAILED):
        detail = (f"[{result.kind}] " if result.kind else "") + result.message
    if result.status == PASSED and result.checks and result.checks[0].name == "expect_error":
        detail = "refused as expected"
    return f"{label} {result.name:<48} {detail}".rstrip()


def run_succeeded(results: Iterable[CaseResult]) -> bool:
    """True when nothing failed: every case passed, was skipped, or failed as its xfail entry expects."""
    return all(r.status in (PASSED, SKIPPED, XFAILED) for r in results)


def checked_nothing(results: Sequence[CaseResult]) -> bool:
    """True when cases were selected but none was checked at all: each was skipped before any check
    passed (a plug-in lacking the op, say). A case whose forward passed and whose backward was
    skipped was checked."""
    return bool(results) and all(
        r.status == SKIPPED and not any(check.passed and not check.skipped for check in r.checks) for r in results
    )


def status_counts(results: Iterable[CaseResult]) -> dict[str, int]:
    """{status: how many}, every status present (0 when none)."""
    counts = Counter(r.status for r in results)
    return {status: counts.get(status, 0) for status in STATUSES}


def kind_counts(results: Iterable[CaseResult]) -> dict[str, int]:
    """{kind: how many} over the failed cases, in outcomes.KINDS order, kinds that occur only."""
    counts = Counter(r.kind for r in results if r.status == FAILED and r.kind)
    return {kind: counts[kind] for kind in KINDS if counts[kind]}


def summary_line(results: Iterable[CaseResult]) -> str:
    """'N passed, M failed (K crashed, ...)' (+ skipped, xfailed, xpassed, errors when there are any):
    the closing line CI reads. Broken cases (errors) and xpassed cases count as failed.

    The failed count includes case errors and xpassed cases: everything that fails the run.
    """
    results = list(results)
    counts = status_counts(results)
    failed = counts[FAILED] + counts[ERROR] + counts[XPASSED]
    line = f"{counts[PASSED]} passed, {failed} failed"
    kinds = kind_counts(results)
    parts = [f"{count} {kind}" for kind, count in kinds.items()]
    if counts[ERROR]:
        parts.append(f"{counts[ERROR]} broken case{'s' if counts[ERROR] > 1 else ''}")
    if counts[XPASSED]:
        parts.append(f"{counts[XPASSED]} xpassed")
    if parts:
        line += f" ({', '.join(parts)})"
    for status in (SKIPPED, XFAILED):
        if counts[status]:
            line += f", {counts[status]} {status}"
    return line


def write_json(results: list[CaseResult], path: Path | str, extra: dict[str, Any] | None = None) -> None:
    """``{"cases": [...], "summary": {...}, **extra}``: each case with its ``status`` and ``kind``;
    the summary counts every status and every failure kind."""
    counts = status_counts(results)
    document: dict[str, Any] = {
        "cases": [r.to_json() for r in results],
        "summary": {
            "passed": counts[PASSED],
            "failed": counts[FAILED] + counts[ERROR] + counts[XPASSED],
            "errors": counts[ERROR],
            "skipped": counts[SKIPPED],
            "xfailed": counts[XFAILED],
            "xpassed": counts[XPASSED],
            "kinds": kind_counts(results),
        },
    }
    if extra:
        document.update(extra)
    Path(path).write_text(json_text(document, indent=2) + "\n", encoding="utf-8")
