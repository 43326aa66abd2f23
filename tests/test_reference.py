"""The two reference implementations against each other and against torch."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from reference_impl import conv2d, conv2d_loops, pad_input, plan_conv2d, source_indices
from tests.helpers import torch_conv2d

MODES = ("zeros", "reflect", "replicate", "circular")


def random_config(seed: int) -> dict:
    """A small valid configuration; every parameter varied, H != W and N != C to expose axis swaps."""
    rng = random.Random(seed)
    groups = rng.choice([1, 2, 3])
    in_per_group, out_per_group = rng.choice([1, 2, 3]), rng.choice([1, 2])
    kernel = (rng.choice([1, 2, 3]), rng.choice([1, 2, 3]))
    padding = rng.choice([0, 1, (1, 2), (2, 0), "same", "valid"])
    stride = 1 if padding == "same" else rng.choice([1, 2, (2, 1), (1, 3)])
    dilation = rng.choice([1, 2, (1, 2), (2, 1)])
    mode = rng.choice(MODES)
    height, width = rng.randint(5, 8), rng.randint(5, 8)
    batch = rng.choice([0, 1, 2, None])  # None: unbatched (C, H, W)
    data = np.random.default_rng(seed)
    in_channels, out_channels = groups * in_per_group, groups * out_per_group
    shape = (in_channels, height, width) if batch is None else (batch, in_channels, height, width)
    return dict(
        x=data.standard_normal(shape),
        w=data.standard_normal((out_channels, in_per_group, *kernel)),
        b=data.standard_normal(out_channels) if rng.random() < 0.5 else None,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=mode,
    )


def _call(function, config: dict):
    c = config
    return function(c["x"], c["w"], c["b"], c["stride"], c["padding"], c["dilation"], c["groups"], c["padding_mode"])


@pytest.mark.parametrize("seed", range(80))
def test_loops_vectorised_and_torch_agree(seed: int) -> None:
    config = random_config(seed)
    try:
        expected = _call(torch_conv2d, config)
    except RuntimeError:
        # torch refuses (e.g. reflect padding wider than the input): the reference must too.
        for function in (conv2d, conv2d_loops):
            with pytest.raises(ValueError):
                _call(function, config)
        return
    for function in (conv2d, conv2d_loops):
        actual = _call(function, config)
        assert actual.shape == expected.shape, function.__name__
        np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12, err_msg=function.__name__)


def test_seed_experiment_digits() -> None:
    """The seed's groups=3 experiment: the digits of each output name the inputs it read."""
    x = np.array([0.1, 1, 10, 100, 1000, 10000]).reshape(1, 6, 1, 1)
    w = np.arange(1, 13, dtype=np.float64).reshape(6, 2, 1, 1)
    for function in (conv2d, conv2d_loops):
        np.testing.assert_allclose(function(x, w, groups=3).ravel(), [2.1, 4.3, 650, 870, 109000, 131000])


def test_float32_in_float32_out() -> None:
    x = np.ones((1, 4, 3, 3), np.float32)
    w = np.ones((4, 2, 1, 1), np.float32)
    assert conv2d(x, w, groups=2).dtype == np.float32
    assert conv2d_loops(x, w, groups=2).dtype == np.float32


def test_empty_batch_and_unbatched_shapes() -> None:
    w = np.ones((6, 1, 3, 3))
    assert conv2d(np.ones((0, 3, 5, 7)), w, groups=3).shape == (0, 6, 3, 5)
    assert conv2d(np.ones((3, 5, 7)), w, groups=3).shape == (6, 3, 5)
    assert conv2d_loops(np.ones((3, 5, 7)), w, groups=3).shape == (6, 3, 5)


def test_same_padding_puts_the_extra_after() -> None:
    geometry = plan_conv2d((1, 1, 5, 5), (1, 1, 2, 4), None, padding="same")
    assert geometry.pads == (0, 1, 1, 2)
    assert geometry.output_size == (5, 5)


@pytest.mark.parametrize("mode", MODES)
def test_padding_index_map_matches_torch(mode: str) -> None:
    x = torch.arange(12, dtype=torch.float64).reshape(1, 1, 3, 4)
    torch_mode = "constant" if mode == "zeros" else mode
    expected = torch.nn.functional.pad(x, (2, 1, 1, 2), mode=torch_mode).numpy()
    np.testing.assert_array_equal(pad_input(x.numpy(), (1, 2, 2, 1), mode), expected)


