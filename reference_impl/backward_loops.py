"""The backward pass written the way the chain rule reads: one loop per index, any number of
spatial dims (positions and taps are tuples, see loops.py).

The forward sum is

    y[n, o, i] = b[o] + sum_{c, t} w[o, c, t] * x_pad[n, g*C_g + c, i*s + t*d]

with g = o // O_g. Each term ``w * x_pad`` is a product, so with ``dy = dL/dy``:

* it sends ``dy[n, o, i] * w[o, c, t]`` to the padded input element it read,
* it sends ``dy[n, o, i] * x_pad[...]`` to the weight tap that read it,
* and ``b[o]`` collects ``dy[n, o, i]`` from every output position.

Only input channels of group g appear in output channel o's sum, so only they receive its
gradient: grouping is as visible backwards as forwards. Finally each padded element hands its
gradient to the input element it copied (reflect/replicate/circular), or drops it (zeros).
The first sum, on its own, is the transposed convolution (transposed_loops.py).
Far too slow for anything but small cases; checked against :mod:`reference_impl.backward`.
"""

from __future__ import annotations

import numpy as np

from .backward import ConvGradients, plan_backward
from .dtypes import bfloat16_in_float32
from .geometry import ConvGeometry, IntOrTuple, Padding
from .loops import positions, read_position
from .padding import pad_input, source_indices


def padded_input_gradient_loops(dy: np.ndarray, weight: np.ndarray, geo: ConvGeometry, dtype: np.dtype) -> np.ndarray:
    """dy (N, C_out, *dy_size) -> the padded input's gradient (N, C_in, *padded), term by term.
    ``dy_size`` may be shorter than the output (a transposed convolution's output_padding)."""
    grad = np.zeros((dy.shape[0], geo.in_channels, *geo.padded_size), dtype=dtype)
    for n in range(dy.shape[0]):
        for o in range(geo.out_channels):
            g = geo.group_of_output_channel(o)
            for i in positions(dy.shape[2:]):
                upstream = dy[(n, o, *i)]
                for c, c_in in enumerate(geo.input_channels_of_group(g)):
                    for t in positions(geo.kernel):
                        grad[(n, c_in, *read_position(geo, i, t))] += upstream * weight[(o, c, *t)]
    return grad


def weight_gradient_loops(x_pad: np.ndarray, dy: np.ndarray, geo: ConvGeometry, dtype: np.dtype) -> np.ndarray:
    """Padded input (N, C_in, *padded) and dy (N, C_out, *dy_size) -> grad_weight (C_out, C_g, *k)."""
    grad = np.zeros((geo.out_channels, geo.in_channels_per_group, *geo.kernel), dtype=dtype)
    for n in range(dy.shape[0]):
        for o in range(geo.out_channels):
            g = geo.group_of_output_channel(o)
            for i in positions(dy.shape[2:]):
                upstream = dy[(n, o, *i)]
                for c, c_in in enumerate(geo.input_channels_of_group(g)):
                    for t in positions(geo.kernel):
                        grad[(o, c, *t)] += upstream * x_pad[(n, c_in, *read_position(geo, i, t))]
    return grad


def bias_gradient_loops(dy: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """dy (N, C_out, *size) -> (C_out,): every output position's gradient, per channel."""
    grad = np.zeros(dy.shape[1], dtype=dtype)
    for n in range(dy.shape[0]):
        for o in range(dy.shape[1]):
            for i in positions(dy.shape[2:]):
                grad[o] += dy[(n, o, *i)]
    return grad


def fold_padding_loops(grad_x_pad: np.ndarray, geo: ConvGeometry, dtype: np.dtype) -> np.ndarray:
    """Hand each padded element's gradient to the input element it copied (-1: a zero, dropped)."""
    sources = [
        source_indices(n, before, after, geo.padding_mode)
        for n, (before, after) in zip(geo.spatial, geo.pad_pairs, strict=False)
    ]
    grad_x = np.zeros((grad_x_pad.shape[0], grad_x_pad.shape[1], *geo.spatial), dtype=dtype)
    for padded in positions(geo.padded_size):
        source = tuple(int(s[p]) for s, p in zip(sources, padded, strict=False))
        if min(source) >= 0:
            grad_x[(slice(None), slice(None)) + source] += grad_x_pad[(slice(None), slice(None)) + padded]
    return grad_x


@bfloat16_in_float32
def convolve_loops_backward(
    grad_output: np.ndarray,
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
) -> ConvGradients:
    """Gradients of ``sum(conv_loops(...) * grad_output)``, one term of the forward sum at a time."""
    input, weight, grad_output = np.asarray(input), np.asarray(weight), np.asarray(grad_output)
    geo, dtype = plan_backward(
        grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims
    )
    x_pad = pad_input(input.reshape(geo.batched_input_shape), geo.pads, geo.padding_mode)  # (N, C_in, *padded)
    dy = grad_output.reshape(geo.batch, geo.out_channels, *geo.output_size)  # (N, C_out, *out)
    grad_x = fold_padding_loops(padded_input_gradient_loops(dy, weight, geo, dtype), geo, dtype)
    grad_bias = None if bias is None else bias_gradient_loops(dy, dtype)
    return ConvGradients(grad_x.reshape(input.shape), weight_gradient_loops(x_pad, dy, geo, dtype), grad_bias)


def conv1d_loops_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> ConvGradients:
    """:func:`convolve_loops_backward` for ``conv1d``."""
    return convolve_loops_backward(
        grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=1
    )


def conv2d_loops_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> ConvGradients:
    """Gradients of ``sum(conv2d(...) * grad_output)``, one term of the forward sum at a time.

    >>> x = np.array([0.1, 1, 10, 100, 1000, 10000]).reshape(1, 6, 1, 1)
    >>> w = np.arange(1, 13.0).reshape(6, 2, 1, 1)
    >>> conv2d_loops_backward(np.ones((1, 6, 1, 1)), x, w, groups=3).grad_weight.reshape(6, 2)[4:].tolist()
    [[1000.0, 10000.0], [1000.0, 10000.0]]
    """
    return convolve_loops_backward(
        grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=2
    )


def conv3d_loops_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> ConvGradients:
    """:func:`convolve_loops_backward` for ``conv3d``."""
    return convolve_loops_backward(
        grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=3
    )
