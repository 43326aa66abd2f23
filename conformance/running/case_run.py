"""What one case's run holds while its checks read it: the tensors, each side's outcome, the
oracle that answers for torch. Extra checks (conformance/running/checks/) and the backward check
take a :class:`CaseRun` and return :class:`~conformance.judging.verdict.Check` lines.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from conformance.cases.case_tensors import CaseTensors
from conformance.cases.schema import Case
from conformance.judging.compare import Comparison
from conformance.judging.outcomes import REFUSED_VALID
from conformance.judging.verdict import Check, compare_forward
from conformance.running.implementations import REFUSED, Implementation


class Oracle(Protocol):
    """What the run asks torch (or a fake standing in for it in a test): the forward, the gradients
    of ``sum(output * grad_output)``, and the forward in another memory layout. Each raises what
    torch raises for an invalid layer. :class:`conformance.running.torch_oracle.TorchOracle` is the real one."""

    def forward(
        self, case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, device: str = "cpu"
    ) -> np.ndarray: ...

    def backward(
        self,
        case: Case,
        grad_output: np.ndarray,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        device: str = "cpu",
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]: ...

    def forward_variant(
        self, case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, variant: str, device: str = "cpu"
    ) -> np.ndarray: ...


def torch_oracle() -> Oracle:
    """The real oracle (imported here, on first use: this module stays importable without torch)."""
    from conformance.running.torch_oracle import TorchOracle

    return TorchOracle()


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

    @property
    def shape(self) -> tuple[int, ...]:
        """The output's shape (() for an outcome that raised)."""
        return () if self.output is None else tuple(self.output.shape)

    def describe_error(self) -> str:
        assert self.error is not None
        return describe_error(self.error)


def describe_error(error: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"


@dataclass
class CaseRun:
    """Everything known while checking one case; extra checks read it."""

    case: Case
    implementation: Implementation
    tensors: CaseTensors
    impl: Outcome
    torch: Outcome
    device: str = "cpu"
    oracle: Oracle = field(default_factory=lambda: torch_oracle())

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
        """Compare two forward outputs of this case by the case's rule (see
        :func:`conformance.judging.verdict.compare_forward`); ``x``: the input the check actually
        used (a crop, say), default the case's input."""
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


# A check beyond the forward comparison (metamorphic relations, wiring probes, ...): the run in, Checks out.
ExtraCheck = Callable[[CaseRun], Iterable[Check]]


def kind_of_error(implementation: Implementation, error: BaseException) -> str:
    """The failure kind of an exception the implementation raised where torch computed."""
    verdict = implementation.judge_exception(error)
    return REFUSED_VALID if verdict == REFUSED else verdict


def error_details(error: BaseException | None, implementation: Implementation) -> list[str]:
    """The traceback's last lines for a crash or an unsupported layer (a refusal speaks for itself)."""
    if error is None or implementation.judge_exception(error) == REFUSED:
        return []
    return [line.rstrip() for line in traceback.format_exception(error)[-4:]]
