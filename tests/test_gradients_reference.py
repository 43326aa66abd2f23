"""The from-scratch backward pass (loops and vectorised) against torch autograd."""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pytest
import torch

import reference_impl
from reference_impl import conv2d_backward, conv2d_loops_backward, plan_conv2d
from reference_impl.backward import fold_padding
from tests.helpers import launch_threads
from tests.test_reference import MODES, random_config


def torch_gradients(config: dict, grad_output: np.ndarray | None = None, seed: int = 0):
    """(grad_output, grad_input, grad_weight, grad_bias) from autograd in float64, or None if torch refuses."""
    c = config
    out_channels, _, kernel_h, kernel_w = c["w"].shape
    try:
        module = torch.nn.Conv2d(
            c["x"].shape[-3],
            out_channels,
            (kernel_h, kernel_w),
            c["stride"],
            c["padding"],
            c["dilation"],
            c["groups"],
            c["b"] is not None,
            c["padding_mode"],
            dtype=torch.float64,
        )
    except (RuntimeError, ValueError):
        return None
    module.weight = torch.nn.Parameter(torch.from_numpy(c["w"]))
    if c["b"] is not None:
        module.bias = torch.nn.Parameter(torch.from_numpy(c["b"]))
    x = torch.from_numpy(c["x"]).requires_grad_(True)
    try:
        output = module(x)
    except RuntimeError:
        return None
    if grad_output is None:
        grad_output = np.random.default_rng(seed).standard_normal(tuple(output.shape))
    output.backward(torch.from_numpy(grad_output))
    return (
        grad_output,
        x.grad.numpy(),
        module.weight.grad.numpy(),
        None if c["b"] is None else module.bias.grad.numpy(),
    )


def _backward(function, config: dict, grad_output: np.ndarray):
    c = config
    return function(
        grad_output, c["x"], c["w"], c["b"], c["stride"], c["padding"], c["dilation"], c["groups"], c["padding_mode"]
    )


@pytest.mark.parametrize("seed", range(60))
def test_vectorised_backward_matches_autograd(seed: int) -> None:
    config = random_config(seed)
    expected = torch_gradients(config, seed=seed)
    if expected is None:
        return  # an invalid layer: the forward tests cover the refusal
    grad_output, *torch_grads = expected
    mine = _backward(conv2d_backward, config, grad_output)
    for name, actual, wanted in zip(("grad_input", "grad_weight", "grad_bias"), mine, torch_grads, strict=False):
        if wanted is None:
            assert actual is None, name
            continue
        assert actual.shape == wanted.shape, name
        np.testing.assert_allclose(actual, wanted, rtol=1e-10, atol=1e-12, err_msg=f"{name} {config['padding_mode']}")


@pytest.mark.parametrize("seed", range(0, 60, 4))
def test_loop_backward_matches_the_vectorised_one(seed: int) -> None:
    config = random_config(seed)
    expected = torch_gradients(config, seed=seed)
    if expected is None:
        return
    grad_output = expected[0]
    for loops, vectorised in zip(
        _backward(conv2d_loops_backward, config, grad_output),
        _backward(conv2d_backward, config, grad_output),
        strict=False,
    ):
        if vectorised is None:
            assert loops is None
        else:
            np.testing.assert_allclose(loops, vectorised, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_every_padding_mode_folds_gradient_back_like_autograd(mode: str) -> None:
    """Padding 2 on a 3-wide input: reflect and circular copy some elements twice into the padding."""
    rng = np.random.default_rng(3)
    config = dict(
        x=rng.standard_normal((2, 4, 3, 5)),
        w=rng.standard_normal((6, 2, 3, 2)),
        b=rng.standard_normal(6),
        stride=(1, 2),
        padding=2,
        dilation=(2, 1),
        groups=2,
        padding_mode=mode,
    )
    grad_output, *wanted = torch_gradients(config)
    for function in (conv2d_backward, conv2d_loops_backward):
        for actual, expected in zip(_backward(function, config, grad_output), wanted, strict=False):
            np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12, err_msg=f"{function.__name__} {mode}")


