"""Timing one case: the implementation under test and torch, side by side, on the same inputs.

Both sides are timed as a user runs them: in the case's dtype (the built-in reference computes
in float64 when it serves as the oracle; here it gets float32 arrays like any plug-in), with the
layer prepared once outside the clock (torch's module is built once; nothing else is cached).
Each round gives both sides the same input, drawn in turn from a small pool of distinct arrays,
so neither side profits from finding last round's data in the cache; the sides alternate within
a round so machine noise falls on both alike.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from conformance.cases.case_tensors import CaseTensors, make_tensors
from conformance.cases.schema import DTYPES, Case, conv_output_shape
from conformance.cases.tensors import derived_seed
from conformance.judging.compare import Comparison
from conformance.judging.json_numbers import json_float
from conformance.judging.verdict import compare_forward
from conformance.running.implementations import Implementation
from conformance.running.torch_oracle import build_module, to_numpy, to_torch
from conformance.tools.machine import Machine

Forward = Callable[[np.ndarray], np.ndarray]

WARMUP_CALLS = 2  # first calls pay for allocation, thread-pool start, oneDNN primitive creation
MIN_ROUNDS = 5
MIN_SECONDS = 0.2  # automatic rounds: until each side has run this long (and MIN_ROUNDS)...
MAX_ROUNDS = 1000  # ... or this many rounds
POOL_SIZE = 4


@dataclass(frozen=True)
class Workload:
    """The arithmetic and the compulsory memory traffic of one forward."""

    multiply_adds: int
    bytes_moved: int  # input + weight + bias read once, output written once

    @property
    def flops(self) -> int:
        return 2 * self.multiply_adds


def workload(case: Case) -> Workload:
    """Multiply-adds, for any op: every product pairs one weight tap with one element of its group,
    so a convolution does N·C_out·prod(out spatial) · (C_in/G)·prod(kernel) and a transposed one
    N·C_in·prod(in spatial) · (C_out/G)·prod(kernel) (each input element is spread by every tap of
    its row; products that land on cropped padding are counted, as the op computes them).

    >>> from pathlib import Path
    >>> from conformance.cases.loader import load_file
    >>> case = load_file(Path(__file__).parents[2] / "cases" / "seed" / "groups3.yaml")[0]
    >>> workload(case)  # 6 outputs x 2 inputs each; (6 + 12 + 6) float32 values
    Workload(multiply_adds=12, bytes_moved=96)
    """
    conv = case.conv
    output_shape = conv_output_shape(conv, case.input_shape)
    outputs = math.prod(output_shape)
    taps = math.prod(conv.kernel_dims)
    if conv.transposed:
        multiply_adds = math.prod(case.input_shape) * (conv.out_channels // conv.groups) * taps
    else:
        multiply_adds = outputs * (conv.in_channels // conv.groups) * taps
    elements = math.prod(case.input_shape) + math.prod(conv.weight_shape()) + outputs
    elements += conv.out_channels if case.bias is not None else 0
    return Workload(multiply_adds, elements * np.dtype(DTYPES[case.dtype]).itemsize)


@dataclass(frozen=True)
class Forwards:
    """The two sides of a case, ready to time: each maps an input array to the output array."""

    implementation: Forward
    torch: Forward
    tensors: CaseTensors


def prepare_forwards(case: Case, implementation: Implementation) -> Forwards:
    """Build both sides once. The implementation gets the case's dtype even when it is the
    reference, whose float64 mode is for correctness, not for the user's speed."""
    tensors = make_tensors(case)
    as_used = replace(implementation, computes_in_float64=False)

    def implementation_forward(x: np.ndarray) -> np.ndarray:
        return as_used.forward(case, x, tensors.weight, tensors.bias)

    module = build_module(case, tensors.weight, tensors.bias)

    def torch_forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return to_numpy(module(to_torch(x, case)))  # no copy for float32/float64

    return Forwards(implementation_forward, torch_forward, tensors)


def input_pool(case: Case, tensors: CaseTensors, size: int = POOL_SIZE) -> list[np.ndarray]:
    """The case's own input, then ``size - 1`` distinct uniform [-1, 1) arrays of its shape and dtype."""
    pool = [tensors.input]
    for index in range(1, size):
        rng = np.random.default_rng(derived_seed(f"{case.name}:bench-input:{index}"))
        pool.append(rng.uniform(-1.0, 1.0, tensors.input.shape).astype(tensors.input.dtype))
    return pool