def test_reflect_index_map_folds_back_and_forth() -> None:
    assert source_indices(4, 3, 3, "reflect").tolist() == [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]


# (kwargs for nn.Conv2d, input shape, words both torch and the reference must say)
INVALID = [
    (dict(in_channels=6, out_channels=6, kernel_size=1, groups=0), (1, 6, 3, 3), "groups must be a positive integer"),
    (dict(in_channels=6, out_channels=6, kernel_size=1, groups=-2), (1, 6, 3, 3), "groups must be a positive integer"),
    (
        dict(in_channels=5, out_channels=4, kernel_size=1, groups=2),
        (1, 5, 3, 3),
        "in_channels must be divisible by groups",
    ),
    (
        dict(in_channels=4, out_channels=6, kernel_size=1, groups=4),
        (1, 4, 3, 3),
        "out_channels must be divisible by groups",
    ),
    (
        dict(in_channels=4, out_channels=4, kernel_size=3, stride=2, padding="same"),
        (1, 4, 5, 5),
        "padding='same' is not supported for strided convolutions",
    ),
    (dict(in_channels=4, out_channels=4, kernel_size=3, padding=-1), (1, 4, 5, 5), "negative padding is not supported"),
    (
        dict(in_channels=4, out_channels=4, kernel_size=3, stride=0),
        (1, 4, 5, 5),
        "non-positive stride is not supported",
    ),
    (
        dict(in_channels=4, out_channels=4, kernel_size=3, dilation=0),
        (1, 4, 5, 5),
        "dilation should be greater than zero",
    ),
    (
        dict(in_channels=4, out_channels=4, kernel_size=(3, 6)),
        (1, 4, 5, 5),
        "Kernel size can't be greater than actual input size",
    ),
    (dict(in_channels=4, out_channels=4, kernel_size=3, dilation=3), (1, 4, 5, 9), "Kernel size can't be greater"),
    (
        dict(in_channels=4, out_channels=8, kernel_size=1, groups=2),
        (1, 6, 3, 3),
        "expected input.* to have 4 channels, but got 6",
    ),
    (
        dict(in_channels=4, out_channels=4, kernel_size=3, padding=3, padding_mode="reflect"),
        (1, 4, 3, 5),
        "Padding size should be less than the corresponding input dimension",
    ),
    (
        dict(in_channels=4, out_channels=4, kernel_size=3, padding=4, padding_mode="circular"),
        (1, 4, 3, 5),
        "Padding value causes wrapping around more than once",
    ),
    (dict(in_channels=4, out_channels=4, kernel_size=3, padding="full"), (1, 4, 5, 5), "Invalid padding string 'full'"),
    (
        dict(in_channels=4, out_channels=4, kernel_size=3, padding_mode="mirror"),
        (1, 4, 5, 5),
        "padding_mode must be one of",
    ),
]


@pytest.mark.parametrize("kwargs,input_shape,words", INVALID, ids=[w[:40] for _, _, w in INVALID])
@pytest.mark.parametrize("function", [conv2d, conv2d_loops])
def test_invalid_layers_are_refused_like_torch(function, kwargs: dict, input_shape: tuple, words: str) -> None:
    with pytest.raises((ValueError, RuntimeError), match=words):
        torch.nn.Conv2d(**kwargs, dtype=torch.float64)(torch.zeros(input_shape, dtype=torch.float64))
    groups = kwargs.get("groups", 1)
    per_group = kwargs["in_channels"] // groups if groups > 0 else kwargs["in_channels"]
    kernel = kwargs["kernel_size"] if isinstance(kwargs["kernel_size"], tuple) else (kwargs["kernel_size"],) * 2
    weight = np.zeros((kwargs["out_channels"], per_group, *kernel))
    with pytest.raises(ValueError, match=words):
        function(
            np.zeros(input_shape),
            weight,
            None,
            kwargs.get("stride", 1),
            kwargs.get("padding", 0),
            kwargs.get("dilation", 1),
            groups,
            kwargs.get("padding_mode", "zeros"),
        )
