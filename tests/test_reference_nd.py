"""The N-d reference (conv1d/2d/3d, conv_transpose1d/2d/3d): loops, fast version and torch agree,
forward and backward, on seeded random layers; the seed experiment per op; torch's refusals, in torch's words.

torch runs in float64, so agreement is to rounding (rtol 1e-10), not to a loose tolerance.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import reference_impl

CONVS = ("conv1d", "conv2d", "conv3d")
TRANSPOSED = ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
OPS = CONVS + TRANSPOSED
MODES = ("zeros", "reflect", "replicate", "circular")


def spatial_dims(op: str) -> int:
    return int(op[-2])


def random_layer(op: str, seed: int) -> dict:
    """A small valid-looking layer for ``op``: groups, stride, padding, dilation (and output_padding
    or padding_mode) varied per dimension, sizes unequal across dims to expose axis swaps. The
    batch cycles through unbatched, empty, 1 and 2. torch may still refuse it (then so must we)."""
    rng = random.Random(f"{op}-{seed}")
    d = spatial_dims(op)
    per_dim = lambda choices: tuple(rng.choice(choices) for _ in range(d))  # noqa: E731
    groups = rng.choice([1, 2, 3])
    in_per_group, out_per_group = rng.choice([1, 2]), rng.choice([1, 2])
    kernel = per_dim([1, 2, 3])
    stride, dilation = per_dim([1, 2, 3]), per_dim([1, 2])
    size = tuple(rng.randint(3, 7 - d) for _ in range(d))
    batch = [None, 0, 1, 2][seed % 4]
    layer = dict(op=op, groups=groups, stride=stride, dilation=dilation, bias=rng.random() < 0.6)
    in_channels, out_channels = groups * in_per_group, groups * out_per_group
    if op in TRANSPOSED:
        layer.update(
            padding=per_dim([0, 1, 2]),
            output_padding=tuple(rng.randrange(max(s, dl)) for s, dl in zip(stride, dilation, strict=False)),
        )
        weight_shape = (in_channels, out_per_group, *kernel)
    else:
        padding = rng.choice([0, 1, per_dim([0, 1, 2]), "same", "valid"])
        layer.update(padding=padding, padding_mode=rng.choice(MODES))
        if padding == "same":
            layer["stride"] = 1
        weight_shape = (out_channels, in_per_group, *kernel)
    data = np.random.default_rng(seed)
    input_shape = (in_channels, *size) if batch is None else (batch, in_channels, *size)
    layer.update(
        x=data.standard_normal(input_shape),
        w=data.standard_normal(weight_shape),
        b=data.standard_normal(out_channels) if layer["bias"] else None,
    )
    return layer


def reference_call(function, layer: dict, *leading):
    """Call a reference function (forward, or backward with grad_output leading) on ``layer``."""
    args = (*leading, layer["x"], layer["w"], layer["b"], layer["stride"], layer["padding"])
    if layer["op"] in TRANSPOSED:
        return function(*args, layer["output_padding"], layer["groups"], layer["dilation"])
    return function(*args, layer["dilation"], layer["groups"], layer["padding_mode"])


def torch_forward(layer: dict, requires_grad: bool = False) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """torch's output in float64, through nn.Conv{d}d (which owns padding_mode) or F.conv_transpose{d}d."""
    tensors = [
        None if a is None else torch.from_numpy(a).requires_grad_(requires_grad)
        for a in (layer["x"], layer["w"], layer["b"])
    ]
    x, w, b = tensors
    if layer["op"] in TRANSPOSED:
        out = getattr(torch.nn.functional, layer["op"])(
            x, w, b, layer["stride"], layer["padding"], layer["output_padding"], layer["groups"], layer["dilation"]
        )
        return out, tensors
    d = spatial_dims(layer["op"])
    module = getattr(torch.nn, f"Conv{d}d")(
        w.shape[1] * layer["groups"],
        w.shape[0],
        tuple(w.shape[2:]),
        layer["stride"],
        layer["padding"],
        layer["dilation"],
        layer["groups"],
        b is not None,
        layer["padding_mode"],
        dtype=torch.float64,
    )
    module.weight, module.bias = (
        torch.nn.Parameter(w, requires_grad),
        None if b is None else torch.nn.Parameter(b, requires_grad),
    )
    tensors[1:] = [module.weight, module.bias]
    return module(x), tensors


