"""Run one case: the implementation under test and torch on the same tensors, then compare.

Checks, in order:
* forward: the implementation against torch (torch is the oracle);
* golden: each of them against the case's ``expected`` output, when one is given;
* expect_error: for an invalid layer, both must refuse it. torch must match ``match`` (else the
  case is stale); the implementation's wording is judged only with ``strict_errors``;
* backward (``backward: true``): each gradient against torch autograd (conformance/running/backward.py).

An exception from the implementation is judged by its type (Implementation.judge_exception): a
deliberate refusal (ValueError, RuntimeError, a --refusal-type), unsupported (NotImplementedError)
or a crash (anything else). Every failure gets a kind (conformance/judging/outcomes.py); a case whose own
data is wrong (torch computes an expect_error layer, or both refuse a layer not marked
expect_error) is an error of the case, not a failure of the implementation.

Values are compared within an error bound per element (conformance/judging/tolerance.py) unless the case
asks for ``tolerance: {rtol, atol}`` or ``{mode: assert_close}``.
"""

from __future__ import annotations

import dataclasses
import re
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance.cases.errors import CaseError
from conformance.cases.precision import to_case_dtype
from conformance.cases.schema import Case
from conformance.judging.compare import Comparison, compare_arrays
from conformance.judging.outcomes import (  # noqa: F401 - re-exported
    ACCEPTED_INVALID,
    ADAPTER_ERROR,
    CRASHED,
    ERROR,
    FAILED,
    PASSED,
    REFUSED_VALID,
    SKIPPED,
    UNSUPPORTED,
    WRONG_DTYPE,
    WRONG_SHAPE,
    WRONG_VALUES,
    XFAILED,
    XPASSED,
)
from conformance.judging.tolerance import ErrorBound, forward_bound
from conformance.running.devices import backend_flags
from conformance.running.implementations import REFUSED, Implementation
from conformance.running.torch_oracle import torch_forward


@dataclass(frozen=True)
class CaseTensors:
    """The case's tensors, generated once, in the case's dtype (half-precision values rounded to it,
    so torch and the implementation compute on identical numbers)."""

    input: np.ndarray
    weight: np.ndarray
    bias: np.ndarray | None
    expected: np.ndarray | None
    grad_output: np.ndarray | None = None  # backward cases: dL/d(output)
    expected_gradients: dict[str, np.ndarray] = field(default_factory=dict)  # float64, like expected


def make_tensors(case: Case) -> CaseTensors:
    make = lambda spec, shape, role: to_case_dtype(spec.make(shape, np.float64, f"{case.name}:{role}"), case.dtype)  # noqa: E731
    x = make(case.input, case.input_shape, "input")
    weight = make(case.weight, case.weight.shape or case.conv.weight_shape(), "weight")
    bias = None
    if case.bias is not None:
        bias = make(case.bias, case.bias.shape or (max(case.conv.out_channels, 0),), "bias")
    expected = None
    if case.expected is not None:
        assert case.expected_shape is not None
        expected = case.expected.make(case.expected_shape, np.float64, f"{case.name}:expected")
    grad_output = None if case.grad_output is None else make(case.grad_output, case.grad_output.shape, "grad_output")
    expected_gradients = {
        name: spec.make(spec.shape, np.float64, f"{case.name}:expected_{name}")
        for name, spec in case.expected_gradients.items()
    }
    return CaseTensors(x, weight, bias, expected, grad_output, expected_gradients)


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


@dataclass
class Outcome:
    """What one side (the implementation or torch) did: an output or an exception."""

    output: np.ndarray | None = None
    error: BaseException | None = None
    seconds: float = 0.0
    dtype: str | None = None  # the dtype the output came in (bfloat16 outputs are held as float32)

    @property
    def refused(self) -> bool:
        return self.error is not None

    def describe_error(self) -> str:
        assert self.error is not None
        text = str(self.error).strip().splitlines()[0] if str(self.error).strip() else ""
        return f"{type(self.error).__name__}: {text}"