def test_fold_padding_sums_every_copy() -> None:
    """Circular padding 2 of a 3-wide row copies input column 1 into padded columns 0 and 5."""
    geometry = plan_conv2d((1, 1, 1, 3), (1, 1, 1, 1), None, padding=(0, 2), padding_mode="circular")
    folded = fold_padding(np.arange(1.0, 8.0).reshape(1, 1, 1, 7), geometry)  # padded: b c | a b c | a b
    assert folded.ravel().tolist() == [3 + 6, 1 + 4 + 7, 2 + 5]


def test_depthwise_24_channels_stride_2_all_ones_weight_gradient_is_exact() -> None:
    """pytorch/pytorch#50042: every channel's weight gradient is [[4, 6, 6], [6, 9, 9], [6, 9, 9]]."""
    x, w = np.ones((1, 24, 6, 6), np.float32), np.ones((24, 1, 3, 3), np.float32)
    grad_output = np.ones((1, 24, 3, 3), np.float32)
    for function in (conv2d_backward, conv2d_loops_backward):
        gradients = function(grad_output, x, w, None, 2, 1, 1, 24)
        assert gradients.grad_weight.dtype == np.float32
        for channel in gradients.grad_weight:
            assert channel[0].tolist() == [[4, 6, 6], [6, 9, 9], [6, 9, 9]]


def test_grad_output_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"grad_output has shape \[1, 2, 3, 3\], the output's is \[1, 2, 2, 2\]"):
        conv2d_backward(np.ones((1, 2, 3, 3)), np.ones((1, 2, 3, 3)), np.ones((2, 1, 2, 2)), groups=2)


@pytest.mark.parametrize("mode", MODES)
def test_3d_padding_modes_fold_gradient_back_like_autograd(mode: str) -> None:
    """The same folding in three dims, padding as wide as reflect allows in the shortest one."""
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 4, 3, 4, 5)), rng.standard_normal((4, 2, 2, 3, 2)), rng.standard_normal(4)
    module = torch.nn.Conv3d(4, 4, (2, 3, 2), (1, 2, 1), (2, 1, 2), (1, 1, 2), 2, True, mode, dtype=torch.float64)
    module.weight, module.bias = torch.nn.Parameter(torch.from_numpy(w)), torch.nn.Parameter(torch.from_numpy(b))
    x_tensor = torch.from_numpy(x).requires_grad_(True)
    output = module(x_tensor)
    grad_output = rng.standard_normal(tuple(output.shape))
    output.backward(torch.from_numpy(grad_output))
    wanted = (x_tensor.grad.numpy(), module.weight.grad.numpy(), module.bias.grad.numpy())
    for function in (reference_impl.conv3d_backward, reference_impl.conv3d_loops_backward):
        got = function(grad_output, x, w, b, (1, 2, 1), (2, 1, 2), (1, 1, 2), 2, mode)
        for name, actual, expected in zip(("grad_input", "grad_weight", "grad_bias"), got, wanted, strict=False):
            np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12, err_msg=f"{function.__name__} {name}")