def implementations(op: str) -> tuple:
    return getattr(reference_impl, op), getattr(reference_impl, f"{op}_loops")


CASES = [(op, seed) for op in OPS for seed in range(12)]


@pytest.mark.parametrize("op,seed", CASES, ids=[f"{op}-{seed}" for op, seed in CASES])
def test_loops_fast_and_torch_agree_forward_and_backward(op: str, seed: int) -> None:
    layer = random_layer(op, seed)
    try:
        expected, tensors = torch_forward(layer, requires_grad=True)
    except RuntimeError as refusal:
        # torch refuses (kernel wider than the padded input, output too small, ...): the reference
        # must refuse too, in the same words.
        for function in implementations(op):
            with pytest.raises(ValueError) as ours:
                reference_call(function, layer)
            if layer["x"].size:  # an empty batch makes torch fail later, in a reshape, in other words
                assert str(ours.value) in str(refusal), (str(ours.value), str(refusal))
        return
    for function in implementations(op):
        actual = reference_call(function, layer)
        assert actual.shape == tuple(expected.shape) and actual.dtype == np.float64, function.__name__
        np.testing.assert_allclose(actual, expected.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=function.__name__)

    grad_output = np.random.default_rng(seed + 1000).standard_normal(tuple(expected.shape))
    expected.backward(torch.from_numpy(grad_output))
    wanted = [None if t is None else t.grad.numpy() for t in tensors]
    for function in (getattr(reference_impl, f"{op}_backward"), getattr(reference_impl, f"{op}_loops_backward")):
        grads = reference_call(function, layer, grad_output)
        for name, got, want in zip(("grad_input", "grad_weight", "grad_bias"), grads, wanted, strict=False):
            if want is None:
                assert got is None, (function.__name__, name)
                continue
            assert got.shape == want.shape, (function.__name__, name)
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11, err_msg=f"{function.__name__} {name}")


def test_random_layers_cover_unbatched_empty_batch_groups_and_padding() -> None:
    """The random layers above really cover unbatched inputs, empty batches, groups > 1 and
    output_padding > 0 (transposed) or every padding mode (convolutions), for every op."""
    for op in OPS:
        layers = [random_layer(op, seed) for seed in range(12)]
        assert {layer["x"].ndim - spatial_dims(op) for layer in layers} == {1, 2}
        assert any(layer["x"].shape[0] == 0 for layer in layers if layer["x"].ndim == spatial_dims(op) + 2)
        assert any(layer["groups"] > 1 for layer in layers)
        if op in TRANSPOSED:
            assert any(max(layer["output_padding"]) > 0 for layer in layers)
        else:
            assert {layer["padding_mode"] for layer in layers} == set(MODES)


SEED_INPUT = [0.1, 1, 10, 100, 1000, 10000]
# Conv: row o of the (6, 2) weight reads the two inputs of its group. Transposed: row c of the
# (6, 2) weight belongs to INPUT channel c and feeds the two outputs of its group, so output 0 is
# 0.1*w[0, 0] + 1*w[1, 0] = 0.1*1 + 1*3 = 3.1.
SEED_OUTPUT = {"conv": [2.1, 4.3, 650, 870, 109000, 131000], "conv_transpose": [3.1, 4.2, 750, 860, 119000, 130000]}


@pytest.mark.parametrize("op", OPS)
def test_seed_experiment_digits_per_op(op: str) -> None:
    d = spatial_dims(op)
    x = np.array(SEED_INPUT).reshape(1, 6, *(1,) * d)
    w = np.arange(1, 13, dtype=np.float64).reshape(6, 2, *(1,) * d)
    expected = SEED_OUTPUT["conv_transpose" if op in TRANSPOSED else "conv"]
    torch_out = getattr(torch.nn.functional, op)(torch.from_numpy(x), torch.from_numpy(w), groups=3)
    np.testing.assert_allclose(torch_out.numpy().ravel(), expected)
    for function in implementations(op):
        np.testing.assert_allclose(function(x, w, groups=3).ravel(), expected, rtol=1e-12)


