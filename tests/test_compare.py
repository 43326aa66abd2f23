"""The comparator and the failure report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conformance.judging.compare import MAX_LISTED_FAILURES, compare_arrays
from conformance.judging.tolerance import ErrorBound
from conformance.reporting.terminal import format_failure
from conformance.running.implementations import Implementation
from conformance.running.runner import run_case
from tests.helpers import assert_is_case, load_one


def test_nan_equals_nan_and_matching_infinities_pass() -> None:
    a = np.array([np.nan, np.inf, -np.inf, 1.0])
    assert compare_arrays(a, a.copy(), 0, 0).passed


def test_nan_against_a_number_fails() -> None:
    c = compare_arrays(np.array([1.0, np.nan]), np.array([1.0, 2.0]), 1e-3, 1e-3)
    assert not c.passed and c.mismatched == 1 and c.worst_index == (1,)


def test_opposite_infinities_fail() -> None:
    assert not compare_arrays(np.array([np.inf]), np.array([-np.inf]), 1, 1).passed


def test_tolerance_is_atol_plus_rtol_times_expected() -> None:
    expected = np.array([100.0])
    assert compare_arrays(np.array([100.0 + 1.0 + 0.1 - 1e-9]), expected, rtol=0.01, atol=0.1).passed
    assert not compare_arrays(np.array([100.0 + 1.0 + 0.1 + 1e-9]), expected, rtol=0.01, atol=0.1).passed


def test_the_worst_element_is_the_one_furthest_past_its_tolerance() -> None:
    expected = np.zeros((1, 2, 2, 2))
    actual = expected.copy()
    actual[0, 0, 0, 1] = 1e-3
    actual[0, 1, 1, 0] = 5e-3
    c = compare_arrays(actual, expected, 1e-6, 1e-6)
    assert (c.mismatched, c.worst_index, c.worst_abs_error) == (2, (0, 1, 1, 0), 5e-3)
    assert c.max_abs_error == 5e-3


def test_shape_and_dtype_are_checked_before_values() -> None:
    c = compare_arrays(np.zeros((1, 2)), np.zeros((2, 1)), 0, 0)
    assert not c.passed and "shapes differ" in c.summary()
    d = compare_arrays(np.zeros(2), np.zeros(2, np.float32), 0, 0, required_dtype=np.float32)
    assert not d.passed and "dtype float64, expected float32" in d.summary()


def test_report_names_case_element_group_and_all_values(tmp_path: Path) -> None:
    """An implementation off by one at y[0, 2, 0, 0] of the seed case."""
    case = assert_is_case(
        load_one(
            tmp_path,
            """
        name: seed/groups3
        conv: {in_channels: 6, out_channels: 6, kernel_size: 1, groups: 3, bias: false}
        input: {values: [0.1, 1, 10, 100, 1000, 10000], shape: [1, 6, 1, 1]}
        weight: {arange: {start: 1}}
        expected: {values: [2.1, 4.3, 650, 870, 109000, 131000], shape: [1, 6, 1, 1]}
    """,
        )
    )

    def off_by_one(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
        from reference_impl import conv2d

        out = conv2d(x, w, b, stride, padding, dilation, groups)
        out[0, 2, 0, 0] += 1
        return out

    result = run_case(case, Implementation("off_by_one", off_by_one))
    report = format_failure(result)
    assert result.status == "failed"
    assert "FAILED: case seed/groups3" in report
    assert "off_by_one vs torch: 1 of 6 elements differ" in report
    assert "shapes: off_by_one (1, 6, 1, 1), torch (1, 6, 1, 1)" in report
    assert "y[n=0, o=2, h=0, w=0]: output channel 2 is in group 1 of 3, which reads input channels 2-3" in report
    assert "off_by_one = 651, torch = 650, expected = 650" in report
    # The default tolerance is the error bound (conformance/judging/tolerance.py): K = 2 products, B = 650,
    # doubled because a plug-in and torch may each be off by a bound.
    assert (
        "allowed 0.000309944 = bound c 2 x 2 sides x K 2 x u 2^-24 x B 650 (+ subnormal floor): "
        "the error is 3.23e+03 x its bound"
    ) in report
    assert "ok   torch vs expected" in report
    assert result.max_abs_error == 1.0


def _compare_by_definition(actual, expected, rtol, atol, bound=None) -> dict:
    """The comparison written plainly, one array per quantity (compare_arrays before it was made to
    allocate less): the fields it must give, whatever the inputs."""
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        abs_error = np.abs(a - e)
        both_nan = np.isnan(a) & np.isnan(e)
        same_inf = np.isinf(a) & np.isinf(e) & (a == e)
        abs_error = np.where(both_nan | same_inf, 0.0, abs_error)
        abs_error = np.where(np.isnan(abs_error), np.inf, abs_error)
        if bound is not None:
            allowed = np.broadcast_to(bound.allowed(), a.shape)
        else:
            allowed = atol + rtol * np.abs(np.where(np.isfinite(e), e, 0.0))
        rel_error = np.divide(abs_error, np.abs(e), out=np.zeros_like(abs_error), where=abs_error != 0)
        badness = np.where(allowed > 0, abs_error / allowed, np.where(abs_error > 0, np.inf, 0.0))
    bad = abs_error > allowed
    worst_relative = float(rel_error.max()) if a.size else 0.0
    fields = {
        "mismatched": int(np.count_nonzero(bad)),
        "max_abs_error": float(abs_error.max()) if a.size else 0.0,
        "max_rel_error": np.inf if np.isnan(worst_relative) else min(worst_relative, float(np.finfo(np.float64).max)),
        "max_error_ratio": float(badness.max()) if a.size else 0.0,
    }
    if fields["mismatched"]:
        flat = np.where(bad, badness, -1.0).ravel()
        order = np.argsort(-flat, kind="stable")[:MAX_LISTED_FAILURES]
        indices = [tuple(int(i) for i in np.unravel_index(int(f), a.shape)) for f in order if flat[f] >= 0]
        worst = indices[0]
        fields.update(
            failures=tuple((i, float(a[i]), float(e[i]), float(abs_error[i]), float(allowed[i])) for i in indices),
            worst_index=worst,
            worst_rel_error=float(rel_error[worst]),
            worst_allowed=float(allowed[worst]),
        )
    return fields


@pytest.mark.parametrize("seed", range(40))
def test_the_comparison_gives_its_definitions_fields_on_any_values(seed: int) -> None:
    """Against the plain definition above, field for field: finite arrays (the short way) and arrays
    with NaN, infinities, zeros and subnormals on either side (the long way), judged by rtol/atol
    (also zero and negative) or by an error bound whose magnitude has zeros and infinities."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(0 if seed % 10 == 0 else 1, 5, size=int(rng.integers(1, 4))))
    expected = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4)
    expected[rng.random(shape) < 0.1] = 0.0
    actual = expected + rng.standard_normal(shape) * 10.0 ** rng.integers(-9, 0)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, 1e308])
    for array in (actual, expected) if seed % 2 else ():
        mask = rng.random(shape) < 0.2
        array[mask] = rng.choice(specials, size=int(mask.sum()))
    if seed % 4 in (1, 2):
        agree = rng.random(shape) < 0.3
        actual[agree] = expected[agree]  # some exact agreements (where both are 0: 0 / 0 in the ratios)
    rtol, atol = [(1e-5, 1e-8), (0.0, 0.0), (1e-3, 0.0), (-1e-3, 1e-6), (0.0, 1e-2)][seed % 5]
    bound = None
    if seed % 3 == 0:
        magnitude = np.abs(rng.standard_normal(shape)) * 10.0 ** rng.integers(-4, 2)
        magnitude[rng.random(shape) < 0.1] = 0.0
        magnitude[rng.random(shape) < 0.05] = np.inf
        terms = 9 if seed % 2 else rng.integers(0, 5, size=shape)  # transposed: some elements sum nothing
        bound = ErrorBound("float32", magnitude, terms)
    if seed % 7 == 0:
        with np.errstate(over="ignore"):
            actual = actual.astype(np.float32)  # a float32 side, as a plug-in's (1e308 becomes inf)
    got = compare_arrays(actual, expected, rtol, atol, bound=bound)
    definition = _compare_by_definition(actual, expected, rtol, atol, bound)
    for name, value in definition.items():
        assert repr(getattr(got, name)) == repr(value), name
    assert got.passed == (definition["mismatched"] == 0)
