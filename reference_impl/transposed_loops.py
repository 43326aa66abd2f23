"""The transposed convolution one term at a time: the convolution's input-gradient loops
(backward_loops.py) run on our input, then the ``padding`` border cropped. Any number of spatial dims.

    y_pad[n, g*O_g + j, i*s + t*d] += x[n, c, i] * w[c, j, t]        g = c // (C_in/G)

Each input element ``x[c, i]`` is spread over the output through the kernel, into the output
channels of its own group only. See transposed.py for why this is the transposed convolution.
"""

from __future__ import annotations

import numpy as np

from .backward import ConvGradients
from .backward_loops import bias_gradient_loops, padded_input_gradient_loops, weight_gradient_loops
from .dtypes import bfloat16_in_float32
from .geometry import IntOrTuple, plan_conv_transpose
from .loops import conv_loops
from .padding import pad_input
from .transposed import crop_padding, plan_transpose_backward
from .vectorized import result_dtype


@bfloat16_in_float32
def convolve_transpose_loops(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
    *,
    spatial_dims: int,
) -> np.ndarray:
    """Grouped transposed convolution, one term at a time (torch's argument order).

    >>> x = np.array([0.1, 1, 10, 100, 1000, 10000]).reshape(1, 6, 1)
    >>> w = np.arange(1, 13.0).reshape(6, 2, 1)
    >>> convolve_transpose_loops(x, w, groups=3, spatial_dims=1).ravel().round(6).tolist()
    [3.1, 4.2, 750.0, 860.0, 119000.0, 130000.0]
    """
    input, weight = np.asarray(input), np.asarray(weight)
    geo = plan_conv_transpose(
        input.shape,
        weight.shape,
        None if bias is None else np.shape(bias),
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        padding_mode,
        spatial_dims=spatial_dims,
    )
    dtype = result_dtype(input, weight, bias)
    x = input.reshape(geo.conv.batch, geo.in_channels, *geo.input_size)  # (N, C_in, *S)
    out = crop_padding(padded_input_gradient_loops(x, weight, geo.conv, dtype), geo)  # (N, C_out, *S_out)
    if bias is not None:
        for o in range(geo.out_channels):
            out[:, o] += dtype.type(bias[o])
    return np.ascontiguousarray(out).reshape(geo.output_shape)


@bfloat16_in_float32
def convolve_transpose_loops_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
    *,
    spatial_dims: int,
) -> ConvGradients:
    """Gradients of ``sum(conv_transpose(...) * grad_output)``: the input's is the loop
    convolution of ``grad_output`` with the same weight (cut to the input's size), the weight's
    the convolution's weight-gradient loops with ``grad_output`` as their input."""
    input, weight, grad_output = np.asarray(input), np.asarray(weight), np.asarray(grad_output)
    geo, dtype = plan_transpose_backward(
        grad_output, input, weight, bias, stride, padding, output_padding, groups, dilation, padding_mode, spatial_dims
    )
    conv = geo.conv
    dy = grad_output.reshape(conv.batched_input_shape)  # (N, C_out, *S_out)
    x = input.reshape(conv.batch, geo.in_channels, *geo.input_size)  # (N, C_in, *S)
    reached = conv_loops(
        dy, weight, None, conv.stride, conv.pads[0::2], conv.dilation, conv.groups, spatial_dims=spatial_dims
    )  # (N, C_in, *conv.output_size)
    grad_input = reached[(slice(None), slice(None), *(slice(0, n) for n in geo.input_size))].astype(dtype)
    grad_weight = weight_gradient_loops(pad_input(dy, conv.pads, "zeros"), x, conv, dtype)  # (C_in, C_out/G, *k)
    grad_bias = None if bias is None else bias_gradient_loops(dy, dtype)
    return ConvGradients(np.ascontiguousarray(grad_input).reshape(input.shape), grad_weight, grad_bias)


def conv_transpose1d_loops(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """The loop version of ``conv_transpose1d``."""
    return convolve_transpose_loops(
        input, weight, bias, stride, padding, output_padding, groups, dilation, padding_mode, spatial_dims=1
    )


def conv_transpose1d_loops_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
) -> ConvGradients:
    """The loop version of ``conv_transpose1d_backward``."""
    return convolve_transpose_loops_backward(
        grad_output,
        input,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        padding_mode,
        spatial_dims=1,
    )


def conv_transpose2d_loops(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """The loop version of ``conv_transpose2d``."""
    return convolve_transpose_loops(
        input, weight, bias, stride, padding, output_padding, groups, dilation, padding_mode, spatial_dims=2
    )


def conv_transpose2d_loops_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
) -> ConvGradients:
    """The loop version of ``conv_transpose2d_backward``."""
    return convolve_transpose_loops_backward(
        grad_output,
        input,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        padding_mode,
        spatial_dims=2,
    )


def conv_transpose3d_loops(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """The loop version of ``conv_transpose3d``."""
    return convolve_transpose_loops(
        input, weight, bias, stride, padding, output_padding, groups, dilation, padding_mode, spatial_dims=3
    )


def conv_transpose3d_loops_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
) -> ConvGradients:
    """The loop version of ``conv_transpose3d_backward``."""
    return convolve_transpose_loops_backward(
        grad_output,
        input,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        padding_mode,
        spatial_dims=3,
    )