@pytest.mark.parametrize("op", TRANSPOSED)
def test_output_padding_adds_positions_at_the_end(op: str) -> None:
    """A 1x1 stride-2 transposed conv puts x[i] at 2i; output_padding=1 adds one zero at the END."""
    d = spatial_dims(op)
    x = np.arange(1, 3.0).reshape(1, 1, 2, *(1,) * (d - 1))
    w = np.ones((1, 1, *(1,) * d))
    out = getattr(reference_impl, op)(x, w, None, (2, *(1,) * (d - 1)), 0, (1, *(0,) * (d - 1)))
    assert out.ravel().tolist() == [1.0, 0.0, 2.0, 0.0]


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("op", OPS)
def test_dtype_in_is_dtype_out(op: str, dtype) -> None:
    d = spatial_dims(op)
    x, w = np.ones((1, 4, *(3,) * d), dtype), np.ones((4, 2, *(2,) * d), dtype)
    for function in implementations(op):
        assert function(x, w, None, 1, 1, groups=2).dtype == dtype
    grads = getattr(reference_impl, f"{op}_backward")(
        np.ones(getattr(reference_impl, op)(x, w, None, 1, 1, groups=2).shape, dtype),
        x,
        w,
        np.ones(4, dtype),
        1,
        1,
        groups=2,
    )
    assert all(g.dtype == dtype for g in grads)


def bfloat16_dtype():
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 plug-in arrays need ml_dtypes")
    return ml_dtypes.bfloat16


@pytest.mark.parametrize("op", OPS)
def test_bfloat16_arrays_are_computed_like_torch_and_returned_as_bfloat16(op: str) -> None:
    bfloat16 = bfloat16_dtype()
    layer = random_layer(op, 7)  # seed 7: a batch of 2 (seed % 4 picks the batch kind)
    assert layer["x"].shape[0] == 2
    for key in ("x", "w", "b"):
        if layer[key] is not None:
            layer[key] = layer[key].astype(bfloat16)
    x, w, b = (None if layer[k] is None else torch.from_numpy(layer[k].astype(np.float32)).bfloat16() for k in "xwb")
    kwargs = dict(output_padding=layer["output_padding"]) if op in TRANSPOSED else {}
    torch_bf16 = getattr(torch.nn.functional, op)(
        x,
        w,
        b,
        stride=layer["stride"],
        groups=layer["groups"],
        dilation=layer["dilation"],
        padding=layer["padding"] if op in TRANSPOSED else 0,
        **kwargs,
    )
    if op in CONVS:
        layer.update(padding=0, padding_mode="zeros")
    for function in implementations(op):
        actual = reference_call(function, layer)
        assert actual.dtype == bfloat16 and actual.size > 0
        np.testing.assert_allclose(actual.astype(np.float32), torch_bf16.float().numpy(), rtol=2**-7, atol=1e-2)


