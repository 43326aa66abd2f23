"""The error-bound tolerance, the four dtypes and bfloat16 rounding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conformance.cases.loader import load_cases
from conformance.cases.precision import UNIT_ROUNDOFF, round_to_bfloat16, to_case_dtype
from conformance.judging.compare import compare_arrays
from conformance.judging.tolerance import ErrorBound, forward_bound, gradient_bounds
from conformance.reporting.terminal import format_failure
from conformance.running.implementations import load_implementation
from conformance.running.runner import make_tensors, run_case
from conformance.running.torch_oracle import to_numpy, to_torch, torch_forward
from reference_impl import conv2d
from tests.helpers import assert_is_case, load_one
from tests.plugins import backward_convs

ROOT = Path(__file__).resolve().parent.parent
DTYPES = ("float64", "float32", "float16", "bfloat16")
POSITIVE_LAYER = """
name: planted/{dtype}
conv: {{in_channels: 8, out_channels: 8, kernel_size: 3, groups: 2, bias: false}}
dtype: {dtype}
input: {{random: {{low: 0.5, high: 1}}, shape: [1, 8, 6, 6]}}
weight: {{random: {{low: 0.5, high: 1}}}}
"""


def test_bfloat16_rounding_matches_torch_including_ties_subnormals_and_specials() -> None:
    rng = np.random.default_rng(0)
    ties = (np.arange(1, 200, dtype=np.uint32) << 16 | 0x8000).view(np.float32)  # exactly halfway
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 3.4028235e38, 1e-40, -1e-45, 1.17549435e-38], np.float32)
    values = np.concatenate(
        [rng.standard_normal(5000).astype(np.float32) * 10.0 ** rng.integers(-30, 30, 5000), ties, -ties, specials]
    ).astype(np.float32)
    expected = torch.from_numpy(values).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(round_to_bfloat16(values), expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_case_tensors_are_rounded_to_the_dtype_and_both_sides_see_the_same_values(tmp_path: Path, dtype: str) -> None:
    case = assert_is_case(load_one(tmp_path, POSITIVE_LAYER.format(dtype=dtype)))
    x = make_tensors(case).input
    assert (
        x.dtype == {"float64": np.float64, "float32": np.float32, "float16": np.float16, "bfloat16": np.float32}[dtype]
    )
    assert np.array_equal(to_numpy(to_torch(x, case)), x)  # torch gets exactly these numbers
    if dtype == "bfloat16":
        assert np.array_equal(round_to_bfloat16(x), x)  # float32 storage, bfloat16 values
    direct = torch.from_numpy(to_case_dtype(np.array([0.1, 1 / 3, 1e4 + 1]), "float64"))
    assert to_case_dtype(direct.numpy(), dtype).tolist() == to_numpy(direct.to(to_torch(x, case).dtype)).tolist()


def _ulp(values: np.ndarray, dtype: str) -> np.ndarray:
    """The spacing of the dtype's numbers at each value: 2u x 2^floor(log2 |value|)."""
    return 2 * UNIT_ROUNDOFF[dtype] * 2.0 ** np.floor(np.log2(np.abs(values)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_bound_accepts_torch_and_rejects_a_planted_error_of_a_few_ulps_times_k(tmp_path: Path, dtype: str) -> None:
    """Positive data, so B is the value itself and the bound is c*K*u*|y| <= 2K ULPs (4K in float64,
    where the reference's own rounding counts as much as torch's)."""
    case = assert_is_case(load_one(tmp_path, POSITIVE_LAYER.format(dtype=dtype)))
    tensors = make_tensors(case)
    reference = conv2d(*(a.astype(np.float64) for a in (tensors.input, tensors.weight)), groups=2)
    computed = torch_forward(case, tensors.input, tensors.weight, None).astype(np.float64)
    bound = forward_bound(dtype, case.conv.functional_kwargs(), tensors.input, tensors.weight, None)
    terms = 4 * 3 * 3
    assert bound.terms == terms

    honest = compare_arrays(computed, reference, bound=bound)
    assert honest.passed and 0 <= honest.max_error_ratio < 1

    ulps = 5 if dtype == "float64" else 3
    planted = computed.copy()
    planted[0, 5, 2, 3] += ulps * terms * _ulp(planted[0, 5, 2, 3], dtype)
    caught = compare_arrays(planted, reference, bound=bound, actual_name="torch", expected_name="reference")
    assert not caught.passed and caught.mismatched == 1 and caught.worst_index == (0, 5, 2, 3)
    assert 1 < caught.max_error_ratio < 2 * ulps
    assert caught.allowed_text.startswith(f"bound c 2 x K {terms} x u 2^-{int(-np.log2(UNIT_ROUNDOFF[dtype]))} x B")

    # A quarter of K ULPs is within what a different summation order may do: it must pass.
    nudged = computed.copy()
    nudged[0, 5, 2, 3] += terms / 4 * _ulp(nudged[0, 5, 2, 3], dtype)
    assert compare_arrays(nudged, reference, bound=bound).passed


def test_a_planted_gradient_error_is_reported_as_a_multiple_of_its_bound(tmp_path: Path) -> None:
    case = assert_is_case(
        load_one(
            tmp_path,
            POSITIVE_LAYER.format(dtype="float32") + "backward: true\ngrad_output: {random: {low: 0.5, high: 1}}\n",
        )
    )
    result = run_case(case, load_implementation("tests.plugins.backward_convs:planted"))
    report = format_failure(result)
    assert result.status == "failed", report
    assert "grad_input: tests.plugins.backward_convs:planted vs torch: 1 of 288 elements differ" in report
    assert (
        "worst element dx[n=0, c=1, h=0, w=0]: input channel 1 is in group 0 of 2, read by output channel(s) 0-3"
    ) in report
    assert "= bound c 2 x 2 sides x K 4 x u 2^-24 x B" in report  # the corner element sums 4 products
    ratio = float(report.split("the error is ")[1].split(" x its bound")[0])
    assert 1 < ratio < 20  # 6 x 36 ULPs planted where the bound is under 4 x 4 ULPs: about 13.5
    assert "ok   grad_weight" in report


def test_non_finite_magnitudes_allow_no_error() -> None:
    bound = ErrorBound("float32", np.array([np.inf, np.nan, 1.0]), 3)
    assert bound.allowed()[:2].tolist() == [0.0, 0.0] and bound.allowed()[2] > 0
    assert not compare_arrays(np.array([np.inf, 1.0, 1.0]), np.array([np.nan, 1.0, 1.0]), bound=bound).passed


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_bound_per_element_is_its_formula_to_the_bit(dtype: str) -> None:
    """allowed() works in place; it must still be c * sides * (K + extra) * ((u + u_ref) * B + eta)
    as written, bit for bit, with K a number or an array (some 0), B with infinities and NaN (no
    error allowed there), and B so large in 20 elements that in bfloat16 their bounds, each finite,
    sum past the largest float: allowed() tells that every element is finite by that sum, and must
    then take the long way."""
    from conformance.cases.precision import SMALLEST_SUBNORMAL
    from conformance.judging.tolerance import REFERENCE_UNIT_ROUNDOFF

    rng = np.random.default_rng(len(dtype))
    magnitude = np.abs(rng.standard_normal((3, 4, 5))) * 10.0 ** rng.integers(-30, 30, size=(3, 4, 5))
    magnitude.flat[:3] = [np.inf, np.nan, 0.0]
    magnitude.flat[3:23] = 1.7e308
    for terms in (9, rng.integers(0, 40, size=(3, 4, 5))):
        for bound in (ErrorBound(dtype, magnitude, terms), ErrorBound(dtype, magnitude, terms, sides=2, extra_terms=2)):
            with np.errstate(over="ignore", invalid="ignore"):
                written = (
                    bound.factor
                    * bound.sides
                    * (np.asarray(terms) + bound.extra_terms)
                    * ((UNIT_ROUNDOFF[dtype] + REFERENCE_UNIT_ROUNDOFF) * magnitude + SMALLEST_SUBNORMAL[dtype])
                )
            expected = np.where(np.isfinite(written), written, 0.0)
            if dtype == "bfloat16":  # (the premise: finite bounds whose sum overflows)
                with np.errstate(over="ignore"):
                    assert np.isfinite(written.flat[3:23]).all() and np.isinf(written.flat[3:23].sum())
            assert bound.allowed().tobytes() == expected.tobytes()
            assert bound.allowed()[0, 0, :2].tolist() == [0.0, 0.0]


def test_assert_close_mode_and_rtol_atol_overrides(tmp_path: Path) -> None:
    base = "conv: {in_channels: 2, out_channels: 2, kernel_size: 1}\ninput: {fill: 1, shape: [1, 2, 1, 1]}\n"
    table = assert_is_case(load_one(tmp_path, base + "dtype: float16\ntolerance: {mode: assert_close}\n"))
    assert (table.tolerance_mode, table.rtol_atol) == ("assert_close", (1e-3, 1e-5))
    bf16 = assert_is_case(load_one(tmp_path, base + "dtype: bfloat16\ntolerance: {mode: assert_close}\n"))
    assert bf16.rtol_atol == (1.6e-2, 1e-5)
    override = assert_is_case(load_one(tmp_path, base + "tolerance: {rtol: 0.5}\n"))
    assert (override.tolerance_mode, override.rtol_atol) == ("assert_close", (0.5, 1e-5))
    assert assert_is_case(load_one(tmp_path, base)).tolerance_mode == "bound"


def test_assert_close_mode_reports_rtol_and_atol(tmp_path: Path) -> None:
    case = assert_is_case(
        load_one(
            tmp_path,
            """
        conv: {in_channels: 2, out_channels: 2, kernel_size: 1, groups: 2, bias: false}
        input: {values: [1, 10], shape: [1, 2, 1, 1]}
        weight: [3, 4]
        expected: {values: [3, 41], shape: [1, 2, 1, 1]}
        tolerance: {mode: assert_close}
    """,
        )
    )
    report = format_failure(run_case(case, load_implementation(None)))
    assert "allowed 6.33e-05 = atol 1e-05 + rtol 1.3e-06 x |41|" in report


@pytest.mark.parametrize(
    "text,words",
    [
        ("tolerance: {mode: exact}", "tolerance.mode: expected one of bound, assert_close, got str 'exact'"),
        ("tolerance: {mode: bound, rtol: 1}", "tolerance.mode: mode bound takes no rtol/atol"),
        ("tolerance: {rtool: 1}", "unknown key 'rtool' (did you mean 'rtol'?)"),
        ("dtype: float8", "dtype: expected one of float32, float64, float16, bfloat16, got str 'float8'"),
    ],
)
def test_bad_tolerance_and_dtype_are_named(tmp_path: Path, text: str, words: str) -> None:
    item = load_one(
        tmp_path,
        f"conv: {{in_channels: 1, out_channels: 1, kernel_size: 1}}\ninput: {{fill: 1, shape: [1, 1, 1, 1]}}\n{text}\n",
    )
    assert words in str(item)


def test_the_gradient_and_precision_cases_are_judged_by_the_bound() -> None:
    """make test runs every case in cases/; these folders must use the bound (no loosened tolerance)."""
    cases = load_cases([ROOT / "cases" / "gradients", ROOT / "cases" / "precision", ROOT / "cases" / "seed"])
    assert len(cases) > 30
    assert all(assert_is_case(case).tolerance_mode == "bound" for case in cases)


def test_plugins_get_float16_and_bfloat16_in_their_own_numpy_dtypes(tmp_path: Path) -> None:
    first_calls = []
    for dtype in ("float16", "bfloat16"):
        backward_convs.received.clear()
        case = assert_is_case(load_one(tmp_path, POSITIVE_LAYER.format(dtype=dtype)))
        result = run_case(case, load_implementation("tests.plugins.backward_convs:recording"))
        assert result.status == "passed", format_failure(result)
        first_calls.append(backward_convs.received[0])  # the forward; extra checks may call it again
    half, brain = first_calls
    assert half["input"].dtype == np.float16
    # bfloat16 arrives as ml_dtypes.bfloat16 (issue 10), holding exactly the case's bfloat16 values
    assert brain["input"].dtype.name == "bfloat16"
    as_float32 = brain["input"].astype(np.float32)
    assert np.array_equal(round_to_bfloat16(as_float32), as_float32)


@pytest.mark.parametrize("seed", range(0, 40, 3))
def test_gradient_term_counts_equal_the_backward_of_all_ones(seed: int) -> None:
    """K is counted on one channel and broadcast; it must equal the full backward on ones tensors."""
    from reference_impl import conv2d_backward, plan_conv2d
    from tests.test_reference import random_config

    c = random_config(seed)
    kwargs = dict(
        stride=c["stride"],
        padding=c["padding"],
        dilation=c["dilation"],
        groups=c["groups"],
        padding_mode=c["padding_mode"],
    )
    try:
        output_shape = plan_conv2d(c["x"].shape, c["w"].shape, None, **kwargs).output_shape
    except ValueError:
        return
    grad_output = np.ones(output_shape)
    bounds = gradient_bounds("float16", kwargs, grad_output, c["x"], c["w"], c["b"])
    ones = conv2d_backward(
        grad_output,
        np.ones_like(c["x"]),
        np.ones_like(c["w"]),
        None if c["b"] is None else np.ones_like(c["b"]),
        **kwargs,
    )
    assert set(bounds) == {"grad_input", "grad_weight"} | ({"grad_bias"} if c["b"] is not None else set())
    for name, bound in bounds.items():
        expected = getattr(ones, name)
        np.testing.assert_array_equal(np.broadcast_to(bound.terms, expected.shape), expected, err_msg=name)