@dataclass
class CaseRun:
    """Everything known while checking one case; extra checks read it."""

    case: Case
    implementation: Implementation
    tensors: CaseTensors
    impl: Outcome
    torch: Outcome
    device: str = "cpu"

    def compare_outputs(
        self,
        actual: np.ndarray,
        expected: np.ndarray,
        *,
        actual_name: str,
        expected_name: str,
        x: np.ndarray | None = None,
        output_channels: np.ndarray | None = None,
    ) -> Comparison:
        """Compare two forward outputs of this case by the case's rule (see :func:`compare_forward`);
        ``x``: the input the check actually used (a crop, say), default the case's input."""
        return compare_forward(
            self.case,
            self.tensors,
            actual,
            expected,
            actual_name=actual_name,
            expected_name=expected_name,
            x=x,
            output_channels=output_channels,
            exact_side=self.implementation.computes_in_float64,
        )


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
    """Two forward outputs of ``case``, compared by the case's rule: the error bound of input ``x``
    (default the case's input), restricted to ``output_channels`` when only those are compared and
    doubled since both sides are finite-precision results (unless ``exact_side``: one is the float64
    reference); ``golden``: ``expected`` is the case's decimal golden output (one finite-precision
    side, whose inputs were rounded); or the case's explicit rtol/atol. Every check that compares outputs (the extra
    checks, the benchmark pass) goes through here, so all verdicts follow one rule."""
    rtol, atol = case.rtol_atol
    bound = None
    if case.tolerance_mode == "bound":
        x = tensors.input if x is None else x
        bound = forward_bound(case.dtype, case.conv.functional_kwargs(), x, tensors.weight, tensors.bias)
        if output_channels is not None:
            channel_axis = -(case.conv.spatial_dims + 1)  # (N, C, *spatial) or (C, *spatial)
            bound = dataclasses.replace(bound, magnitude=np.take(bound.magnitude, output_channels, axis=channel_axis))
        if golden:
            bound = bound.against_decimals()
        elif not exact_side:
            bound = bound.for_sides(2)
        if bound.magnitude.shape != np.shape(expected):
            bound = None  # the implementation's output has the wrong shape: the forward check says so
    return compare_arrays(
        actual,
        expected,
        rtol,
        atol,
        actual_name=actual_name,
        expected_name=expected_name,
        bound=bound,
        required_dtype=required_dtype,
    )


@dataclass
class CaseResult:
    name: str
    file: str
    status: str
    checks: list[Check] = field(default_factory=list)
    message: str = ""
    case: Case | None = None
    run: CaseRun | None = None
    seconds: float = 0.0
    load_error: CaseError | None = None  # for status "error": the case file's problems
    backend: dict[str, Any] = field(default_factory=dict)  # torch's device and numerics flags
    kind: str | None = None  # for a failure: one of outcomes.KINDS (None for a pass or a broken case file)
    notes: list[str] = field(default_factory=list)  # lines added to its report (the repro script, the xfail entry)

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
            "max_abs_error": _json_float(self.max_abs_error),
            "max_rel_error": _json_float(self.max_rel_error),
            "max_error_ratio": _json_float(self.max_error_ratio),
            "message": self.message,
            "backend": self.backend,
        }


def _json_float(value: float | None) -> float | str | None:
    if value is None or np.isfinite(value):
        return value
    return "inf" if value > 0 else ("-inf" if value < 0 else "nan")


# Checks beyond the forward comparison (metamorphic relations, wiring probes, ...) register here:
# each takes the CaseRun and yields Checks.
EXTRA_CHECKS: list[Callable[[CaseRun], Iterable[Check]]] = []


def _timed(function: Callable[[], np.ndarray | tuple[np.ndarray, str]]) -> Outcome:
    start = time.perf_counter()
    try:
        output = function()
    except Exception as exc:  # noqa: BLE001 - any refusal or crash is a verdict, not a harness error
        return Outcome(error=exc, seconds=time.perf_counter() - start)
    if isinstance(output, tuple):
        return Outcome(output=output[0], dtype=output[1], seconds=time.perf_counter() - start)
    return Outcome(output=output, dtype=output.dtype.name, seconds=time.perf_counter() - start)


_WARMED: set[tuple[Any, ...]] = set()


def _warm_up(key: tuple[Any, ...] | None, call: Callable[[], Any]) -> None:
    """The first call per ``key`` (e.g. op and dtype) pays one-time costs (numba compiles or loads its
    cache, torch's lazy init): made once, untimed, so a case's time is its own call; ``key`` None: every
    time. What it raises is ignored: the timed call raises it again and is judged."""
    if key is not None and key in _WARMED:
        return
    if key is not None:
        _WARMED.add(key)
    try:
        call()
    except Exception:  # noqa: BLE001
        pass


def error_result(error: CaseError) -> CaseResult:
    return CaseResult(
        name=error.case_name or str(error.file),
        file=str(error.file),
        status=ERROR,
        message=error.format(snippets=False),
        load_error=error,
    )