# (op, keyword arguments, input shape, weight shape, torch's words); torch must say them too.
INVALID = [
    (
        "conv_transpose2d",
        dict(stride=2, output_padding=2),
        (1, 4, 5, 5),
        (4, 4, 3, 3),
        "output padding must be smaller than either stride or dilation, but got output_padding_height: 2 "
        "output_padding_width: 2 stride_height: 2 stride_width: 2 dilation_height: 1 dilation_width: 1",
    ),
    (
        "conv_transpose1d",
        dict(stride=2, output_padding=2),
        (1, 4, 5),
        (4, 4, 3),
        "output padding must be smaller than either stride or dilation, but got output_padding_height: 0 "
        "output_padding_width: 2 stride_height: 1 stride_width: 2 dilation_height: 1 dilation_width: 1",
    ),
    (
        "conv_transpose3d",
        dict(stride=2, output_padding=(0, 2, 0)),
        (1, 4, 3, 3, 3),
        (4, 4, 3, 3, 3),
        "output padding must be smaller than either stride or dilation, but got output_padding_depth: 0",
    ),
    (
        "conv_transpose2d",
        dict(groups=2),
        (1, 6, 3, 3),
        (4, 2, 1, 1),
        "Given transposed=1, weight of size [4, 2, 1, 1], expected input[1, 6, 3, 3] to have 4 channels, "
        "but got 6 channels instead",
    ),
    (
        "conv_transpose1d",
        dict(padding=1),
        (1, 4, 1),
        (4, 4, 1),
        "Given input size per channel: (1 x 1). Calculated output size per channel: (1 x -1). Output size is too small",
    ),
    (
        "conv_transpose3d",
        dict(padding=1),
        (1, 4, 1, 1, 1),
        (4, 4, 1, 1, 1),
        "Given input size per channel: (1 x 1 x 1). Calculated output size per channel: (-1 x -1 x -1). "
        "Output size is too small",
    ),
    (
        "conv_transpose2d",
        dict(output_padding=-1),
        (1, 4, 3, 3),
        (4, 1, 3, 3),
        "negative output_padding is not supported",
    ),
    ("conv_transpose2d", dict(padding=-1), (1, 4, 3, 3), (4, 1, 3, 3), "negative padding is not supported"),
    ("conv_transpose2d", dict(stride=0), (1, 4, 3, 3), (4, 1, 3, 3), "non-positive stride is not supported"),
    (
        "conv_transpose1d",
        dict(dilation=0),
        (1, 4, 5),
        (4, 4, 3),
        "dilation should be greater than zero, but got dilation_height: 1, dilation_width: 0",
    ),
    (
        "conv_transpose3d",
        dict(dilation=0),
        (1, 4, 5, 5, 5),
        (4, 4, 3, 3, 3),
        "dilation should be greater than zero, but got dilation_depth: 0, dilation_height: 0, dilation_width: 0",
    ),
    (
        "conv_transpose2d",
        dict(),
        (1, 1, 4, 3, 3),
        (4, 2, 3, 3),
        "Expected 3D (unbatched) or 4D (batched) input to conv_transpose2d, but got input of size: [1, 1, 4, 3, 3]",
    ),
    (
        "conv_transpose1d",
        dict(bias=np.zeros(4)),
        (1, 4, 5),
        (4, 3, 3),
        "Given transposed=1, weight of size [4, 3, 3], expected bias to be 1-dimensional with 3 elements, "
        "but got bias of size [4] instead",
    ),
    (
        "conv_transpose2d",
        dict(),
        (1, 4, 5, 5),
        (4, 4, 0, 3),
        "kernel size should be greater than zero, but got kernel_height: 0 kernel_width: 3",
    ),
    (
        "conv1d",
        dict(),
        (1, 1, 4, 3),
        (4, 1, 3),
        "Expected 2D (unbatched) or 3D (batched) input to conv1d, but got input of size: [1, 1, 4, 3]",
    ),
    (
        "conv3d",
        dict(),
        (1, 1, 4, 3, 3, 3),
        (4, 1, 3, 3, 3),
        "Expected 4D (unbatched) or 5D (batched) input to conv3d, but got input of size: [1, 1, 4, 3, 3, 3]",
    ),
    (
        "conv1d",
        dict(),
        (1, 4, 5),
        (4, 1, 3, 3),
        "Expected 4-dimensional input for 4-dimensional weight [4, 1, 3, 3], but got 3-dimensional input of size "
        "[1, 4, 5] instead",
    ),
    (
        "conv3d",
        dict(),
        (1, 4, 3, 3, 3),
        (4, 4, 4, 3, 3),
        "Calculated padded input size per channel: (3 x 3 x 3). Kernel size: (4 x 3 x 3). "
        "Kernel size can't be greater than actual input size",
    ),
    (
        "conv1d",
        dict(),
        (1, 4, 3),
        (4, 4, 4),
        "Calculated padded input size per channel: (3). Kernel size: (4). "
        "Kernel size can't be greater than actual input size",
    ),
    (
        "conv1d",
        dict(stride=2, padding="same"),
        (1, 4, 5),
        (4, 4, 3),
        "padding='same' is not supported for strided convolutions",
    ),
    (
        "conv1d",
        dict(stride=(1, 1)),
        (1, 4, 5),
        (4, 4, 3),
        "expected stride to be a single integer value or a list of 1 values to match the convolution dimensions, "
        "but got stride=[1, 1]",
    ),
    ("conv1d", dict(dilation=0), (1, 4, 5), (4, 4, 3), "dilation should be greater than zero, but got [1, 0]"),
    (
        "conv3d",
        dict(dilation=0),
        (1, 4, 5, 5, 5),
        (4, 4, 3, 3, 3),
        "dilation should be greater than zero, but got [0, 0, 0]",
    ),
    ("conv3d", dict(padding=-1), (1, 4, 5, 5, 5), (4, 4, 3, 3, 3), "negative padding is not supported"),
    (
        "conv1d",
        dict(),
        (1, 4, 5),
        (4, 4, 0),
        "kernel size should be greater than zero, but got kernel_height: 1 kernel_width: 0",
    ),
    (
        "conv3d",
        dict(),
        (1, 4, 5, 5, 5),
        (4, 4, 0, 3, 3),
        "kernel size should be greater than zero, but got: 0 x 3 x 3 (TxHxW)",
    ),
    (
        "conv1d",
        dict(bias=np.zeros(4)),
        (1, 4, 5),
        (3, 4, 3),
        "Given weight of size [3, 4, 3], expected bias to be 1-dimensional with 3 elements, "
        "but got bias of size [4] instead",
    ),
    (
        "conv3d",
        dict(groups=2),
        (1, 6, 3, 3, 3),
        (4, 2, 1, 1, 1),
        "Given groups=2, weight of size [4, 2, 1, 1, 1], expected input[1, 6, 3, 3, 3] to have 4 channels, "
        "but got 6 channels instead",
    ),
    # A zero-size spatial dimension of a non-empty input is refused even where padding makes room
    # for the kernel, and by a transposed convolution whatever its output size would be.
    (
        "conv2d",
        dict(padding=2),
        (1, 2, 0, 3),
        (2, 2, 3, 3),
        "Only zero batch or zero channel inputs are supported, but got input shape: [1, 2, 0, 3]",
    ),
    (
        "conv1d",
        dict(padding=1),
        (1, 2, 0),
        (2, 2, 1),
        "Only zero batch or zero channel inputs are supported, but got input shape: [1, 2, 1, 0]",
    ),
    (
        "conv_transpose1d",
        dict(),
        (1, 2, 0),
        (2, 2, 3),
        "Only zero batch or zero channel inputs are supported, but got input shape: [1, 2, 1, 0]",
    ),
    (
        "conv_transpose3d",
        dict(),
        (1, 2, 2, 0, 2),
        (2, 2, 1, 1, 1),
        "Only zero batch or zero channel inputs are supported, but got input shape: [1, 2, 2, 0, 2]",
    ),
]


