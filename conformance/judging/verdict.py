"""The verdict: every comparison of a case (forward, golden, torch variants, metamorphic relations,
each gradient) is judged here, by one rule, and every case's status is settled here.

The rule: the allowance per element is the case's error bound (conformance/judging/tolerance.py),
doubled when both compared sides are finite-precision results (a plug-in against torch: each may
be off by a bound, in opposite directions), widened by two units against a golden output written
as exact decimals; or the case's explicit ``tolerance: {rtol, atol}``.

>>> import numpy as np
>>> check = judge("forward", np.array([1.0, 2.0]), np.array([1.0, 2.5]), rtol=0.0, atol=0.1,
...               actual_name="mine", expected_name="torch")
>>> check.passed, check.failure_kind(), check.summary
(False, 'wrong_values', 'mine vs torch: 1 of 2 elements differ (50%)')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance.cases.case_tensors import CaseTensors
from conformance.cases.errors import CaseError
from conformance.cases.schema import Case
from conformance.judging.compare import Comparison, compare_arrays
from conformance.judging.json_numbers import json_float
from conformance.judging.outcomes import ERROR, FAILED, SKIPPED, UNSUPPORTED, WRONG_DTYPE, WRONG_SHAPE, WRONG_VALUES
from conformance.judging.tolerance import ErrorBound, forward_bound


@dataclass
class Check:
    """One verdict about a case, with the lines that explain it."""

    name: str
    passed: bool
    summary: str
    details: list[str] = field(default_factory=list)
    comparison: Comparison | None = None
    skipped: bool = False  # passed vacuously: nothing could be checked (the summary says why)
    tensor: str = "output"  # what the comparison is about: output, grad_input, grad_weight or grad_bias
    arrays: dict[str, np.ndarray] | None = None  # every side's values of that tensor (default: the outputs)
    kind: str | None = None  # a failure's kind (outcomes.KINDS); None: judged from the comparison
    broken_case: bool = False  # failed because the case's own data is wrong (torch disagrees with it)

    def failure_kind(self) -> str:
        """The kind of this failed check: its own, else shape, dtype or values from its comparison."""
        if self.kind is not None:
            return self.kind
        if self.comparison is not None and not self.comparison.shape_ok:
            return WRONG_SHAPE
        if self.comparison is not None and self.comparison.dtype_problem:
            return WRONG_DTYPE
        return WRONG_VALUES


def sided_bound(bound: ErrorBound | None, *, exact_side: bool = False, golden: bool = False) -> ErrorBound | None:
    """The allowance of one comparison, from the bound of the tensor compared: against a golden
    decimal output two more units (its inputs were rounded); between two finite-precision results
    doubled (unless ``exact_side``: one side is the float64 reference); else the bound itself."""
    if bound is None:
        return None
    if golden:
        return bound.against_decimals()
    return bound if exact_side else bound.for_sides(2)


def compare(
    actual: np.ndarray,
    expected: np.ndarray,
    *,
    rtol: float,
    atol: float,
    bound: ErrorBound | None = None,
    exact_side: bool = False,
    golden: bool = False,
    actual_name: str,
    expected_name: str,
    required_dtype: Any = None,
) -> Comparison:
    """``actual`` against ``expected`` by the rule: ``bound`` made sided (:func:`sided_bound`), else rtol/atol."""
    return compare_arrays(
        actual,
        expected,
        rtol,
        atol,
        actual_name=actual_name,
        expected_name=expected_name,
        bound=sided_bound(bound, exact_side=exact_side, golden=golden),
        required_dtype=required_dtype,
    )


def judge(
    name: str,
    actual: np.ndarray,
    expected: np.ndarray,
    *,
    rtol: float,
    atol: float,
    bound: ErrorBound | None = None,
    exact_side: bool = False,
    golden: bool = False,
    actual_name: str,
    expected_name: str,
    required_dtype: Any = None,
    tensor: str = "output",
    arrays: dict[str, np.ndarray] | None = None,
) -> Check:
    """The Check named ``name`` of one comparison by the rule (see :func:`compare`); a gradient's
    summary starts with its name (``tensor``)."""
    comparison = compare(
        actual,
        expected,
        rtol=rtol,
        atol=atol,
        bound=bound,
        exact_side=exact_side,
        golden=golden,
        actual_name=actual_name,
        expected_name=expected_name,
        required_dtype=required_dtype,
    )
    summary = comparison.summary() if tensor == "output" else f"{tensor}: {comparison.summary()}"
    return Check(name, comparison.passed, summary, comparison=comparison, tensor=tensor, arrays=arrays)


def case_forward_bound(
    case: Case, tensors: CaseTensors, x: np.ndarray | None = None, output_channels: np.ndarray | None = None
) -> ErrorBound | None:
    """The error bound of ``case``'s output for input ``x`` (default the case's input), restricted
    to ``output_channels`` when only those are compared; None when the case asks for rtol/atol."""
    if case.tolerance_mode != "bound":
        return None
    if x is None or x is tensors.input:  # the case's own input: computed once per case, then reused
        if "forward" not in tensors.bound_memo:
            tensors.bound_memo["forward"] = forward_bound(
                case.dtype, case.conv.functional_kwargs(), tensors.input, tensors.weight, tensors.bias
            )
        bound = tensors.bound_memo["forward"]
    else:
        # Another input (the metamorphic relations' crop): its bound is kept for the last such array,
        # held by the memo itself so that it is this very array (the relations compare on one crop,
        # three times: one reference call instead of three).
        held, bound = tensors.bound_memo.get("other_input", (None, None))
        if held is not x:
            bound = forward_bound(case.dtype, case.conv.functional_kwargs(), x, tensors.weight, tensors.bias)
            tensors.bound_memo["other_input"] = (x, bound)
    if output_channels is not None:
        channel_axis = -(case.conv.spatial_dims + 1)  # (N, C, *spatial) or (C, *spatial)
        bound = dataclasses.replace(bound, magnitude=np.take(bound.magnitude, output_channels, axis=channel_axis))
    return bound


def compare_forward(
    case: Case,
    tensors: CaseTensors,
    actual: np.ndarray,
    expected: np.ndarray,
    *,
    actual_name: str,
    expected_name: str,
    x: np.ndarray | None = None,
    output_channels: np.ndarray | None = None,
    exact_side: bool = False,
    golden: bool = False,
    required_dtype: Any = None,
) -> Comparison:
    """Two forward outputs of ``case``, compared by the rule with the case's bound
    (:func:`case_forward_bound`) or its explicit rtol/atol: the forward check, the golden check,
    the extra checks and the benchmark pass all compare outputs through here."""
    rtol, atol = case.rtol_atol
    bound = case_forward_bound(case, tensors, x, output_channels)
    if bound is not None and bound.magnitude.shape != np.shape(expected):
        bound = None  # the other side has the wrong shape: the comparison says so before any bound is used
    return compare(
        actual,
        expected,
        rtol=rtol,
        atol=atol,
        bound=bound,
        exact_side=exact_side,
        golden=golden,
        actual_name=actual_name,
        expected_name=expected_name,
        required_dtype=required_dtype,
    )


@dataclass
class CaseResult:
    """The verdict on one case: its status (outcomes.STATUSES), the kind of a failure, every check."""

    name: str
    file: str
    status: str
    checks: list[Check] = field(default_factory=list)
    message: str = ""
    case: Case | None = None
    run: Any = None  # the running.case_run.CaseRun the checks read (None for a case that did not run)
    seconds: float = 0.0
    load_error: CaseError | None = None  # for status "error": the case file's problems
    backend: dict[str, Any] = field(default_factory=dict)  # torch's device and numerics flags
    kind: str | None = None  # for a failure: one of outcomes.KINDS (None for a pass or a broken case file)
    notes: list[str] = field(default_factory=list)  # lines added to its report (the repro script, the xfail entry)
    # Where the case's time went, seconds per stage (DURATION_STAGES): recorded in JSON and JUnit,
    # ranked by `conformance run --durations N`. ``seconds`` is the run's total, load excluded.
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def max_abs_error(self) -> float | None:
        values = [c.comparison.max_abs_error for c in self.checks if c.comparison and c.comparison.shape_ok]
        return max(values) if values else None

    @property
    def max_rel_error(self) -> float | None:
        values = [c.comparison.max_rel_error for c in self.checks if c.comparison and c.comparison.shape_ok]
        return max(values) if values else None

    @property
    def max_error_ratio(self) -> float | None:
        """The largest error as a multiple of its allowance, over every comparison (<= 1 passes)."""
        values = [c.comparison.max_error_ratio for c in self.checks if c.comparison and c.comparison.shape_ok]
        return max(values) if values else None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "status": self.status,
            "kind": self.kind,
            "max_abs_error": json_float(self.max_abs_error),
            "max_rel_error": json_float(self.max_rel_error),
            "max_error_ratio": json_float(self.max_error_ratio),
            "message": self.message,
            "backend": self.backend,
            "seconds": round(self.seconds, 6),
            "durations": {stage: round(value, 6) for stage, value in self.durations.items()},
        }


# The stages of a case's time, in the order they run: its share of loading its file, making its
# tensors, the untimed warm-up calls, the implementation's forward call, torch's, the forward
# verdict with the extra checks, the gradient check.
DURATION_STAGES = ("load", "tensors", "warm_up", "implementation", "torch", "checks", "backward")


def stage_totals(results: Sequence[CaseResult]) -> dict[str, float]:
    """Seconds per stage summed over ``results``, in DURATION_STAGES order (stages no case had: absent)."""
    totals: dict[str, float] = {}
    for stage in DURATION_STAGES:
        values = [result.durations[stage] for result in results if stage in result.durations]
        if values:
            totals[stage] = sum(values)
    return totals


def error_result(error: CaseError) -> CaseResult:
    """The result of a case file that could not be loaded: status error, its problems as the message."""
    return CaseResult(
        name=error.case_name or str(error.file),
        file=str(error.file),
        status=ERROR,
        message=error.format(snippets=False),
        load_error=error,
    )


def settle(result: CaseResult, allow_unsupported: bool = False) -> None:
    """Status, kind and message of ``result`` from its checks.

    A failed check of the implementation makes it FAILED, with the first such check's kind; only
    checks that the case's own data is wrong make it ERROR; skipped checks make it SKIPPED, and so
    does an unsupported layer under ``allow_unsupported``.
    """
    failed = [check for check in result.checks if not check.passed and not check.broken_case]
    broken = [check for check in result.checks if not check.passed and check.broken_case]
    skipped = [check for check in result.checks if check.skipped]
    if failed:
        result.status, result.kind = FAILED, failed[0].failure_kind()
        result.message = "; ".join(check.summary for check in failed)
        if allow_unsupported and all(check.failure_kind() == UNSUPPORTED for check in failed):
            result.status = SKIPPED
    elif broken:
        result.status = ERROR
        result.message = "the case is wrong: " + "; ".join(check.summary for check in broken)
    elif skipped:
        result.status = SKIPPED
        result.message = "; ".join(check.summary for check in skipped)
