"""Strides and kernel taps turned into plain offsets into a flat, contiguous array; any number of
spatial dimensions, written once (the 2-d case is spelled out here because it is easiest to picture).

A kernel tap (p, q) reads x_pad[i*s_h + p*d_h, j*s_w + q*d_w] for every output (i, j). Split the
padded image into its s_h*s_w *phases* (polyphase decomposition):

    phase[a, b][u, v] = x_pad[u*s_h + a, v*s_w + b]

and the tap becomes a stride-1 read of one phase at a fixed offset:

    x_pad[i*s_h + p*d_h, j*s_w + q*d_w] = phase[(p*d_h) % s_h, (q*d_w) % s_w][i + p*d_h//s_h, j + q*d_w//s_w]

With each phase stored row-major with shape Q = (H_q, W_q), output (i, j) of tap t sits at flat
position ``offset_t + i*W_q + j``: one contiguous slice of length L = (H_out-1)*W_q + W_out covers
the whole output for that tap. The result lives on a "wide" grid (H_out, W_q) whose last
W_q - W_out columns are junk that :func:`crop_wide` drops. Contiguous slices are what makes the
tap loop fast (long inner loops) and what lets BLAS read taps without a copy.

In d dimensions the same holds with row-major strides of Q: offset_t = sum_k (t_k*d_k // s_k) *
stride_k(Q), L = 1 + sum_k (out_k - 1) * stride_k(Q), and the wide grid is (out_0, Q_1, ..., Q_{d-1}).
For stride 1 there is one phase and it is x_pad itself: no copy at all.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..geometry import ConvGeometry


@dataclass(frozen=True)
class Tap:
    """Kernel position (one index per spatial dim) and where its reads start: phase, flat offset."""

    position: tuple[int, ...]
    phase: tuple[int, ...]
    offset: int


def row_major_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Element strides of a C-contiguous array: (W_q, 1) for (H_q, W_q)."""
    return tuple(math.prod(shape[k + 1 :]) for k in range(len(shape)))


def phase_shape(padded: tuple[int, ...], stride: tuple[int, ...]) -> tuple[int, ...]:
    """Q: each padded size rounded up to a multiple of its stride, divided by it."""
    return tuple(-(-size // s) for size, s in zip(padded, stride, strict=False))


def split_phases(x_padded: np.ndarray, stride: tuple[int, ...]) -> np.ndarray:
    """(N, C, *padded) -> (*stride, N, C, *Q), contiguous; a view when every stride is 1.

    The padded sizes are first rounded up to multiples of the stride with zeros; those extra
    elements are only ever read by junk positions of the wide grid (or never).
    """
    n, c, *padded = x_padded.shape
    if all(s == 1 for s in stride):
        return np.ascontiguousarray(x_padded)[(None,) * len(stride)]  # (1, ..., 1, N, C, *padded)
    q = phase_shape(tuple(padded), stride)
    # Filled phase by phase rather than via a rounded-up copy + transpose: one input-sized
    # buffer instead of two (peak memory on MobileNetV2's strided layer: 2.3x torch's -> 1.5x).
    phases = np.zeros((*stride, n, c, *q), dtype=x_padded.dtype)  # (*s, N, C, *Q)
    for phase in itertools.product(*(range(s) for s in stride)):
        part = x_padded[
            (slice(None), slice(None), *(slice(a, None, s) for a, s in zip(phase, stride, strict=False)))
        ]  # (N, C, <=Q)
        phases[phase][(slice(None), slice(None), *(slice(0, size) for size in part.shape[2:]))] = part
    return phases


def kernel_taps(geo: ConvGeometry, phase_dims: tuple[int, ...]) -> list[Tap]:
    """Every kernel position (row-major, the weight's own order) with its phase and flat offset."""
    flat_strides = row_major_strides(phase_dims)
    taps = []
    for position in itertools.product(*(range(k) for k in geo.kernel)):
        reach = [t * d for t, d in zip(position, geo.dilation, strict=False)]  # how far past the window's start
        taps.append(
            Tap(
                position,
                tuple(r % s for r, s in zip(reach, geo.stride, strict=False)),
                sum(r // s * step for r, s, step in zip(reach, geo.stride, flat_strides, strict=False)),
            )
        )
    return taps


def wide_length(geo: ConvGeometry, phase_dims: tuple[int, ...]) -> int:
    """L = 1 + sum_k (out_k - 1)*stride_k(Q): the flat span from the first output to the last
    (2-d: (H_out-1)*W_q + W_out)."""
    return 1 + sum((out - 1) * step for out, step in zip(geo.output_size, row_major_strides(phase_dims), strict=False))


def wide_size(geo: ConvGeometry, phase_dims: tuple[int, ...]) -> int:
    """Elements of the wide grid (out_0, Q_1, ..., Q_{d-1}), which holds L and the junk after it."""
    return geo.output_size[0] * math.prod(phase_dims[1:])


def crop_wide(out_wide: np.ndarray, geo: ConvGeometry, phase_dims: tuple[int, ...]) -> np.ndarray:
    """(..., out_0*Q_1*...*Q_{d-1}) wide grid -> (..., *output_size): drop the junk (a view)."""
    grid = out_wide.reshape(*out_wide.shape[:-1], geo.output_size[0], *phase_dims[1:])  # (..., out_0, Q_1, ...)
    return grid[(Ellipsis, slice(None)) + tuple(slice(0, out) for out in geo.output_size[1:])]


def grouped_flat_phases(x_padded: np.ndarray, geo: ConvGeometry) -> tuple[np.ndarray, list[Tap], int, tuple[int, ...]]:
    """What the tap-based algorithms (taps, im2col) start from: the padded input split into
    phases with the channel axis as (G, C_g) and each phase image flattened, plus its taps, the
    wide length L and the phase shape Q.

    Returns ``flat`` (*stride, N, G, C_g, prod(Q)), ``taps``, ``L``, ``Q``.
    """
    N, G, C_g = geo.batch, geo.groups, geo.in_channels_per_group
    phases = split_phases(x_padded, geo.stride)  # (*s, N, C_in, *Q)
    d = geo.spatial_dims
    dims = tuple(phases.shape[-d:])
    flat = phases.reshape(*phases.shape[:d], N, G, C_g, math.prod(dims))  # (*s, N, G, C_g, prod(Q))
    return flat, kernel_taps(geo, dims), wide_length(geo, dims), dims
