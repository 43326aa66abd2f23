"""The backward check of a ``backward: true`` case: each gradient of ``sum(output * grad_output)``
from the implementation under test against torch autograd, and against ``expected_gradients``.

A report names the gradient and the element, in the gradient's own terms: ``dx[n, c, h, w]`` with
the group that input channel belongs to, ``dw[o, c, p, q]`` with the group and the input channel
the tap reads, ``db[o]`` with the output channel's group.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import numpy as np

from conformance.cases.schema import DTYPES, GRADIENTS, Case
from conformance.judging.tolerance import gradient_bounds
from conformance.judging.verdict import Check, judge
from conformance.running.case_run import CaseRun, describe_error, kind_of_error


def check_backward(run: CaseRun) -> list[Check]:
    """One Check per gradient (plus one per golden gradient), or one skipped/failed Check saying why."""
    case, implementation, tensors = run.case, run.implementation, run.tensors
    name = implementation.name
    backward_name = implementation.backward_name_for(case)
    if implementation.backward_function_for(case) is None:
        op = case.conv.functional_name
        if ":" in name:  # one function (a conv2d): its backward is <function>_backward beside it
            function = name.rpartition(":")[2]
            return [
                Check(
                    "backward",
                    True,
                    f"backward skipped: {name} offers no backward (give it a `backward` "
                    f"attribute or define {function}_backward beside it; see README)",
                    skipped=True,
                )
            ]
        return [
            Check(
                "backward",
                True,
                f"backward skipped: {name} offers no backward for {op} (define {op}_backward beside {op}; see README)",
                skipped=True,
            )
        ]
    grad_output, x, weight, bias = tensors.grad_output, tensors.input, tensors.weight, tensors.bias
    assert grad_output is not None  # a backward case has one (the loader sees to it)
    arguments = (grad_output, x, weight, bias)
    impl, impl_error, impl_seconds = _call(lambda: implementation.backward(case, *arguments))
    oracle, oracle_error, _ = _call(lambda: run.oracle.backward(case, grad_output, x, weight, bias, device=run.device))
    if oracle_error is not None:
        return [Check("backward", False, f"torch autograd raised {describe_error(oracle_error)}")]
    if impl_error is not None:
        return [
            Check(
                "backward",
                False,
                f"{backward_name} raised {describe_error(impl_error)}",
                [line.rstrip() for line in traceback.format_exception(impl_error)[-4:]],
                kind=kind_of_error(implementation, impl_error),
            )
        ]
    problem = _shape_problem(impl, case)
    if problem:
        return [Check("backward", False, f"{backward_name} {problem}")]

    bounds = None
    if case.tolerance_mode == "bound":
        bounds = gradient_bounds(
            case.dtype, case.conv.functional_kwargs(), grad_output, x, weight, bias, op=case.conv.functional_name
        )
    rtol, atol = case.rtol_atol
    required = None if implementation.computes_in_float64 else DTYPES[case.dtype]
    checks = []
    for index, gradient in enumerate(GRADIENTS):
        if gradient == "grad_bias" and tensors.bias is None:
            continue
        mine, theirs = np.asarray(impl[index]), oracle[index]
        golden = tensors.expected_gradients.get(gradient)
        arrays = {name: mine, "torch": theirs, **({"expected": golden} if golden is not None else {})}
        bound = bounds[gradient] if bounds else None
        checks.append(
            judge(
                gradient,
                mine,
                theirs,
                rtol=rtol,
                atol=atol,
                bound=bound,
                exact_side=implementation.computes_in_float64,
                actual_name=name,
                expected_name="torch",
                required_dtype=required,
                tensor=gradient,
                arrays=arrays,
            )
        )
        if golden is not None:
            checks += [
                judge(
                    gradient,
                    value,
                    golden,
                    rtol=rtol,
                    atol=atol,
                    bound=bound,
                    golden=True,
                    actual_name=side,
                    expected_name="expected",
                    tensor=gradient,
                    arrays=arrays,
                )
                for side, value in ((name, mine), ("torch", theirs))
            ]
    if checks:
        checks[0].details.append(f"backward took {impl_seconds:.3g} s in {backward_name}")
    return checks


def _call(function: Any) -> tuple[Any, BaseException | None, float]:
    start = time.perf_counter()
    try:
        return function(), None, time.perf_counter() - start
    except Exception as exc:  # a refusal or crash is a verdict
        return None, exc, time.perf_counter() - start


def _shape_problem(result: Any, case: Case) -> str | None:
    """The plug-in must return (grad_input, grad_weight, grad_bias), grad_bias None without a bias."""
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        got = (
            f"a {type(result).__name__} of {len(result)}"
            if isinstance(result, (tuple, list))
            else type(result).__name__
        )
        return f"must return (grad_input, grad_weight, grad_bias), got {got}"
    if case.bias is None and result[2] is not None:
        return "returned a grad_bias for a layer without bias (expected None)"
    if case.bias is not None and result[2] is None:
        return "returned grad_bias None for a layer with a bias"
    return None