@pytest.mark.parametrize(
    "op,kwargs,input_shape,weight_shape,words", INVALID, ids=[f"{op}-{words[:40]}" for op, _, _, _, words in INVALID]
)
def test_refusals_are_worded_like_torch(
    op: str, kwargs: dict, input_shape: tuple, weight_shape: tuple, words: str
) -> None:
    torch_kwargs = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    with pytest.raises(RuntimeError) as refusal:
        getattr(torch.nn.functional, op)(
            torch.zeros(input_shape, dtype=torch.float64),
            torch.zeros(weight_shape, dtype=torch.float64),
            **torch_kwargs,
        )
    assert words in str(refusal.value)
    for function in implementations(op):
        with pytest.raises(ValueError) as ours:
            function(np.zeros(input_shape), np.zeros(weight_shape), **kwargs)
        assert words in str(ours.value), function.__name__


# Refusals made by the nn modules' constructors (what a case's conv: block builds), by op type.
MODULE_INVALID = [
    (
        "ConvTranspose2d",
        dict(in_channels=4, out_channels=4, kernel_size=3, padding_mode="reflect"),
        'Only "zeros" padding mode is supported for ConvTranspose2d',
    ),
    (
        "ConvTranspose1d",
        dict(in_channels=4, out_channels=4, kernel_size=3, padding_mode="circular"),
        'Only "zeros" padding mode is supported for ConvTranspose1d',
    ),
    (
        "ConvTranspose3d",
        dict(in_channels=4, out_channels=4, kernel_size=3, padding_mode="replicate"),
        'Only "zeros" padding mode is supported for ConvTranspose3d',
    ),
    (
        "ConvTranspose2d",
        dict(in_channels=5, out_channels=4, kernel_size=1, groups=2),
        "in_channels must be divisible by groups",
    ),
    (
        "ConvTranspose1d",
        dict(in_channels=6, out_channels=6, kernel_size=1, groups=0),
        "groups must be a positive integer",
    ),
    (
        "Conv1d",
        dict(in_channels=4, out_channels=6, kernel_size=1, groups=4),
        "out_channels must be divisible by groups",
    ),
    ("Conv3d", dict(in_channels=5, out_channels=4, kernel_size=1, groups=2), "in_channels must be divisible by groups"),
    (
        "Conv1d",
        dict(in_channels=4, out_channels=4, kernel_size=3, stride=2, padding="same"),
        "padding='same' is not supported for strided convolutions",
    ),
    (
        "Conv3d",
        dict(in_channels=4, out_channels=4, kernel_size=3, padding_mode="mirror"),
        "padding_mode must be one of",
    ),
]