def run_case(
    case: Case,
    implementation: Implementation,
    device: str = "cpu",
    *,
    strict_errors: bool = False,
    allow_unsupported: bool = False,
) -> CaseResult:
    """Run ``case`` through ``implementation`` and torch (on ``device``) and return the verdict.

    ``strict_errors``: an expect_error case's ``match`` judges the implementation's message too;
    ``allow_unsupported``: an unsupported case is skipped instead of failed.
    """
    start = time.perf_counter()
    result = CaseResult(name=case.name, file=str(case.file), status=PASSED, case=case, backend=backend_flags(device))
    if not implementation.supports(case):
        result.status, result.message = SKIPPED, implementation.missing_reason(case)
        return result
    try:
        tensors = make_tensors(case)
    except Exception as exc:  # noqa: BLE001
        result.status, result.message = ERROR, f"could not build the case's tensors: {type(exc).__name__}: {exc}"
        return result
    if implementation.computes_in_float64:
        # The reference picks its algorithm per layer and dtype, and numba compiles per path: one untimed call per
        # case keeps compile time out of every case's time. Only the reference: a plug-in sees exactly the calls
        # the checks make.
        _warm_up(None, lambda: implementation.forward_native(case, tensors.input, tensors.weight, tensors.bias))
    _warm_up(
        ("torch", device, case.conv.functional_name, case.dtype),
        lambda: torch_forward(case, tensors.input, tensors.weight, tensors.bias, device),
    )
    impl = _timed(lambda: implementation.forward_native(case, tensors.input, tensors.weight, tensors.bias))
    oracle = _timed(lambda: torch_forward(case, tensors.input, tensors.weight, tensors.bias, device))
    run = CaseRun(case, implementation, tensors, impl, oracle, device)
    result.run = run

    if case.expect_error is not None:
        result.checks.append(_check_refusal(run, strict_errors))
    else:
        result.checks.extend(_check_forward(run))
        if impl.output is not None and oracle.output is not None:
            for extra in EXTRA_CHECKS:
                try:
                    result.checks.extend(extra(run))
                except Exception as exc:  # noqa: BLE001 - a crashing check is reported, not raised
                    result.checks.append(
                        Check(
                            getattr(extra, "__name__", "check"),
                            False,
                            f"check crashed: {type(exc).__name__}: {exc}",
                            traceback.format_exc().splitlines()[-6:],
                            kind=CRASHED,
                        )
                    )
        if case.backward and impl.output is not None and oracle.output is not None:
            from conformance.running.backward import check_backward  # late: backward.py builds on this module

            result.checks.extend(check_backward(run))
    settle(result, allow_unsupported)
    result.seconds = time.perf_counter() - start
    return result


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


def kind_of_error(implementation: Implementation, error: BaseException) -> str:
    """The failure kind of an exception the implementation raised where torch computed."""
    verdict = implementation.judge_exception(error)
    return REFUSED_VALID if verdict == REFUSED else verdict


def _error_details(outcome: Outcome, implementation: Implementation) -> list[str]:
    """The traceback's last lines for a crash or an unsupported layer (a refusal speaks for itself)."""
    if outcome.error is None or implementation.judge_exception(outcome.error) == REFUSED:
        return []
    return [line.rstrip() for line in traceback.format_exception(outcome.error)[-4:]]


def _check_refusal(run: CaseRun, strict_errors: bool = False) -> Check:
    """An invalid layer: torch must refuse it (matching ``match``: else the case is stale), and
    the implementation must refuse it deliberately (and match too, with ``strict_errors``)."""
    name, pattern = run.implementation.name, run.case.expect_error.match  # type: ignore[union-attr]
    impl, oracle = run.impl, run.torch
    details = [
        f"{side} refused: {outcome.describe_error()}"
        for side, outcome in ((name, impl), ("torch", oracle))
        if outcome.refused
    ]
    if not oracle.refused:
        return Check(
            "expect_error",
            False,
            f"expected an error, but torch computed an output of shape "
            f"{tuple(oracle.output.shape)}: the case's expect_error is stale",
            details,
            broken_case=True,
        )
    if pattern and not re.search(pattern, str(oracle.error)):
        return Check(
            "expect_error",
            False,
            f"torch's error does not match /{pattern}/: {oracle.describe_error()}: the case's match is stale",
            details,
            broken_case=True,
        )
    if not impl.refused:
        return Check(
            "expect_error",
            False,
            f"expected an error, but {name} computed an output of shape {tuple(impl.output.shape)}",
            details,
            kind=ACCEPTED_INVALID,
        )
    verdict = run.implementation.judge_exception(impl.error)  # type: ignore[arg-type]
    if verdict == CRASHED:
        return Check(
            "expect_error",
            False,
            f"{name} crashed instead of refusing the layer: {impl.describe_error()} "
            f"(a refusal raises ValueError, RuntimeError or a --refusal-type)",
            details + _error_details(impl, run.implementation),
            kind=CRASHED,
        )
    if verdict == UNSUPPORTED:
        return Check(
            "expect_error", False, f"{name} says unsupported: {impl.describe_error()}", details, kind=UNSUPPORTED
        )
    if verdict == ADAPTER_ERROR:
        return Check(
            "expect_error",
            False,
            f"{name}'s adapter failed in its own code: {impl.describe_error()}",
            details + _error_details(impl, run.implementation),
            kind=ADAPTER_ERROR,
        )
    if strict_errors and pattern and not re.search(pattern, str(impl.error)):
        return Check(
            "expect_error",
            False,
            f"{name}'s error does not match /{pattern}/ (--strict-errors): {impl.describe_error()}",
            details,
            kind=WRONG_VALUES,
        )
    return Check("expect_error", True, "both refused the layer", details)


