"""The gradients of a grouped convolution, vectorised: the backward pass the oracle checks.
Written once for 1, 2 and 3 spatial dims.

For the loss ``L = sum(y * grad_output)`` (so ``dL/dy = grad_output``, written ``dy``):

* ``grad_input`` is a **transposed grouped convolution** of ``dy`` with the weight
  (:func:`padded_input_gradient`): every output position ``i`` sends ``dy[i] * w[t]`` back to the
  padded input position ``i*s + t*d`` it read. Groups stay groups: input channel ``c`` of group
  ``g`` gets gradient only from the output channels of group ``g``. The result is the gradient of
  the *padded* input; every padded position is then folded back onto the input position it copied
  (:func:`fold_padding`), which is how reflect, replicate and circular padding route gradient.
  The same function *is* ``conv_transpose``'s forward pass (transposed.py).
* ``grad_weight`` is a **grouped correlation** of the (padded) input with ``dy``: each weight tap
  ``w[o, c, t]`` sums ``dy[n, o, i] * x_pad[n, g*C_g + c, i*s + t*d]``.
* ``grad_bias`` is ``dy`` summed over batch and space.

:func:`reference_impl.conv2d_loops_backward` (and its 1-d/3-d siblings) write the same sums one
index at a time.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np

from .algorithms.einsum import subscripts
from .algorithms.phases import crop_wide, grouped_flat_phases, wide_size
from .dtypes import bfloat16_in_float32
from .geometry import ConvGeometry, IntOrTuple, Padding, plan_conv
from .padding import pad_input, source_indices
from .phase_gradient import Crop, input_gradient_by_phases
from .vectorized import result_dtype, sliding_windows


class ConvGradients(NamedTuple):
    """``(grad_input, grad_weight, grad_bias)``; ``grad_bias`` is None for a layer without bias."""

    grad_input: np.ndarray
    grad_weight: np.ndarray
    grad_bias: np.ndarray | None


Conv2dGradients = ConvGradients  # the 2-d name, kept for the code that imports it


def fold_padding(grad_padded: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """Add each padded position's gradient onto the input position it was copied from.

    ``grad_padded`` is (N, C_in, *padded); the result is (N, C_in, *spatial). With zero padding
    the padded border copied nothing (index -1) and is dropped; with reflect/replicate/circular
    several padded positions copy one input position, and ``np.add.at`` sums them all (a plain
    fancy-index ``+=`` would keep only one).

    >>> geo = plan_conv((1, 1, 1, 3), (1, 1, 1, 1), None, padding=(0, 1), padding_mode="replicate", spatial_dims=2)
    >>> fold_padding(np.array([[[[1.0, 2, 3, 4, 5]]]]), geo).tolist()   # a | a b c | c
    [[[[3.0, 3.0, 9.0]]]]
    """
    sources = [
        source_indices(n, before, after, geo.padding_mode)  # per dim: input index copied, -1 = zero
        for n, (before, after) in zip(geo.spatial, geo.pad_pairs, strict=False)
    ]
    kept = [np.flatnonzero(s >= 0) for s in sources]
    if geo.padding_mode == "zeros":  # each kept position copies a distinct input position: a slice
        return grad_padded[
            (slice(None), slice(None), *(slice(k[0], k[-1] + 1) if k.size else slice(0, 0) for k in kept))
        ].copy()
    grad = np.zeros((*grad_padded.shape[:2], *geo.spatial), dtype=grad_padded.dtype)  # (N, C_in, *spatial)
    kept_values = grad_padded[(slice(None), slice(None)) + np.ix_(*kept)]  # (N, C_in, *kept)
    targets = np.ix_(*(s[k] for s, k in zip(sources, kept, strict=False)))
    # NumPy's stubs type ufunc.at's indices as one integer array; a tuple index is what it takes.
    np.add.at(grad, (slice(None), slice(None)) + targets, kept_values)  # type: ignore[arg-type]
    return grad


INPUT_GRADIENT_PATHS = ("phases", "scatter")


def choose_input_gradient_path(geo: ConvGeometry, dtype: np.dtype) -> str:
    """ "phases" where each phase's convolution takes the compiled path (few output channels per
    group: depthwise upsamplers), else "scatter" (one GEMM for all taps: many channels per group,
    where the phases' convolutions would each rebuild their windows). docs/performance.md."""
    from .algorithms import COMPILED_DTYPES, COMPILED_MAX_CHANNELS_PER_GROUP, numba_available

    compiled = numba_available() and np.dtype(dtype) in COMPILED_DTYPES
    few = geo.out_channels_per_group <= COMPILED_MAX_CHANNELS_PER_GROUP
    return "phases" if (few and compiled) or geo.out_channels_per_group == 1 else "scatter"


def padded_input_gradient(
    dy: np.ndarray, weight: np.ndarray, geo: ConvGeometry, path: str | None = None, crop: Crop | None = None
) -> np.ndarray:
    """The gradient of the padded input, (N, C_in, *padded), from dy (N, C_out, *dy_size); only
    the region ``crop`` of it when given (N, C_in, *cropped): the input itself for zero padding,
    a transposed convolution's output.

    ``dy_size`` may be shorter than ``geo.output_size`` (a transposed convolution's output_padding:
    the missing positions are zeros). Two ways, same sums (``path`` forces one, for the tests):
    :func:`input_gradient_by_phases` and :func:`input_gradient_by_scatter`.
    """
    path = choose_input_gradient_path(geo, dy.dtype) if path is None else path
    if path not in INPUT_GRADIENT_PATHS:
        raise ValueError(f"unknown input-gradient path {path!r}, should be one of {INPUT_GRADIENT_PATHS}")
    crop = [(0, n) for n in geo.padded_size] if crop is None else crop
    if path == "phases":
        return input_gradient_by_phases(dy, weight, geo, crop)
    return input_gradient_by_scatter(dy, weight, geo)[(slice(None), slice(None), *(slice(a, b) for a, b in crop))]


def input_gradient_by_scatter(dy: np.ndarray, weight: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """col2im: per group, one GEMM gives every tap's contribution of every dy element at once,
    (C_g*T, O_g) @ (O_g, positions); then each tap's plane is added into the padded-input
    positions it reaches, i*s + t*d (a strided slice per tap). What the loop version does, with
    the sums over output channels done by BLAS. Returns (N, C_in, *padded)."""
    G, C_g, O_g = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    batch, dy_size, taps = dy.shape[0], dy.shape[2:], math.prod(geo.kernel)
    # weight (C_out, C_g, *k) = (G, O_g, C_g, T) -> (G, C_g, T, O_g) -> (G, C_g*T, O_g)
    w = weight.reshape(G, O_g, C_g, taps).transpose(0, 2, 3, 1).reshape(G, C_g * taps, O_g)
    y = dy.reshape(batch, G, O_g, math.prod(dy_size))  # (N, G, O_g, positions)
    cols = w * y if O_g == 1 else np.matmul(w, y)  # (N, G, C_g*T, positions)
    cols = cols.reshape(batch, geo.in_channels, taps, *dy_size)  # (N, C_in, T, *dy_size)
    grad = np.zeros((batch, geo.in_channels, *geo.padded_size), dtype=dy.dtype)  # (N, C_in, *padded)
    if scatter_in_kernel(dy.dtype):
        return scatter_compiled(cols, grad, geo, dy_size)
    for t, tap in enumerate(itertools.product(*(range(k) for k in geo.kernel))):
        reached = tuple(
            slice(k * d, k * d + (n - 1) * s + 1, s)
            for k, d, n, s in zip(tap, geo.dilation, dy_size, geo.stride, strict=False)
        )
        grad[(slice(None), slice(None), *reached)] += cols[:, :, t]
    return grad


def scatter_in_kernel(dtype: np.dtype) -> bool:
    """Whether the scatter's strided adds run in the compiled col2im kernel (numba, float32/64)."""
    from .algorithms import COMPILED_DTYPES, numba_available

    return numba_available() and np.dtype(dtype) in COMPILED_DTYPES


def scatter_compiled(cols: np.ndarray, grad: np.ndarray, geo: ConvGeometry, dy_size: tuple[int, ...]) -> np.ndarray:
    """The taps' planes ``cols`` (N, C_in, T, *dy_size) added into ``grad`` (N, C_in, *padded) by the
    compiled col2im kernel, 1-d and 2-d as 3-d with leading dims of size 1. Returns ``grad``."""
    from .algorithms.compiled import kernel_for, threads_for

    lead = 3 - geo.spatial_dims
    kernel, size = (1,) * lead + tuple(geo.kernel), (1,) * lead + tuple(dy_size)
    stride, dilation = (1,) * lead + tuple(geo.stride), (1,) * lead + tuple(geo.dilation)
    cols3 = np.ascontiguousarray(cols).reshape(*cols.shape[:2], *kernel, *size)  # (N, C, kD, kH, kW, D, H, W)
    grad3 = grad.reshape(*grad.shape[:2], *((1,) * lead), *grad.shape[2:])  # (N, C, PD, PH, PW), a view
    # numba does not bounds-check: the furthest tap's last position must lie inside the padded size.
    for k, s, d, n, padded in zip(kernel, stride, dilation, size, grad3.shape[2:], strict=True):
        assert n == 0 or (n - 1) * s + (k - 1) * d < padded
    col2im_add = kernel_for("col2im_add", threads_for(cols3.size))  # (one addition per element of cols)
    col2im_add(cols3, np.array(stride, dtype=np.int64), np.array(dilation, dtype=np.int64), grad3)
    return grad


def weight_gradient(x: np.ndarray, dy: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """(N, C_in, *spatial) input and (N, C_out, *out) dy -> grad_weight (C_out, C_in/G, *k).

    Up to 64x64 channels per group: :func:`weight_gradient_by_taps`; more (AlexNet's): one einsum over
    the windows (a GEMM per group). See WEIGHT_GRADIENT_TAPS_MAX_CHANNELS."""
    if geo.in_channels_per_group * geo.out_channels_per_group <= WEIGHT_GRADIENT_TAPS_MAX_CHANNELS:
        return weight_gradient_by_taps(x, dy, geo)
    return weight_gradient_by_einsum(x, dy, geo)


# C_g * O_g at or below which the weight gradient loops over taps (each tap a batched (O_g, L) @ (L, C_g)
# product) rather than einsum over the windows (round 4, docs/performance.md, float64, ms taps/einsum):
# depthwise 7x7 10/237, ResNeXt 4x4 per group 12/63, 16x16 per group 0.9/224, groups 1 64x64 1.0/9.3;
# einsum ahead only on AlexNet's 48x128 (113/67) and 192x192 (44/30) per group.
WEIGHT_GRADIENT_TAPS_MAX_CHANNELS = 4096


def weight_gradient_by_taps(x: np.ndarray, dy: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """The weight gradient one kernel tap at a time: grad[g, o, c, t] = sum over n and output
    positions of dy[n, g, o, i] * x_tap(t)[n, g, c, i], where each tap reads a contiguous slice of a
    phase of the padded input (phases.py) and dy is laid on the same wide grid (its junk columns
    zero, so they add nothing). No window copy: input + output memory, one product per tap."""
    G, C_g, O_g, batch = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group, geo.batch
    flat, taps, length, phase_dims = grouped_flat_phases(pad_input(x, geo.pads, geo.padding_mode), geo)
    wide = np.zeros((batch, G, O_g, wide_size(geo, phase_dims)), dtype=dy.dtype)  # (N, G, O_g, out_0*Q_1*...)
    crop_wide(wide, geo, phase_dims)[...] = dy.reshape(batch, G, O_g, *geo.output_size)
    dy_wide = wide[..., :length]  # (N, G, O_g, L)
    grad = np.zeros((G, O_g, C_g, len(taps)), dtype=dy.dtype)  # (G, O_g, C_g, T)
    for t, tap in enumerate(taps):
        for n in range(batch):
            x_tap = flat[tap.phase][n, :, :, tap.offset : tap.offset + length]  # (G, C_g, L)
            grad[:, :, :, t] += np.matmul(dy_wide[n], x_tap.transpose(0, 2, 1))  # (G, O_g, L) @ (G, L, C_g)
    return grad.reshape(geo.out_channels, C_g, *geo.kernel)


def weight_gradient_by_einsum(x: np.ndarray, dy: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """:func:`weight_gradient` as one einsum over the sliding windows (a GEMM per group)."""
    G, C_g, O_g = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    windows = sliding_windows(pad_input(x, geo.pads, geo.padding_mode), geo)  # (N, C_in, *out, *k)
    windows = windows.reshape(geo.batch, G, C_g, *geo.output_size, *geo.kernel)  # (N, G, C_g, *out, *k)
    dy_grouped = dy.reshape(geo.batch, G, O_g, *geo.output_size)  # (N, G, O_g, *out)
    out, taps = subscripts(geo.spatial_dims)
    # Correlate within each group: the group axis g is shared by both operands, never summed.
    # (G, O_g, C_g, *k)
    grad: np.ndarray = np.einsum(f"ngo{out},ngc{out}{taps}->goc{taps}", dy_grouped, windows, optimize=True)
    return grad.reshape(geo.out_channels, C_g, *geo.kernel)


def plan_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: IntOrTuple,
    padding: Padding,
    dilation: IntOrTuple,
    groups: int,
    padding_mode: str,
    spatial_dims: int = 2,
) -> tuple[ConvGeometry, np.dtype]:
    """The forward's checks plus grad_output's shape; the geometry and the dtype to compute in.
    Shared by the loop and the vectorised backward, so both refuse the same arguments."""
    geo = plan_conv(
        np.shape(input),
        np.shape(weight),
        None if bias is None else np.shape(bias),
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        spatial_dims=spatial_dims,
    )
    if tuple(np.shape(grad_output)) != geo.output_shape:
        raise ValueError(
            f"grad_output has shape {list(np.shape(grad_output))}, the output's is {list(geo.output_shape)}"
        )
    return geo, result_dtype(input, weight, grad_output, bias)


@bfloat16_in_float32
def convolve_backward(
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
    """Gradients of ``sum(convolve(input, weight, bias, ...) * grad_output)`` w.r.t. input, weight, bias."""
    input, weight, grad_output = np.asarray(input), np.asarray(weight), np.asarray(grad_output)
    geo, dtype = plan_backward(
        grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims
    )
    x = input.astype(dtype, copy=False).reshape(geo.batched_input_shape)  # (N, C_in, *spatial)
    dy = grad_output.astype(dtype, copy=False).reshape(
        geo.batch, geo.out_channels, *geo.output_size
    )  # (N, C_out, *out)
    w = weight.astype(dtype, copy=False)
    if geo.padding_mode == "zeros":  # the zero border copied nothing: compute the input's region only
        inside = [(before, before + n) for (before, _), n in zip(geo.pad_pairs, geo.spatial, strict=False)]
        grad_input = padded_input_gradient(dy, w, geo, crop=inside)  # (N, C_in, *spatial)
    else:
        grad_input = fold_padding(padded_input_gradient(dy, w, geo), geo)  # (N, C_in, *spatial)
    grad_weight = weight_gradient(x, dy, geo)  # (C_out, C_g, *k)
    grad_bias = None if bias is None else dy.sum(axis=(0, *range(2, 2 + spatial_dims)))  # (C_out,)
    return ConvGradients(
        np.ascontiguousarray(grad_input).reshape(input.shape).astype(dtype, copy=False),
        grad_weight.astype(dtype, copy=False),
        grad_bias,
    )


def conv1d_backward(
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
    """:func:`convolve_backward` for ``conv1d``."""
    return convolve_backward(
        grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=1
    )


def conv2d_backward(
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
    return convolve_backward(
        grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=2
    )


def conv3d_backward(
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
    """:func:`convolve_backward` for ``conv3d``."""
    return convolve_backward(
        grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=3
    )
