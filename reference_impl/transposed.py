"""The grouped transposed convolution, for 1, 2 and 3 spatial dims, built on the convolution's
input-gradient (backward.py): ``conv_transpose(x, w)`` *is* the gradient, with respect to its
input, of the convolution with weight ``w`` whose output is ``x``.

That reading explains every oddity of the op:

* the weight is ``(in_channels, out_channels/groups, *k)``: it is the convolution's own weight,
  whose "output channels" (axis 0) are the transposed op's inputs. ``W[c, j]`` belongs to input
  channel c's group ``g = c // (in/groups)`` and feeds output channel ``g*out/groups + j``;
* output size ``(S - 1)*s - 2p + d*(k - 1) + output_padding + 1`` is the convolution's input size;
  ``padding`` crops the convolution's padded border away again;
* ``output_padding`` adds positions at the END of each dimension (the convolution's input rows
  that its last window did not reach when the stride skipped them); only the weights' reach can
  give them a value, and it must be smaller than the stride or the dilation.

Backward: the gradient w.r.t. the input is the *forward* convolution of ``grad_output`` with the
same weight; the weight's gradient is the convolution's weight gradient with the roles swapped
(``grad_output`` as its input, our input as its output gradient).
"""

from __future__ import annotations

import numpy as np

from .backward import ConvGradients, padded_input_gradient, weight_gradient
from .dtypes import bfloat16_in_float32
from .geometry import IntOrTuple, TransposedGeometry, plan_conv_transpose
from .vectorized import convolve_planned, result_dtype


def crop_padding(grad_padded: np.ndarray, geo: TransposedGeometry) -> np.ndarray:
    """(N, C, *padded) -> (N, C, *output_size): drop the ``padding`` border (zeros padding only)."""
    return grad_padded[
        (
            slice(None),
            slice(None),
            *(slice(before, before + n) for (before, _), n in zip(geo.conv.pad_pairs, geo.output_size, strict=False)),
        )
    ]


