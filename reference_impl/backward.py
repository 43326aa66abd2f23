"""The gradients of a grouped convolution, vectorised: the backward pass the oracle checks.

For the loss ``L = sum(y * grad_output)`` (so ``dL/dy = grad_output``, written ``dy``):

* ``grad_input`` is a **transposed grouped convolution** of ``dy`` with the weight: spread ``dy``
  back over the input by inserting ``stride - 1`` zeros between its elements, pad it by the
  dilated kernel span minus one, and correlate it with the weight flipped in space and with its
  two channel axes swapped *within each group*. Groups stay groups: input channel ``c`` of group
  ``g`` gets gradient only from the output channels of group ``g``. The result is the gradient of
  the *padded* input; every padded position is then folded back onto the input position it copied
  (:func:`fold_padding`), which is how reflect, replicate and circular padding route gradient.
* ``grad_weight`` is a **grouped correlation** of the (padded) input with ``dy``: each weight tap
  ``w[o, c, p, q]`` sums ``dy[n, o, i, j] * x_pad[n, g*C_g + c, i*s + p*d, j*s + q*d]``.
* ``grad_bias`` is ``dy`` summed over batch and space.

:func:`reference_impl.conv2d_loops_backward` writes the same sums one index at a time.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .geometry import ConvGeometry, IntOrPair, Padding, plan_conv2d
from .padding import pad_input, source_indices
from .vectorized import conv2d, sliding_windows


class Conv2dGradients(NamedTuple):
    """``(grad_input, grad_weight, grad_bias)``; ``grad_bias`` is None for a layer without bias."""

    grad_input: np.ndarray
    grad_weight: np.ndarray
    grad_bias: np.ndarray | None


def fold_padding(grad_padded: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """Add each padded position's gradient onto the input position it was copied from.

    ``grad_padded`` is (N, C_in, H_pad, W_pad); the result is (N, C_in, H, W). With zero padding
    the padded border copied nothing (index -1) and is dropped; with reflect/replicate/circular
    several padded positions copy one input position, and ``np.add.at`` sums them all (a plain
    fancy-index ``+=`` would keep only one).

    >>> geo = plan_conv2d((1, 1, 1, 3), (1, 1, 1, 1), None, padding=(0, 1), padding_mode="replicate")
    >>> fold_padding(np.array([[[[1.0, 2, 3, 4, 5]]]]), geo).tolist()   # a | a b c | c
    [[[[3.0, 3.0, 9.0]]]]
    """
    top, bottom, left, right = geo.pads
    rows = source_indices(geo.height, top, bottom, geo.padding_mode)  # (H_pad,): input row copied, -1 = zero
    cols = source_indices(geo.width, left, right, geo.padding_mode)   # (W_pad,)
    kept_rows, kept_cols = np.flatnonzero(rows >= 0), np.flatnonzero(cols >= 0)
    grad = np.zeros((grad_padded.shape[0], grad_padded.shape[1], geo.height, geo.width), dtype=grad_padded.dtype)
    kept = grad_padded[:, :, kept_rows[:, None], kept_cols[None, :]]  # (N, C_in, H_kept, W_kept)
    np.add.at(grad, (slice(None), slice(None), rows[kept_rows][:, None], cols[kept_cols][None, :]), kept)
    return grad


def transposed_grouped_conv(grad_output: np.ndarray, weight: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """The gradient of the padded input, (N, C_in, H_pad, W_pad), as a stride-1 grouped convolution.

    Written with the forward :func:`conv2d` itself: the transposed convolution *is* a convolution
    of the zero-stuffed, fully padded ``dy`` with the flipped, per-group-transposed weight.
    """
    G, C_g, O_g = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    (kernel_h, kernel_w), (stride_h, stride_w) = geo.kernel, geo.stride
    (span_h, span_w), (padded_h, padded_w) = geo.effective_kernel, geo.padded_size
    height_out, width_out = geo.output_size
    batch = grad_output.shape[0]

    # Zero-stuff: dy[i, j] sits where output (i, j)'s window starts in the padded input.
    reached_h, reached_w = (height_out - 1) * stride_h + span_h, (width_out - 1) * stride_w + span_w
    # Pad by span - 1 on both sides (a "full" correlation), plus the padded rows/columns past the
    # last window, which no output read (their gradient is zero).
    full = np.zeros((batch, geo.out_channels, padded_h + span_h - 1, padded_w + span_w - 1), dtype=grad_output.dtype)
    full[:, :, span_h - 1 : span_h - 1 + reached_h - span_h + 1 : stride_h,
               span_w - 1 : span_w - 1 + reached_w - span_w + 1 : stride_w] = grad_output  # (N, C_out, H_full, W_full)

    # Weight (C_out, C_g, kH, kW) -> (G, O_g, C_g, kH, kW) -> swap the channel axes within each
    # group -> (G, C_g, O_g, kH, kW) -> flip in space -> (C_in, O_g, kH, kW): a layer from C_out
    # to C_in channels with the same groups.
    flipped = weight.reshape(G, O_g, C_g, kernel_h, kernel_w).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    flipped = flipped.reshape(geo.in_channels, O_g, kernel_h, kernel_w)
    return conv2d(full, flipped, None, 1, 0, geo.dilation, G)  # (N, C_in, H_pad, W_pad)


def plan_backward(grad_output: np.ndarray, input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                  stride: IntOrPair, padding: Padding, dilation: IntOrPair, groups: int,
                  padding_mode: str) -> tuple[ConvGeometry, np.dtype]:
    """The forward's checks plus grad_output's shape; the geometry and the dtype to compute in.
    Shared by the loop and the vectorised backward, so both refuse the same arguments."""
    geo = plan_conv2d(np.shape(input), np.shape(weight), None if bias is None else np.shape(bias),
                      stride, padding, dilation, groups, padding_mode)
    if tuple(np.shape(grad_output)) != geo.output_shape:
        raise ValueError(f"grad_output has shape {list(np.shape(grad_output))}, the output's is {list(geo.output_shape)}")
    return geo, np.result_type(input, weight, grad_output, *(() if bias is None else (np.asarray(bias),)))


def conv2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Conv2dGradients:
    """Gradients of ``sum(conv2d(input, weight, bias, ...) * grad_output)`` w.r.t. input, weight, bias.

    The seed experiment backwards: with ``dy = 1`` a 1x1 weight's gradient is the input its
    output channel reads, so each row of ``grad_weight`` shows the group: outputs 0-1 saw inputs
    0.1 and 1, outputs 2-3 saw 10 and 100. ``grad_input`` sums the weights that read each input.

    >>> x = np.array([0.1, 1, 10, 100, 1000, 10000]).reshape(1, 6, 1, 1)
    >>> w = np.arange(1, 13.0).reshape(6, 2, 1, 1)
    >>> grads = conv2d_backward(np.ones((1, 6, 1, 1)), x, w, groups=3)
    >>> grads.grad_weight.reshape(6, 2).tolist()[:4]
    [[0.1, 1.0], [0.1, 1.0], [10.0, 100.0], [10.0, 100.0]]
    >>> grads.grad_input.ravel().tolist()          # 1+3, 2+4, 5+7, 6+8, 9+11, 10+12
    [4.0, 6.0, 12.0, 14.0, 20.0, 22.0]
    """
    input, weight, grad_output = np.asarray(input), np.asarray(weight), np.asarray(grad_output)
    geo, dtype = plan_backward(grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode)
    G, C_g, O_g = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    kernel_h, kernel_w = geo.kernel
    height_out, width_out = geo.output_size

    x = input.astype(dtype, copy=False).reshape(geo.batch, geo.in_channels, geo.height, geo.width)
    dy = grad_output.astype(dtype, copy=False).reshape(geo.batch, geo.out_channels, height_out, width_out)
    w = weight.astype(dtype, copy=False)

    grad_input = fold_padding(transposed_grouped_conv(dy, w, geo), geo)  # (N, C_in, H, W)

    windows = sliding_windows(pad_input(x, geo.pads, geo.padding_mode), geo)  # (N, C_in, H_out, W_out, kH, kW)
    windows = windows.reshape(geo.batch, G, C_g, height_out, width_out, kernel_h, kernel_w)
    dy_grouped = dy.reshape(geo.batch, G, O_g, height_out, width_out)       # (N, G, O_g, H_out, W_out)
    # Correlate within each group: the group axis g is shared by both operands, never summed.
    grad_weight = np.einsum("ngohw,ngchwpq->gocpq", dy_grouped, windows, optimize=True)  # (G, O_g, C_g, kH, kW)
    grad_weight = grad_weight.reshape(geo.out_channels, C_g, kernel_h, kernel_w)

    grad_bias = None if bias is None else dy.sum(axis=(0, 2, 3))              # (C_out,)
    return Conv2dGradients(grad_input.reshape(input.shape).astype(dtype, copy=False),
                           grad_weight.astype(dtype, copy=False), grad_bias)
