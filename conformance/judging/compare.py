"""Numerical comparison in the manner of ``torch.testing.assert_close``: shape, then dtype,
then values, with NaN equal to NaN and the worst element found for the report.

The allowance per element is ``atol + rtol * |expected|``, or, given ``bound=``, an error bound
per element (:class:`conformance.judging.tolerance.ErrorBound`); either way each element's error is also
stated as a multiple of its allowance (``error_ratio``: over 1 fails).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_LISTED_FAILURES = 5  # failing elements listed in the report, worst first


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing ``actual`` with ``expected`` (the side taken as right)."""

    actual_name: str
    expected_name: str
    actual_shape: tuple[int, ...]
    expected_shape: tuple[int, ...]
    rtol: float
    atol: float
    dtype_problem: str | None = None
    total: int = 0
    mismatched: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    worst_index: tuple[int, ...] | None = None
    worst_actual: float = float("nan")
    worst_expected: float = float("nan")
    worst_abs_error: float = 0.0
    worst_rel_error: float = 0.0
    worst_allowed: float = 0.0
    allowed_text: str | None = None  # how the worst element's allowance is made, when it is a bound
    max_error_ratio: float = 0.0  # the largest |error| / allowance over all elements (<= 1 passes)
    # The worst failing elements: (index, actual, expected, abs error, allowance), worst first.
    failures: tuple[tuple[tuple[int, ...], float, float, float, float], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.actual_name} vs {self.expected_name}"

    @property
    def shape_ok(self) -> bool:
        return self.actual_shape == self.expected_shape

    @property
    def passed(self) -> bool:
        return self.shape_ok and self.dtype_problem is None and self.mismatched == 0

    def summary(self) -> str:
        """A one-line verdict."""
        if not self.shape_ok:
            return (
                f"{self.label}: shapes differ: {self.actual_name} {self.actual_shape}, "
                f"{self.expected_name} {self.expected_shape}"
            )
        if self.dtype_problem:
            return f"{self.label}: {self.dtype_problem}"
        if self.mismatched:
            share = 100.0 * self.mismatched / max(self.total, 1)
            return f"{self.label}: {self.mismatched} of {self.total} elements differ ({share:.3g}%)"
        if self.total == 0:
            return f"{self.label}: no elements to compare (both outputs are empty)"
        if self.total == 1:
            return f"{self.label}: the 1 element agrees (abs error {self.max_abs_error:.3g})"
        return f"{self.label}: all {self.total} elements agree (max abs error {self.max_abs_error:.3g})"