def test_pytorch_68868_conv3d_strided_grouped_weight_gradient_scaled_down() -> None:
    """pytorch/pytorch#68868: Conv3d 720->720, k2, stride (4, 4, 1), padding 1, groups 3 had a wrong
    weight gradient; the same layer with 12 channels (4 per group)."""
    rng = np.random.default_rng(68868)
    x, w = rng.standard_normal((2, 12, 9, 9, 5)), rng.standard_normal((12, 4, 2, 2, 2))
    x_tensor, w_tensor = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(w).requires_grad_(True)
    output = torch.nn.functional.conv3d(x_tensor, w_tensor, None, (4, 4, 1), 1, 1, 3)
    grad_output = rng.standard_normal(tuple(output.shape))
    output.backward(torch.from_numpy(grad_output))
    for function in (reference_impl.conv3d_backward, reference_impl.conv3d_loops_backward):
        grads = function(grad_output, x, w, None, (4, 4, 1), 1, 1, 3)
        np.testing.assert_allclose(grads.grad_weight, w_tensor.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grads.grad_input, x_tensor.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_transposed_convolution_is_the_convolutions_input_gradient(d: int) -> None:
    """conv_transpose(y, w) == grad_input of conv(., w) at grad_output y: the construction itself,
    checked without torch, with stride, padding, dilation and groups in every dim."""
    rng = np.random.default_rng(d)
    stride, padding, dilation = (2, 1, 3)[:d], (1, 0, 2)[:d], (1, 2, 1)[:d]
    x, w = rng.standard_normal((2, 6, *(9, 8, 10)[:d])), rng.standard_normal((4, 3, *(3, 2, 2)[:d]))
    convolve, backward = getattr(reference_impl, f"conv{d}d"), getattr(reference_impl, f"conv{d}d_backward")
    y = rng.standard_normal(convolve(x, w, None, stride, padding, dilation, 2).shape)
    transposed = getattr(reference_impl, f"conv_transpose{d}d")(y, w, None, stride, padding, 0, 2, dilation)
    grad_input = backward(y, x, w, None, stride, padding, dilation, 2).grad_input
    assert transposed.shape == grad_input.shape == x.shape
    np.testing.assert_allclose(transposed, grad_input, rtol=1e-12, atol=1e-12)


def test_transposed_grad_output_of_the_wrong_shape_is_refused() -> None:
    for function in (reference_impl.conv_transpose1d_backward, reference_impl.conv_transpose1d_loops_backward):
        with pytest.raises(ValueError, match=r"grad_output has shape \[1, 2, 5\], the output's is \[1, 2, 6\]"):
            function(np.ones((1, 2, 5)), np.ones((1, 2, 3)), np.ones((2, 1, 2)), None, 2, 0, 0, 2)


@pytest.mark.parametrize(
    "op,x_shape,w_shape,kwargs",
    [
        ("conv_transpose2d", (2, 4, 5, 6), (4, 1, 4, 4), dict(stride=2, padding=1, groups=4)),  # one placed call
        ("conv_transpose1d", (2, 4, 9), (4, 2, 3), dict(stride=2, padding=1, groups=2, output_padding=1)),
        ("conv_transpose3d", (1, 2, 3, 4, 5), (2, 1, 3, 3, 3), dict(stride=2, padding=1, groups=2)),
    ],
)
def test_phase_plans_are_reused_and_hold_no_values(op: str, x_shape, w_shape, kwargs) -> None:
    """The phase decomposition is planned once per shape (phase_gradient.plan_phases, cached); the
    plan holds index arrays, never a weight's values: three calls with the same shapes and other
    values each match the loops, and the second and third reuse the first's plan."""
    from reference_impl import convolve_transpose_loops
    from reference_impl.phase_gradient import plan_phases

    rng = np.random.default_rng(11)
    plan_phases.cache_clear()
    for call in range(3):
        x, weight = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        expected = convolve_transpose_loops(x, weight, **kwargs, spatial_dims=len(x_shape) - 2)
        got = getattr(reference_impl, op)(x, weight, **kwargs)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12, err_msg=f"call {call}")
    info = plan_phases.cache_info()
    assert (info.misses, info.hits) == (1, 2), info