@pytest.mark.parametrize("module,kwargs,words", MODULE_INVALID, ids=[f"{m}-{w[:40]}" for m, _, w in MODULE_INVALID])
def test_layer_refusals_are_worded_like_torch_modules(module: str, kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        getattr(torch.nn, module)(**kwargs)
    d, transposed = int(module[-2]), module.startswith("ConvTranspose")
    op = f"conv_transpose{d}d" if transposed else f"conv{d}d"
    groups = kwargs.get("groups", 1)
    per_group = lambda channels: channels // groups if groups > 0 else channels  # noqa: E731
    kernel = (kwargs["kernel_size"],) * d
    weight_shape = (
        (kwargs["in_channels"], per_group(kwargs["out_channels"]))
        if transposed
        else (kwargs["out_channels"], per_group(kwargs["in_channels"]))
    )
    x, w = np.zeros((1, kwargs["in_channels"], *(5,) * d)), np.zeros((*weight_shape, *kernel))
    call = {k: v for k, v in kwargs.items() if k in ("stride", "padding", "groups", "padding_mode")}
    for function in implementations(op):
        with pytest.raises(ValueError, match=words):
            function(x, w, **call)


def test_unbatched_input_keeps_its_rank_for_every_op() -> None:
    for op in OPS:
        d = spatial_dims(op)
        x, w = np.ones((4, *(5,) * d)), np.ones((4, 2, *(3,) * d))
        for function in implementations(op):
            out = function(x, w, None, 1, 1, groups=2)
            assert out.shape == (4, *(5,) * d), (op, function.__name__, out.shape)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("stride", [1, 2])
def test_no_input_channels_sum_to_the_bias_like_the_loops(op, stride):
    """A layer with no input channels: every output is an empty sum plus the bias. The default path
    (the compiled kernels where numba imports) returns what the loops do, float32 and float64, where
    the kernels once divided by the channels per group (ZeroDivisionError), and so do the gradients.
    (torch returns no output channels at all here: a tensor of shape (N, 0, ...).)"""
    d = spatial_dims(op)
    transposed = op in TRANSPOSED
    rng = np.random.default_rng(stride)
    x = rng.standard_normal((2, 0, *(5, 6, 4)[:d]))
    weight = rng.standard_normal((0, 4, *(3,) * d) if transposed else (4, 0, *(3,) * d))
    bias = rng.standard_normal(4)
    loops = getattr(reference_impl, f"{op}_loops")
    expected = loops(x, weight, bias, stride, 1)
    assert expected.shape[:2] == (2, 4) and np.array_equal(
        expected, np.broadcast_to(bias.reshape(4, *(1,) * d), expected.shape)
    )
    grad_output = rng.standard_normal(expected.shape)
    expected_grads = getattr(reference_impl, f"{op}_loops_backward")(grad_output, x, weight, bias, stride, 1)
    for dtype in (np.float32, np.float64):
        args = (x.astype(dtype), weight.astype(dtype), bias.astype(dtype), stride, 1)
        got = getattr(reference_impl, op)(*args)
        assert got.dtype == dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected.astype(dtype))
        grads = getattr(reference_impl, f"{op}_backward")(grad_output.astype(dtype), *args)
        for name, value, want in zip(("input", "weight", "bias"), grads, expected_grads, strict=True):
            assert value.shape == want.shape, name
            np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-5, err_msg=name)