def extend_to(x: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """(N, C, *S) zero-extended at the end of each spatial dim to (N, C, *size): output_padding's reach."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    out = np.zeros((*x.shape[:2], *size), dtype=x.dtype)
    out[(slice(None), slice(None), *(slice(0, n) for n in x.shape[2:]))] = x
    return out


@bfloat16_in_float32
def convolve_transpose(
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
    """Grouped transposed convolution over ``spatial_dims`` spatial dims (torch's argument order).

    The seed experiment transposed: weight rows are INPUT channels, so output 0 (group 0's first)
    is 0.1*w[0, 0] + 1*w[1, 0] = 0.1*1 + 1*3 = 3.1.

    >>> x = np.array([0.1, 1, 10, 100, 1000, 10000]).reshape(1, 6, 1, 1)
    >>> w = np.arange(1, 13.0).reshape(6, 2, 1, 1)
    >>> convolve_transpose(x, w, groups=3, spatial_dims=2).ravel().round(6).tolist()
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
    x = input.astype(dtype, copy=False).reshape(geo.conv.batch, geo.in_channels, *geo.input_size)  # (N, C_in, *S)
    inside = [
        (before, before + n) for (before, _), n in zip(geo.conv.pad_pairs, geo.output_size, strict=False)
    ]  # padding cut off
    out = padded_input_gradient(x, weight.astype(dtype, copy=False), geo.conv, crop=inside)  # (N, C_out, *S_out)
    if bias is not None:
        out = out + np.asarray(bias, dtype=dtype).reshape(-1, *(1,) * spatial_dims)  # (C_out, 1, ...) broadcast
    return np.ascontiguousarray(out, dtype=dtype).reshape(geo.output_shape)


def plan_transpose_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: IntOrTuple,
    padding: IntOrTuple,
    output_padding: IntOrTuple,
    groups: int,
    dilation: IntOrTuple,
    padding_mode: str,
    spatial_dims: int,
) -> tuple[TransposedGeometry, np.dtype]:
    """The forward's checks plus grad_output's shape; shared by the loop and the vectorised backward."""
    geo = plan_conv_transpose(
        np.shape(input),
        np.shape(weight),
        None if bias is None else np.shape(bias),
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        padding_mode,
        spatial_dims=spatial_dims,
    )
    if tuple(np.shape(grad_output)) != geo.output_shape:
        raise ValueError(
            f"grad_output has shape {list(np.shape(grad_output))}, the output's is {list(geo.output_shape)}"
        )
    return geo, result_dtype(input, weight, grad_output, bias)


@bfloat16_in_float32
def convolve_transpose_backward(
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
    """Gradients of ``sum(convolve_transpose(input, weight, bias, ...) * grad_output)``.

    >>> x = np.array([0.1, 1, 10, 100, 1000, 10000]).reshape(1, 6, 1, 1)
    >>> w = np.arange(1, 13.0).reshape(6, 2, 1, 1)
    >>> grads = convolve_transpose_backward(np.ones((1, 6, 1, 1)), x, w, groups=3, spatial_dims=2)
    >>> grads.grad_input.ravel().tolist()            # each input feeds the two outputs of its group
    [3.0, 7.0, 11.0, 15.0, 19.0, 23.0]
    """
    input, weight, grad_output = np.asarray(input), np.asarray(weight), np.asarray(grad_output)
    geo, dtype = plan_transpose_backward(
        grad_output, input, weight, bias, stride, padding, output_padding, groups, dilation, padding_mode, spatial_dims
    )
    conv = geo.conv
    dy = grad_output.astype(dtype, copy=False).reshape(conv.batched_input_shape)  # (N, C_out, *S_out)
    x = input.astype(dtype, copy=False).reshape(conv.batch, geo.in_channels, *geo.input_size)  # (N, C_in, *S)
    w = weight.astype(dtype, copy=False)
    # The forward convolution reaches conv.output_size >= S positions; the extra ones are what
    # output_padding added, they feed no input element.
    grad_input = convolve_planned(dy, w, conv)[
        (slice(None), slice(None), *(slice(0, n) for n in geo.input_size))
    ]  # (N, C_in, *S)
    grad_weight = weight_gradient(dy, extend_to(x, conv.output_size), conv)  # (C_in, C_out/G, *k)
    grad_bias = None if bias is None else dy.sum(axis=(0, *range(2, 2 + spatial_dims)))  # (C_out,)
    return ConvGradients(
        np.ascontiguousarray(grad_input).reshape(input.shape).astype(dtype, copy=False),
        grad_weight.astype(dtype, copy=False),
        grad_bias,
    )


def conv_transpose1d(
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
    """``torch.nn.functional.conv_transpose1d`` over NumPy arrays: weight (C_in, C_out/G, k),
    input (N, C_in, L) or unbatched (C_in, L). ``padding_mode``: "zeros" only, refused otherwise as
    torch refuses it (an argument of nn.ConvTranspose{1,2,3}d). See :func:`convolve_transpose`."""
    return convolve_transpose(
        input, weight, bias, stride, padding, output_padding, groups, dilation, padding_mode, spatial_dims=1
    )


def conv_transpose1d_backward(
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
    """(grad_input, grad_weight, grad_bias) of ``sum(conv_transpose1d(...) * grad_output)``."""
    return convolve_transpose_backward(
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


def conv_transpose2d(
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
    """``torch.nn.functional.conv_transpose2d`` over NumPy arrays: weight (C_in, C_out/G, kH, kW),
    input (N, C_in, H, W) or unbatched (C_in, H, W). ``padding_mode``: "zeros" only, refused otherwise as
    torch refuses it (an argument of nn.ConvTranspose{1,2,3}d). See :func:`convolve_transpose`."""
    return convolve_transpose(
        input, weight, bias, stride, padding, output_padding, groups, dilation, padding_mode, spatial_dims=2
    )


def conv_transpose2d_backward(
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
    """(grad_input, grad_weight, grad_bias) of ``sum(conv_transpose2d(...) * grad_output)``."""
    return convolve_transpose_backward(
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


def conv_transpose3d(
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
    """``torch.nn.functional.conv_transpose3d`` over NumPy arrays: weight (C_in, C_out/G, kD, kH, kW),
    input (N, C_in, D, H, W) or unbatched (C_in, D, H, W). ``padding_mode``: "zeros" only, refused otherwise as
    torch refuses it (an argument of nn.ConvTranspose{1,2,3}d). See :func:`convolve_transpose`."""
    return convolve_transpose(
        input, weight, bias, stride, padding, output_padding, groups, dilation, padding_mode, spatial_dims=3
    )


def conv_transpose3d_backward(
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
    """(grad_input, grad_weight, grad_bias) of ``sum(conv_transpose3d(...) * grad_output)``."""
    return convolve_transpose_backward(
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