def _check_forward(run: CaseRun) -> list[Check]:
    case, name = run.case, run.implementation.name
    impl, oracle = run.impl, run.torch
    if impl.refused or oracle.refused:
        details = _error_details(impl, run.implementation)
        verdict = run.implementation.judge_exception(impl.error) if impl.refused else None  # type: ignore[arg-type]
        if impl.refused and oracle.refused:
            summary = (
                f"both refused the layer ({name}: {impl.describe_error()}; torch: {oracle.describe_error()}); "
                "if the layer is meant to be invalid, mark the case expect_error: true"
            )
            if verdict == REFUSED:
                return [Check("forward", False, summary, details, broken_case=True)]
            return [Check("forward", False, summary, details, kind=verdict)]
        if impl.refused:
            kind = kind_of_error(run.implementation, impl.error)  # type: ignore[arg-type]
            how = {
                CRASHED: "crashed",
                UNSUPPORTED: "says unsupported",
                REFUSED_VALID: "refused the layer",
                ADAPTER_ERROR: "failed in its adapter's own code",
            }[kind]
            summary = (
                f"{name} {how}: {impl.describe_error()}, but torch computed an output of shape "
                f"{tuple(oracle.output.shape)}"
            )
            return [Check("forward", False, summary, details, kind=kind)]
        summary = (
            f"torch refused the layer ({oracle.describe_error()}), but {name} computed an output of shape "
            f"{tuple(impl.output.shape)}; if the layer is meant to be invalid, mark the case expect_error: true"
        )
        return [Check("forward", False, summary, details, kind=ACCEPTED_INVALID)]

    rtol, atol = case.rtol_atol
    bound = None
    if case.tolerance_mode == "bound":
        tensors = run.tensors
        bound = forward_bound(case.dtype, case.conv.functional_kwargs(), tensors.input, tensors.weight, tensors.bias)
    checks = [
        _comparison_check(
            "forward",
            compare_arrays(
                impl.output,
                oracle.output,
                rtol,
                atol,
                actual_name=name,
                expected_name="torch",
                bound=sided(bound, run.implementation),
            ),
        )
    ]
    if not run.implementation.computes_in_float64 and impl.dtype != case.dtype:
        checks.append(
            Check("dtype", False, f"{name} returned dtype {impl.dtype}, expected {case.dtype}", kind=WRONG_DTYPE)
        )
    if run.tensors.expected is not None:
        golden = [
            _comparison_check(
                f"{side} vs expected",
                compare_arrays(
                    outcome.output,
                    run.tensors.expected,
                    rtol,
                    atol,
                    actual_name=side,
                    expected_name="expected",
                    bound=bound and bound.against_decimals(),
                ),
            )
            for side, outcome in ((name, impl), ("torch", oracle))
        ]
        checks.extend(golden)
    return checks


def sided(bound: ErrorBound | None, implementation: Implementation) -> ErrorBound | None:
    """The bound for implementation-vs-torch: doubled unless the implementation is the float64
    reference, since then both sides are finite-precision results that may each be off by a bound."""
    if bound is None or implementation.computes_in_float64:
        return bound
    return bound.for_sides(2)


def _comparison_check(name: str, comparison: Comparison) -> Check:
    return Check(name, comparison.passed, comparison.summary(), comparison=comparison)
