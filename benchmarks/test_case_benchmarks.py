"""The benchmark pass: every case's forward, timed through the implementation under test and
through torch with pytest-benchmark, one benchmark group per case so the two sit side by side.

    make bench                                   # timed, saved under .benchmarks/ and reports/
    .venv/bin/python -m pytest benchmarks/test_case_benchmarks.py --benchmark-enable -k depthwise
    .venv/bin/python -m pytest benchmarks/test_case_benchmarks.py --benchmark-enable --impl mypkg.conv:conv2d

``make test`` runs this module with ``--benchmark-disable`` (pyproject's addopts): each benchmark
runs its forward once and still asserts the result, and nothing ever fails on time. Both sides
run as ``conformance bench`` runs them (``conformance.tools.benchmark.prepare_forwards``): in the case's
dtype, the torch module built once outside the clock. Here the input stays the same from round to
round (pytest-benchmark's calibrated loop); ``conformance bench`` rotates a pool of inputs.

The timed output is compared with torch's output computed the harness's way
(``conformance.running.torch_oracle.torch_forward``), once per case and shared by both items, and with the
case's ``expected`` output when it has one. Cases that expect an error have no forward to time;
broken case files fail in the case suite itself, not here.
"""

from __future__ import annotations

import numpy as np
import pytest

from conformance.cases.loader import load_cases
from conformance.cases.schema import Case
from conformance.judging.compare import Comparison
from conformance.judging.verdict import compare_forward
from conformance.pytest_plugin import IMPLEMENTATION_KEY, case_roots
from conformance.reporting.terminal import comparison_details
from conformance.running.torch_oracle import torch_forward
from conformance.tools.benchmark import agreement, prepare_forwards, workload

# The whole library again, as benchmarks: `make bench` times it; the slow tier checks it.
pytestmark = pytest.mark.slow

SIDES = ("implementation", "torch")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    roots = [root for root in case_roots(metafunc.config) if root.exists()]
    cases = [item for item in load_cases(roots) if isinstance(item, Case) and item.expect_error is None]
    metafunc.parametrize("case", cases, ids=[case.name for case in cases])


@pytest.fixture(scope="module")
def oracle_outputs() -> dict[str, np.ndarray]:
    """Case name -> torch's output through the harness's own path; computed once per case."""
    return {}


@pytest.mark.parametrize("side", SIDES)
def test_forward(
    benchmark, case: Case, side: str, request: pytest.FixtureRequest, oracle_outputs: dict[str, np.ndarray]
) -> None:
    implementation = request.config.stash[IMPLEMENTATION_KEY]
    forwards = prepare_forwards(case, implementation)
    benchmark.group = case.name
    benchmark.extra_info.update(
        side=side, implementation=implementation.name, dtype=case.dtype, multiply_adds=workload(case).multiply_adds
    )
    forward = forwards.implementation if side == "implementation" else forwards.torch
    output = benchmark(forward, forwards.tensors.input)

    tensors = forwards.tensors
    if case.name not in oracle_outputs:
        oracle_outputs[case.name] = torch_forward(case, tensors.input, tensors.weight, tensors.bias)
    oracle = oracle_outputs[case.name]
    name = implementation.name if side == "implementation" else "torch (as benchmarked)"
    _assert_passed(case, agreement(case, tensors, name, output, oracle), {name: output, "torch": oracle})
    if tensors.expected is not None:
        golden = compare_forward(
            case, tensors, output, tensors.expected, actual_name=name, expected_name="expected", golden=True
        )
        _assert_passed(case, golden, {name: output, "expected": tensors.expected})


def _assert_passed(case: Case, comparison: Comparison, outputs: dict[str, np.ndarray]) -> None:
    if not comparison.passed:
        details = "\n  ".join(comparison_details(case, comparison, outputs))
        pytest.fail(f"case {case.name} ({case.location}): {comparison.summary()}\n  {details}", pytrace=False)
