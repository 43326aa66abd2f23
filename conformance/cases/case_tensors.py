"""A case's tensors, made once from its specs, in the case's dtype: what every side computes on.

>>> from conformance.cases.loader import load_cases
>>> case = load_cases(["cases/seed"])[0]
>>> tensors = make_tensors(case)
>>> tensors.input.shape == tuple(case.input_shape)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance.cases.precision import to_case_dtype
from conformance.cases.schema import Case
from conformance.cases.tensors import TensorSpec


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
    # The forward error bound of these tensors, computed once per case (a reference call on |x|, |w|):
    # the forward check and every extra check comparing outputs of the case's own input share it
    # (judging.verdict.case_forward_bound fills it).
    bound_memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def make_tensors(case: Case) -> CaseTensors:
    """Every tensor of ``case``, in its dtype (the golden outputs in float64)."""

    def make(spec: TensorSpec, shape: tuple[int, ...], role: str) -> np.ndarray:
        return to_case_dtype(spec.make(shape, np.float64, f"{case.name}:{role}"), case.dtype)

    x = make(case.input, case.input_shape, "input")
    weight = make(case.weight, case.weight.shape or case.conv.weight_shape(), "weight")
    bias = None
    if case.bias is not None:
        bias = make(case.bias, case.bias.shape or (max(case.conv.out_channels, 0),), "bias")
    expected = None
    if case.expected is not None:
        assert case.expected_shape is not None
        expected = case.expected.make(case.expected_shape, np.float64, f"{case.name}:expected")
    grad_output = None
    if case.grad_output is not None:
        assert case.grad_output.shape is not None  # the loader gives grad_output the output's shape
        grad_output = make(case.grad_output, case.grad_output.shape, "grad_output")
    expected_gradients = {
        name: spec.make(spec.shape, np.float64, f"{case.name}:expected_{name}")  # type: ignore[arg-type]
        for name, spec in case.expected_gradients.items()
    }
    return CaseTensors(x, weight, bias, expected, grad_output, expected_gradients)