def compare_arrays(
    actual: np.ndarray,
    expected: np.ndarray,
    rtol: float = 0.0,
    atol: float = 0.0,
    *,
    actual_name: str = "actual",
    expected_name: str = "expected",
    required_dtype: np.dtype | None = None,
    bound: Any = None,
) -> Comparison:
    """Elementwise ``|actual - expected| <= atol + rtol * |expected|``, or ``<= bound.allowed()``.

    >>> c = compare_arrays(np.array([1.0, 2.0, np.nan]), np.array([1.0, 2.5, np.nan]), 0.0, 0.1)
    >>> c.passed, c.mismatched, c.worst_index, c.worst_abs_error
    (False, 1, (1,), 0.5)
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    base: dict[str, Any] = dict(
        actual_name=actual_name,
        expected_name=expected_name,
        actual_shape=tuple(actual.shape),
        expected_shape=tuple(expected.shape),
        rtol=rtol,
        atol=atol,
    )
    if actual.shape != expected.shape:
        return Comparison(**base)
    dtype_problem = None
    if required_dtype is not None and actual.dtype != np.dtype(required_dtype):
        dtype_problem = f"{actual_name} returned dtype {actual.dtype}, expected {np.dtype(required_dtype)}"
    a, e = actual.astype(np.float64, copy=False), expected.astype(np.float64, copy=False)  # (only read)
    # A network layer's output has ~1M elements, and each new array of that size costs more in first
    # touches of its memory than the arithmetic in it: the usual case below makes few, and works in place.
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        abs_error = np.subtract(a, e)
        np.abs(abs_error, out=abs_error)
        # A finite largest difference means both sides are finite everywhere (the maximum propagates
        # NaN): no NaN or infinity to treat, nearly always.
        largest_error = float(abs_error.max()) if a.size else 0.0
        all_finite = math.isfinite(largest_error)
        absolute_expected = np.abs(e)
        if not all_finite:
            both_nan = np.isnan(a) & np.isnan(e)
            same_inf = np.isinf(a) & np.isinf(e) & (a == e)
            abs_error = np.where(both_nan | same_inf, 0.0, abs_error)
            abs_error = np.where(np.isnan(abs_error), np.inf, abs_error)  # NaN against a number
            largest_error = float(abs_error.max())
        if bound is not None:
            allowed = np.broadcast_to(bound.allowed(), a.shape)
        elif all_finite:
            allowed = absolute_expected * rtol
            allowed += atol
        else:
            allowed = atol + rtol * np.where(np.isfinite(e), absolute_expected, 0.0)
        bad = abs_error > allowed
        mismatched = int(np.count_nonzero(bad))
        if all_finite:
            # |error| / |expected| everywhere: NaN only for 0 / 0, an element with no error, which counts 0
            # and which np.fmax skips; an error where nothing is expected is infinite
            ratios = np.divide(abs_error, absolute_expected)
            worst_relative = _largest_or_zero(ratios) if a.size else 0.0
            # each element's |error| / allowance, into the same buffer when every allowance is positive
            positive = bool(a.size) and float(allowed.min()) > 0
            badness = np.divide(abs_error, allowed, out=ratios) if positive else _error_ratios(abs_error, allowed)
        else:
            relative = np.divide(abs_error, absolute_expected, out=np.zeros_like(abs_error), where=abs_error != 0)
            # what np.nan_to_num(relative, nan=inf).max() was, from the maximum alone (below): NaN as inf
            worst_relative = float(relative.max())
            badness = _error_ratios(abs_error, allowed)
        worst_ratio = float(badness.max()) if a.size else 0.0
    # the largest float for an infinite relative error (an error where nothing is expected)
    max_rel_error = math.inf if math.isnan(worst_relative) else min(worst_relative, sys.float_info.max)
    result: dict[str, Any] = dict(
        base,
        dtype_problem=dtype_problem,
        total=int(a.size),
        mismatched=mismatched,
        max_abs_error=largest_error,
        max_rel_error=max_rel_error,
        max_error_ratio=worst_ratio,
    )
    if mismatched:
        flat_badness = np.where(bad, badness, -1.0).ravel()
        order = np.argsort(-flat_badness, kind="stable")[: min(MAX_LISTED_FAILURES, mismatched)]
        failures = []
        for flat in order:
            index = tuple(int(i) for i in np.unravel_index(int(flat), a.shape))
            failures.append((index, float(a[index]), float(e[index]), float(abs_error[index]), float(allowed[index])))
        index = failures[0][0]
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            error = abs_error[index]  # (0 on a failing element only against a negative tolerance)
            worst_relative_error = 0.0 if error == 0 else float(np.divide(error, absolute_expected[index]))
        result.update(
            worst_index=index,
            worst_actual=float(a[index]),
            worst_expected=float(e[index]),
            worst_abs_error=float(abs_error[index]),
            worst_rel_error=worst_relative_error,
            worst_allowed=float(allowed[index]),
            failures=tuple(failures),
            allowed_text=bound.explain(index) if bound is not None else None,
        )
    return Comparison(**result)


def _error_ratios(abs_error: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Each element's |error| / allowance; where nothing is allowed, infinite for an error and 0 for none."""
    if bool((allowed > 0).all()):
        return abs_error / allowed
    return np.where(allowed > 0, abs_error / allowed, np.where(abs_error > 0, np.inf, 0.0))


def _largest_or_zero(values: np.ndarray) -> float:
    """The largest of ``values`` skipping NaN (np.fmax), 0 when every one is NaN."""
    largest = float(np.fmax.reduce(values, axis=None))
    return 0.0 if math.isnan(largest) else largest