@pytest.mark.parametrize("path", ["phases", "scatter"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_both_input_gradient_paths_match_the_loops(path: str, d: int) -> None:
    """The two ways of computing the padded input's gradient (what the transposed convolution is),
    forced, against the loop version; dy one position short in the first dim, as output_padding leaves it."""
    from reference_impl.backward import padded_input_gradient
    from reference_impl.backward_loops import padded_input_gradient_loops

    rng = np.random.default_rng(d)
    for groups, in_per_group, out_per_group in ((1, 3, 4), (2, 2, 1), (3, 1, 1), (2, 1, 3)):
        geo = reference_impl.plan_conv(
            (2, groups * in_per_group, *(9, 8, 7)[:d]),
            (groups * out_per_group, in_per_group, *(3, 2, 2)[:d]),
            None,
            (2, 1, 3)[:d],
            (1, 0, 2)[:d],
            (1, 2, 1)[:d],
            groups,
            spatial_dims=d,
        )
        short = (geo.output_size[0] - 1, *geo.output_size[1:])
        dy = rng.standard_normal((2, groups * out_per_group, *short))
        weight = rng.standard_normal((groups * out_per_group, in_per_group, *geo.kernel))
        expected = padded_input_gradient_loops(dy, weight, geo, np.dtype(np.float64))  # (N, C_in, *padded)
        np.testing.assert_allclose(
            padded_input_gradient(dy, weight, geo, path), expected, rtol=1e-10, atol=1e-12, err_msg=f"groups {groups}"
        )
        # A region only (what a transposed conv keeps once its padding is cut off), odd bounds.
        crop = [(1, n - 2) for n in geo.padded_size]
        np.testing.assert_allclose(
            padded_input_gradient(dy, weight, geo, path, crop),
            expected[(slice(None), slice(None), *(slice(a, b) for a, b in crop))],
            rtol=1e-10,
            atol=1e-12,
            err_msg=f"groups {groups} cropped",
        )
    with pytest.raises(ValueError, match="unknown input-gradient path"):
        padded_input_gradient(dy, weight, geo, "fft")


@pytest.mark.parametrize("d", [1, 2])
def test_upsampler_phases_are_written_by_the_kernel_into_the_strided_output(d: int, monkeypatch) -> None:
    """A depthwise k4 s2 upsampler's four phases go straight from the compiled kernel into the
    strided output (no per-phase plane, no strided copies): the kernel is really called, with every
    phase stacked into it once, and the result is the loop version's."""
    pytest.importorskip("numba")
    from tests.helpers import spy_on_kernel

    calls = []
    spy_on_kernel(monkeypatch, "direct_conv_placed", lambda *a: calls.append(a[3].shape))
    rng = np.random.default_rng(d)
    x, w = rng.standard_normal((2, 3, *(6, 7)[:d])), rng.standard_normal((3, 1, *(4,) * d))
    transposed = getattr(reference_impl, f"conv_transpose{d}d")
    loops = getattr(reference_impl, f"conv_transpose{d}d_loops")
    for output_padding in (0, 1):
        got = transposed(x, w, None, 2, 1, output_padding, 3)
        np.testing.assert_allclose(got, loops(x, w, None, 2, 1, output_padding, 3), rtol=1e-12, atol=1e-12)
    assert calls == [(3 * 2**d, 7)] * 2  # one call per transposed conv: 2**d phases x 3 channels placed


@pytest.mark.parametrize("d", [1, 2])
def test_placed_phases_written_as_interleaved_pairs_match_the_loops(d: int, monkeypatch) -> None:
    """Column phases that share their target rows are written as interleaved pairs (the odd phase
    starting one column right, with as many columns or one fewer), the other phases one by one:
    every layout, for odd and even widths, paddings, output paddings and kernels, gives the loop
    version's output, and all three kinds of write really run."""
    pytest.importorskip("numba")
    from tests.helpers import spy_on_kernel

    seen = set()

    def spy(*args):
        placement, partner = args[3], args[4]
        for o, odd in enumerate(partner):
            if odd >= 0:
                seen.add(f"pair, {placement[o, 6] - placement[odd, 6]} more even column(s)")
            elif odd == -1:
                seen.add("alone")

    spy_on_kernel(monkeypatch, "direct_conv_placed", spy)
    rng = np.random.default_rng(d)
    transposed = getattr(reference_impl, f"conv_transpose{d}d")
    loops = getattr(reference_impl, f"conv_transpose{d}d_loops")
    strides = [2] if d == 1 else [(2, 2), (1, 2), (2, 1)]
    for width, stride, (kernel, padding, output_padding), (groups, per_group) in itertools.product(
        (6, 7), strides, ((4, 1, 0), (4, 1, 1), (2, 0, 1), (4, 2, 1), (3, 1, 1)), ((4, 1), (2, 2))
    ):
        x = rng.standard_normal((2, 4, *(5, width)[2 - d :]))
        w = rng.standard_normal((4, per_group, *(kernel,) * d))
        if d == 2:  # output padding must stay below the stride in each dim
            output_padding = tuple(min(output_padding, s - 1) for s in stride)
        got = transposed(x, w, None, stride, padding, output_padding, groups)
        expected = loops(x, w, None, stride, padding, output_padding, groups)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=f"{width} {stride} {kernel}")
    assert seen == {"pair, 0 more even column(s)", "pair, 1 more even column(s)", "alone"}


def test_3d_phases_are_written_by_the_kernel_into_the_strided_output(monkeypatch) -> None:
    """A 3-d transposed convolution whose phases have different tap counts (k3 s2: 2 or 1 per dim)
    runs each phase's convolution in the 3-d kernel, which writes straight into the phase's strided
    positions of the output (a non-contiguous view, no NumPy copy), the one-tap phase included; the
    result is the loop version's, with output padding, groups and a depth multiplier."""
    pytest.importorskip("numba")
    from tests.helpers import spy_on_kernel

    written = []
    spy_on_kernel(monkeypatch, "direct_conv3d", lambda *a: written.append(a[3].flags.c_contiguous))
    rng = np.random.default_rng(3)
    for groups, per_group, output_padding in ((4, 1, 1), (2, 3, 0)):
        written.clear()
        x, w = rng.standard_normal((2, 4, 3, 4, 5)), rng.standard_normal((4, per_group, 3, 3, 3))
        got = reference_impl.conv_transpose3d(x, w, None, 2, 1, output_padding, groups)
        expected = reference_impl.conv_transpose3d_loops(x, w, None, 2, 1, output_padding, groups)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=f"groups {groups}")
        assert written == [False] * 8  # 2**3 phases, each written in place into every second position