def agreement(
    case: Case, tensors: CaseTensors, implementation_name: str, output: np.ndarray, torch_output: np.ndarray
) -> Comparison:
    """The timed output against torch's, by the case's tolerance rule and in the case's dtype."""
    return compare_forward(
        case,
        tensors,
        output,
        torch_output,
        actual_name=implementation_name,
        expected_name="torch",
        required_dtype=DTYPES[case.dtype],
    )


@dataclass(frozen=True)
class Timing:
    """Seconds per call over the timed rounds."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def iqr(self) -> float:
        """Interquartile range: the spread of the middle half of the rounds."""
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q3 - q1)


@dataclass
class CaseBenchmark:
    """One row of the report."""

    name: str
    workload: Workload
    implementation: Timing | None = None
    torch: Timing | None = None
    comparison: Comparison | None = None
    roofline_s: float = math.nan
    bound: str = ""
    error: str = ""  # a side that raised: no timing

    @property
    def ratio(self) -> float:
        """Implementation time / torch time: below 1, the implementation is faster."""
        return self.implementation.median / self.torch.median if self.implementation and self.torch else math.nan

    @property
    def agrees(self) -> bool:
        return not self.error and self.comparison is not None and self.comparison.passed

    def gflops(self, timing: Timing | None) -> float:
        return self.workload.flops / timing.median / 1e9 if timing else math.nan

    def to_json(self) -> dict[str, Any]:
        def measured(value: float | None) -> float | str | None:
            """NaN here means "not measured" (a side that did not run): null, as every JSON writer says it."""
            return None if value is None or math.isnan(value) else json_float(value)

        return {
            "name": self.name,
            "reference_s": measured(self.implementation.median if self.implementation else None),
            "torch_s": measured(self.torch.median if self.torch else None),
            "ratio": measured(self.ratio),
            "gflops": measured(self.gflops(self.implementation)),
            "roofline_s": measured(self.roofline_s),
            "reference_iqr_s": measured(self.implementation.iqr if self.implementation else None),
            "torch_iqr_s": measured(self.torch.iqr if self.torch else None),
            "torch_gflops": measured(self.gflops(self.torch)),
            "roofline_bound": self.bound,
            "rounds": len(self.implementation.samples) if self.implementation else 0,
            "multiply_adds": self.workload.multiply_adds,
            "bytes_moved": self.workload.bytes_moved,
            "agrees_with_torch": self.agrees,
            "error": self.error or (self.comparison.summary() if self.comparison and not self.agrees else None),
        }


def benchmark_case(
    case: Case,
    implementation: Implementation,
    machine: Machine,
    rounds: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> CaseBenchmark:
    """Warm up both sides, then time them in alternation; ``rounds=None`` picks the count itself
    (at least MIN_ROUNDS, until each side has run MIN_SECONDS, at most MAX_ROUNDS)."""
    result = CaseBenchmark(case.name, workload(case))
    result.roofline_s, result.bound = machine.roofline_seconds(result.workload.flops, result.workload.bytes_moved)
    try:
        forwards = prepare_forwards(case, implementation)
        pool = input_pool(case, forwards.tensors)
    except Exception as exc:  # one failing case must not hide the others' timings
        result.error = f"could not prepare the case: {type(exc).__name__}: {exc}"
        return result
    sides = ((implementation.name, forwards.implementation), ("torch", forwards.torch))
    first = []
    for name, forward in sides:
        try:
            first.append(forward(pool[0]))
            for _ in range(WARMUP_CALLS - 1):
                forward(pool[0])
        except Exception as exc:
            result.error = f"{name} raised {type(exc).__name__}: {exc}"
            return result
    samples: tuple[list[float], list[float]] = ([], [])
    for round_index in range(rounds if rounds is not None else MAX_ROUNDS):
        x = pool[round_index % len(pool)]
        for (_, forward), seconds in zip(sides, samples, strict=False):
            start = clock()
            forward(x)
            seconds.append(clock() - start)
        if rounds is None and round_index + 1 >= MIN_ROUNDS and min(map(sum, samples)) >= MIN_SECONDS:
            break
    result.implementation, result.torch = Timing(tuple(samples[0])), Timing(tuple(samples[1]))
    result.comparison = agreement(case, forwards.tensors, implementation.name, first[0], first[1])
    return result
