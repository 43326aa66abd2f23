"""Strides and kernel taps turned into plain offsets into a flat, contiguous array.

A kernel tap (p, q) reads x_pad[i*s_h + p*d_h, j*s_w + q*d_w] for every output (i, j). Split the
padded image into its s_h*s_w *phases* (polyphase decomposition):

    phase[a, b][u, v] = x_pad[u*s_h + a, v*s_w + b]

and the tap becomes a stride-1 read of one phase at a fixed offset:

    x_pad[i*s_h + p*d_h, j*s_w + q*d_w] = phase[(p*d_h) % s_h, (q*d_w) % s_w][i + p*d_h//s_h, j + q*d_w//s_w]

With each phase stored row-major with width W_q, output (i, j) of tap t sits at flat position
``offset_t + i*W_q + j``: one contiguous slice of length L = (H_out-1)*W_q + W_out covers the
whole output for that tap. The result lives on a "wide" grid (H_out, W_q) whose last
W_q - W_out columns are junk that :func:`crop_wide` drops. Contiguous slices are what makes the
tap loop fast (long inner loops) and what lets BLAS read taps without a copy.

For stride 1 there is one phase and it is x_pad itself: no copy at all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import ConvGeometry


@dataclass(frozen=True)
class Tap:
    """Kernel position (p, q) and where its reads start: phase (a, b), flat offset into it."""

    p: int
    q: int
    phase: tuple[int, int]
    offset: int


def split_phases(x_padded: np.ndarray, stride: tuple[int, int]) -> np.ndarray:
    """(N, C, H_pad, W_pad) -> (s_h, s_w, N, C, H_q, W_q), contiguous; a view when stride is 1.

    H_pad and W_pad are first rounded up to multiples of the stride with zeros; those extra
    rows/columns are only ever read by junk columns of the wide grid (or never).
    """
    s_h, s_w = stride
    n, c, h, w = x_padded.shape
    h_q, w_q = -(-h // s_h), -(-w // s_w)
    if (s_h, s_w) == (1, 1):
        return np.ascontiguousarray(x_padded)[None, None]             # (1, 1, N, C, H_pad, W_pad)
    # Filled phase by phase rather than via a rounded-up copy + transpose: one input-sized
    # buffer instead of two (peak memory on MobileNetV2's strided layer: 2.3x torch's -> 1.5x).
    phases = np.zeros((s_h, s_w, n, c, h_q, w_q), dtype=x_padded.dtype)  # (s_h, s_w, N, C, H_q, W_q)
    for a in range(s_h):
        for b in range(s_w):
            phase = x_padded[:, :, a::s_h, b::s_w]                     # (N, C, <=H_q, <=W_q)
            phases[a, b, :, :, : phase.shape[2], : phase.shape[3]] = phase
    return phases


def kernel_taps(geo: ConvGeometry, phase_width: int) -> list[Tap]:
    """Every (p, q) of the kernel with its phase and its flat offset (row-major, width W_q)."""
    (s_h, s_w), (d_h, d_w) = geo.stride, geo.dilation
    kernel_h, kernel_w = geo.kernel
    return [
        Tap(p, q, ((p * d_h) % s_h, (q * d_w) % s_w), (p * d_h // s_h) * phase_width + q * d_w // s_w)
        for p in range(kernel_h)
        for q in range(kernel_w)
    ]


def wide_length(geo: ConvGeometry, phase_width: int) -> int:
    """L = (H_out-1)*W_q + W_out: the flat span from output (0, 0) to (H_out-1, W_out-1)."""
    height_out, width_out = geo.output_size
    return (height_out - 1) * phase_width + width_out


def crop_wide(out_wide: np.ndarray, geo: ConvGeometry, phase_width: int) -> np.ndarray:
    """(..., H_out*W_q) wide grid -> (..., H_out, W_out): drop the junk columns (a view)."""
    height_out, width_out = geo.output_size
    return out_wide.reshape(*out_wide.shape[:-1], height_out, phase_width)[..., :width_out]


def grouped_flat_phases(x_padded: np.ndarray, geo: ConvGeometry) -> tuple[np.ndarray, list[Tap], int, int]:
    """What the tap-based algorithms (taps, im2col) start from: the padded input split into
    phases with the channel axis as (G, C_g) and each phase image flattened, plus its taps, the
    wide length L and the phase width W_q.

    Returns ``flat`` (s_h, s_w, N, G, C_g, H_q*W_q), ``taps``, ``L``, ``W_q``.
    """
    N, G, C_g = geo.batch, geo.groups, geo.in_channels_per_group
    phases = split_phases(x_padded, geo.stride)                 # (s_h, s_w, N, C_in, H_q, W_q)
    phase_width = phases.shape[-1]
    flat = phases.reshape(*phases.shape[:2], N, G, C_g, phases.shape[-2] * phase_width)    # (s_h, s_w, N, G, C_g, H_q*W_q)
    return flat, kernel_taps(geo, phase_width), wide_length(geo, phase_width), phase_width
