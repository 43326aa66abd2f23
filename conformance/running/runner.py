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
asks for ``tolerance: {rtol, atol}`` or ``{mode: assert_close}``; every comparison is judged by
conformance/judging/verdict.py.

Nothing here is global: a :class:`CaseRunner` holds one run's settings, its extra checks (an
explicit list, :data:`conformance.running.checks.DEFAULT_CHECKS` unless told), its oracle (torch,
or a fake in a test) and what it has warmed up; :func:`run_case` is a run of one case.
"""

from __future__ import annotations

import gc
import re
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance.cases.case_tensors import CaseTensors, make_tensors
from conformance.cases.loader import load_seconds
from conformance.cases.schema import Case
from conformance.judging.outcomes import (
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
    WRONG_VALUES,
    XFAILED,
    XPASSED,
)
from conformance.judging.verdict import (
    DURATION_STAGES,
    CaseResult,
    Check,
    case_forward_bound,
    error_result,
    judge,
    settle,
)
from conformance.running.backward import check_backward
from conformance.running.case_run import CaseRun, ExtraCheck, Oracle, Outcome, error_details, kind_of_error
from conformance.running.checks import DEFAULT_CHECKS
from conformance.running.devices import backend_flags
from conformance.running.implementations import REFUSED, Implementation
from conformance.running.jit_watch import JitWatch
from conformance.running.torch_oracle import TorchOracle

# Importable from here as before: the result types, the statuses, and what the public API re-exports.
__all__ = [
    "DURATION_STAGES",
    "ERROR",
    "FAILED",
    "PASSED",
    "SKIPPED",
    "XFAILED",
    "XPASSED",
    "CaseResult",
    "CaseRunner",
    "CaseTensors",
    "Check",
    "error_result",
    "make_tensors",
    "run_case",
    "settle",
]


def _timed(function: Callable[[], np.ndarray | tuple[np.ndarray, str]]) -> Outcome:
    """One call of ``function``, timed, with the garbage collector paused as timeit does: a full
    collection of the run's own objects (0.1 s in the library's run) otherwise lands in whichever
    call allocates when one is due, always the same case (docs/performance.md, round 8)."""
    collecting = gc.isenabled()
    gc.disable()
    start = time.perf_counter()
    try:
        output = function()
    except Exception as exc:  # any refusal or crash is a verdict, not a harness error
        return Outcome(error=exc, seconds=time.perf_counter() - start)
    finally:
        seconds = time.perf_counter() - start
        if collecting:
            gc.enable()
    if isinstance(output, tuple):
        return Outcome(output=output[0], dtype=output[1], seconds=seconds)
    return Outcome(output=output, dtype=output.dtype.name, seconds=seconds)


@dataclass
class CaseRunner:
    """One run of cases through ``implementation`` and the oracle (on ``device``).

    ``strict_errors``: an expect_error case's ``match`` judges the implementation's message too;
    ``allow_unsupported``: an unsupported case is skipped instead of failed; ``checks``: the extra
    checks after the forward comparison; ``oracle``: what answers for torch. The first call per op
    and dtype is warmed up once per runner (``warmed``), so run many cases through one runner.
    """

    implementation: Implementation
    device: str = "cpu"
    strict_errors: bool = False
    allow_unsupported: bool = False
    checks: Sequence[ExtraCheck] = DEFAULT_CHECKS
    oracle: Oracle = field(default_factory=TorchOracle)
    warmed: set[tuple[Any, ...]] = field(default_factory=set)

    def _warm_up(self, key: tuple[Any, ...] | None, call: Callable[[], Any]) -> None:
        """The first call per ``key`` (e.g. op and dtype) pays one-time costs (numba compiles or loads its
        cache, torch's lazy init): made once, untimed, so a case's time is its own call; ``key`` None: every
        time. What it raises is ignored: the timed call raises it again and is judged."""
        if key is not None and key in self.warmed:
            return
        if key is not None:
            self.warmed.add(key)
        try:
            call()
        except Exception:  # noqa: BLE001
            pass

    def _timed_implementation(self, case: Case, tensors: CaseTensors, durations: dict[str, float]) -> Outcome:
        """The implementation's forward on ``tensors``, timed. For the reference, a call that made numba
        compile or load a kernel (:class:`JitWatch`: a shape the warm-up's did not take) is timed again, and
        the first call's extra time goes to ``warm_up``: 0.5 s of loading numba's parallel kernel was the
        library's slowest "case" (docs/performance.md, round 8). The first call's outcome is the one
        judged. Plug-ins are called once, as the checks need (see the warm-up)."""
        implementation = self.implementation

        def call() -> np.ndarray | tuple[np.ndarray, str]:
            return implementation.forward_native(case, tensors.input, tensors.weight, tensors.bias)

        if not implementation.computes_in_float64:
            return _timed(call)
        with JitWatch() as watch:
            outcome = _timed(call)
        if watch.fired:
            again = _timed(call)
            durations["warm_up"] += max(0.0, outcome.seconds - again.seconds)
            outcome.seconds = min(outcome.seconds, again.seconds)
        return outcome

    def run(self, case: Case) -> CaseResult:
        """Run ``case`` through the implementation and the oracle and return the verdict."""
        implementation, device, oracle = self.implementation, self.device, self.oracle
        start = time.perf_counter()
        result = CaseResult(
            name=case.name, file=str(case.file), status=PASSED, case=case, backend=backend_flags(device)
        )
        durations = result.durations
        durations["load"] = load_seconds(case)
        if not implementation.supports(case):
            result.status, result.message = SKIPPED, implementation.missing_reason(case)
            result.seconds = time.perf_counter() - start
            return result
        try:
            tensors = make_tensors(case)
        except Exception as exc:  # noqa: BLE001
            result.status, result.message = ERROR, f"could not build the case's tensors: {type(exc).__name__}: {exc}"
            result.seconds = time.perf_counter() - start
            return result
        stage_start = time.perf_counter()
        durations["tensors"] = stage_start - start
        if implementation.computes_in_float64:
            # numba compiles (or loads from its cache) each kernel once per process: one untimed call per op and
            # dtype keeps that out of the cases' times. Not one per case: that doubled every reference forward (a
            # tenth of the library's run, docs/performance.md round 4). Only the reference: a plug-in sees exactly
            # the calls the checks make.
            self._warm_up(
                ("reference", case.conv.functional_name, case.dtype),
                lambda: implementation.forward_native(case, tensors.input, tensors.weight, tensors.bias),
            )
        self._warm_up(
            ("torch", device, case.conv.functional_name, case.dtype),
            lambda: oracle.forward(case, tensors.input, tensors.weight, tensors.bias, device),
        )
        durations["warm_up"] = time.perf_counter() - stage_start
        impl = self._timed_implementation(case, tensors, durations)
        torch = _timed(lambda: oracle.forward(case, tensors.input, tensors.weight, tensors.bias, device))
        durations["implementation"], durations["torch"] = impl.seconds, torch.seconds
        stage_start = time.perf_counter()
        run = CaseRun(case, implementation, tensors, impl, torch, device, oracle)
        result.run = run

        if case.expect_error is not None:
            result.checks.append(_check_refusal(run, self.strict_errors))
        else:
            result.checks.extend(_check_forward(run))
            if impl.output is not None and torch.output is not None:
                for extra in self.checks:
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
            if case.backward and impl.output is not None and torch.output is not None:
                durations["checks"] = time.perf_counter() - stage_start
                stage_start = time.perf_counter()
                result.checks.extend(check_backward(run))
                durations["backward"] = time.perf_counter() - stage_start
        durations.setdefault("checks", time.perf_counter() - stage_start)
        settle(result, self.allow_unsupported)
        result.seconds = time.perf_counter() - start
        return result


def run_case(
    case: Case,
    implementation: Implementation,
    device: str = "cpu",
    *,
    strict_errors: bool = False,
    allow_unsupported: bool = False,
    checks: Sequence[ExtraCheck] = DEFAULT_CHECKS,
    oracle: Oracle | None = None,
) -> CaseResult:
    """Run one ``case`` through ``implementation`` and torch (or ``oracle``) and return the verdict
    (a :class:`CaseRunner` of its own: to run many cases, make one runner and call its ``run``)."""
    runner = CaseRunner(
        implementation,
        device,
        strict_errors=strict_errors,
        allow_unsupported=allow_unsupported,
        checks=checks,
        oracle=TorchOracle() if oracle is None else oracle,
    )
    return runner.run(case)


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
        assert oracle.output is not None  # (narrowing: what does not refuse has an output)
        return Check(
            "expect_error",
            False,
            f"expected an error, but torch computed an output of shape "
            f"{oracle.shape}: the case's expect_error is stale",
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
        assert impl.output is not None  # (narrowing, as above)
        return Check(
            "expect_error",
            False,
            f"expected an error, but {name} computed an output of shape {impl.shape}",
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
            details + error_details(impl.error, run.implementation),
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
            details + error_details(impl.error, run.implementation),
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
        details = error_details(impl.error, run.implementation)
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
            assert oracle.output is not None  # (narrowing: torch did not refuse)
            kind = kind_of_error(run.implementation, impl.error)  # type: ignore[arg-type]
            how = {
                CRASHED: "crashed",
                UNSUPPORTED: "says unsupported",
                REFUSED_VALID: "refused the layer",
                ADAPTER_ERROR: "failed in its adapter's own code",
            }[kind]
            summary = f"{name} {how}: {impl.describe_error()}, but torch computed an output of shape {oracle.shape}"
            return [Check("forward", False, summary, details, kind=kind)]
        assert impl.output is not None  # (narrowing: the implementation did not refuse)
        summary = (
            f"torch refused the layer ({oracle.describe_error()}), but {name} computed an output of shape "
            f"{impl.shape}; if the layer is meant to be invalid, mark the case expect_error: true"
        )
        return [Check("forward", False, summary, details, kind=ACCEPTED_INVALID)]

    assert impl.output is not None and oracle.output is not None  # neither raised
    rtol, atol = case.rtol_atol
    bound = case_forward_bound(case, run.tensors)  # made once: the forward and both golden comparisons share it
    checks = [
        judge(
            "forward",
            impl.output,
            oracle.output,
            rtol=rtol,
            atol=atol,
            bound=bound,
            exact_side=run.implementation.computes_in_float64,
            actual_name=name,
            expected_name="torch",
        )
    ]
    if not run.implementation.computes_in_float64 and impl.dtype != case.dtype:
        checks.append(
            Check("dtype", False, f"{name} returned dtype {impl.dtype}, expected {case.dtype}", kind=WRONG_DTYPE)
        )
    if run.tensors.expected is not None:
        golden = [
            judge(
                f"{side} vs expected",
                output,
                run.tensors.expected,
                rtol=rtol,
                atol=atol,
                bound=bound,
                golden=True,
                actual_name=side,
                expected_name="expected",
            )
            for side, output in ((name, impl.output), ("torch", oracle.output))
        ]
        checks.extend(golden)
    return checks
