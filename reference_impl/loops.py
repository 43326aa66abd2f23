"""The grouped convolution written the way the maths reads: one loop per index.

This is the version to learn from; it is far too slow for anything but small cases, and it is
checked against the vectorised version (and both against torch) in the tests. Written once for
1, 2 and 3 spatial dims: an output position ``i`` and a kernel tap ``t`` are tuples with one
index per spatial dim, and itertools.product walks all of them.

    y[n, o, i] = b[o] + sum_{c, t} w[o, c, t] * x_pad[n, g*C_g + c, i*s + t*d]      (per dim: i_k*s_k + t_k*d_k)

where g = o // O_g is the group of output channel o, C_g = in_channels / groups and
O_g = out_channels / groups. The weight's second axis, c, counts input channels *within* the
group, which is why the weight has shape (out_channels, in_channels/groups, *kernel).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from .dtypes import bfloat16_in_float32
from .geometry import ConvGeometry, IntOrTuple, Padding, plan_conv
from .padding import pad_input
from .vectorized import result_dtype


def positions(sizes: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """Every index tuple of a grid of ``sizes``, row-major: (0, 0), (0, 1), ... for 2-d."""
    return itertools.product(*(range(n) for n in sizes))


def read_position(geo: ConvGeometry, output_position: tuple[int, ...], tap: tuple[int, ...]) -> tuple[int, ...]:
    """The padded-input position tap ``t`` of output ``i`` reads: i*s + t*d in every dim."""
    return tuple(i * s + t * d for i, t, s, d in zip(output_position, tap, geo.stride, geo.dilation, strict=False))


@bfloat16_in_float32
def conv_loops(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    spatial_dims: int,
) -> np.ndarray:
    """Grouped cross-correlation over ``spatial_dims`` spatial dims, one element at a time.

    >>> conv_loops(np.arange(4.0).reshape(1, 2, 2), np.ones((2, 1, 2)), groups=2, spatial_dims=1).tolist()
    [[[1.0], [5.0]]]
    """
    input, weight = np.asarray(input), np.asarray(weight)
    geo = plan_conv(
        input.shape,
        weight.shape,
        None if bias is None else np.shape(bias),
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        spatial_dims=spatial_dims,
    )
    dtype = result_dtype(input, weight, bias)
    x = pad_input(input.reshape(geo.batched_input_shape), geo.pads, geo.padding_mode)  # (N, C_in, *padded)
    out = np.zeros((geo.batch, geo.out_channels, *geo.output_size), dtype=dtype)

    for n in range(geo.batch):
        for o in range(geo.out_channels):
            g = geo.group_of_output_channel(o)
            for i in positions(geo.output_size):
                total = dtype.type(0) if bias is None else dtype.type(bias[o])
                for c, c_in in enumerate(geo.input_channels_of_group(g)):
                    for t in positions(geo.kernel):
                        total += weight[(o, c, *t)] * x[(n, c_in, *read_position(geo, i, t))]
                out[(n, o, *i)] = total
    return out.reshape(geo.output_shape)


def conv1d_loops(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """:func:`conv_loops` with one spatial dim: the loop version of ``conv1d``."""
    return conv_loops(input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=1)


def conv2d_loops(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Grouped 2-D cross-correlation, like ``torch.nn.functional.conv2d``, one element at a time.

    The seed experiment: six inputs 0.1 ... 10000, weights 1 ... 12, groups=3. Output channel 0
    is in group 0 and reads input channels 0 and 1 only: 1*0.1 + 2*1 = 2.1.

    >>> x = np.array([0.1, 1, 10, 100, 1000, 10000]).reshape(1, 6, 1, 1)
    >>> w = np.arange(1, 13.0).reshape(6, 2, 1, 1)
    >>> conv2d_loops(x, w, groups=3).ravel().round(6).tolist()
    [2.1, 4.3, 650.0, 870.0, 109000.0, 131000.0]
    """
    return conv_loops(input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=2)


def conv3d_loops(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """:func:`conv_loops` with three spatial dims: the loop version of ``conv3d``."""
    return conv_loops(input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=3)