@pytest.mark.parametrize("d", [1, 2, 3])
def test_both_weight_gradient_paths_match_the_loops(d: int) -> None:
    """The tap loop (few channels per group) and the windows einsum (many) give the loop version's
    weight gradient, with stride, dilation, groups and a padding mode that copies values."""
    from reference_impl.backward import weight_gradient_by_einsum, weight_gradient_by_taps
    from reference_impl.backward_loops import weight_gradient_loops
    from reference_impl.padding import pad_input

    rng = np.random.default_rng(d)
    for groups, in_per_group, out_per_group, mode in ((1, 3, 4, "zeros"), (3, 1, 1, "reflect"), (2, 2, 3, "circular")):
        geo = reference_impl.plan_conv(
            (2, groups * in_per_group, *(9, 8, 7)[:d]),
            (groups * out_per_group, in_per_group, *(3, 2, 2)[:d]),
            None,
            (2, 1, 3)[:d],
            (1, 0, 2)[:d],
            (1, 2, 1)[:d],
            groups,
            mode,
            spatial_dims=d,
        )
        x = rng.standard_normal((2, groups * in_per_group, *geo.spatial))
        dy = rng.standard_normal((2, groups * out_per_group, *geo.output_size))
        expected = weight_gradient_loops(pad_input(x, geo.pads, mode), dy, geo, np.dtype(np.float64))
        for path in (weight_gradient_by_taps, weight_gradient_by_einsum):
            np.testing.assert_allclose(path(x, dy, geo), expected, rtol=1e-10, atol=1e-12, err_msg=path.__name__)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_scatter_adds_taps_the_same_with_or_without_the_compiled_kernel(d: int, compiled: bool, monkeypatch) -> None:
    """The scatter path's strided adds, in the col2im kernel or in NumPy, give the loop version's
    padded-input gradient (stride, dilation, groups in every dim)."""
    if compiled:
        pytest.importorskip("numba")
    from reference_impl import backward
    from reference_impl.backward_loops import padded_input_gradient_loops

    monkeypatch.setattr(backward, "scatter_in_kernel", lambda dtype: compiled)
    rng = np.random.default_rng(d)
    geo = reference_impl.plan_conv(
        (2, 6, *(9, 8, 7)[:d]),
        (4, 3, *(3, 2, 2)[:d]),
        None,
        (2, 1, 3)[:d],
        (1, 0, 2)[:d],
        (1, 2, 1)[:d],
        2,
        spatial_dims=d,
    )
    dy, weight = rng.standard_normal((2, 4, *geo.output_size)), rng.standard_normal((4, 3, *geo.kernel))
    expected = padded_input_gradient_loops(dy, weight, geo, np.dtype(np.float64))
    for threads in (1, 2) if compiled else (1,):  # the col2im kernel's serial twin, then its parallel version
        with launch_threads(monkeypatch, threads) if compiled else contextlib.nullcontext():
            for dtype, tolerance in ((np.float64, 1e-12), (np.float32, 1e-5)):
                got = backward.input_gradient_by_scatter(dy.astype(dtype), weight.astype(dtype), geo)
                assert got.dtype == dtype
                np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)
