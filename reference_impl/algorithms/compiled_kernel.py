"""The numba kernel behind algorithms/compiled.py (see there for the why); imports numba.

Kept in its own module so that importing reference_impl never imports numba: compiled.py
imports this on the first "compiled" call (and picks numba's threading layer before that).
numba caches the machine code in __pycache__/compiled_kernel.*.nbi / *.nbc next to this file.
"""

from __future__ import annotations

import numba
import numpy as np

TAPS_PER_PASS = 3  # taps of one kernel row added per pass over the accumulator (see compiled.py)


@numba.njit(cache=True)
def _phase_span(pad_before: int, phase: int, stride: int, size: int, phase_length: int) -> tuple[int, int]:
    """The range [first, end) of phase positions u whose padded position u*stride + phase holds
    an input element (0 <= u*stride + phase - pad_before < size); the rest is zero padding.
    Multiplications only: a division per element (runtime stride) cost more than the copy."""
    first = max(0, -(-(pad_before - phase) // stride))  # ceil((pad - phase) / stride)
    end = min(phase_length, (size - 1 + pad_before - phase) // stride + 1)
    return first, max(first, end)


@numba.njit(parallel=True, cache=True, fastmath=False)
def direct_conv(
    x: np.ndarray,
    weight: np.ndarray,
    pad_top: int,
    pad_left: int,
    stride_h: int,
    stride_w: int,
    dilation_h: int,
    dilation_w: int,
    phase_height: int,
    phase_width: int,
    out: np.ndarray,
) -> None:
    """x (N, C_in, H, W), weight (C_out, C_g, kH, kW) -> out (N, C_out, H_out, W_out), every element written.

    ``x`` is zero-padded by (pad_top, pad_left) here, on the fly (bottom/right padding is what
    lies past x in the zeroed phase buffer); pass an already padded x with zero pads for the
    other padding modes. Each phase is (H_q, W_q) = (phase_height, phase_width).
    """
    batch, in_channels, height, width = x.shape
    out_channels, channels_per_group, kernel_h, kernel_w = weight.shape
    groups = in_channels // channels_per_group
    out_per_group = out_channels // groups
    height_out, width_out = out.shape[2], out.shape[3]
    phase_size = phase_height * phase_width
    length = (height_out - 1) * phase_width + width_out  # the wide plane, see phases.wide_length
    for n_g in numba.prange(batch * groups):
        n, g = n_g // groups, n_g % groups
        # This group's input channels, zero-padded and split into phases, in a buffer that
        # stays in L2 while every output channel of the group reads it:
        # phase[c, a, b][u*W_q + v] = x_pad[n, g*C_g + c, u*s_h + a, v*s_w + b]
        phases = np.zeros(
            (channels_per_group, stride_h, stride_w, phase_size), dtype=out.dtype
        )  # (C_g, s_h, s_w, H_q*W_q)
        for c in range(channels_per_group):
            channel = g * channels_per_group + c
            for a in range(stride_h):
                u_first, u_end = _phase_span(pad_top, a, stride_h, height, phase_height)
                for b in range(stride_w):
                    v_first, v_end = _phase_span(pad_left, b, stride_w, width, phase_width)
                    for u in range(u_first, u_end):
                        row = u * stride_h + a - pad_top
                        for v in range(v_first, v_end):  # contiguous writes; contiguous reads for s_w = 1
                            phases[c, a, b, u * phase_width + v] = x[n, channel, row, v * stride_w + b - pad_left]
        acc = np.empty(length, dtype=out.dtype)  # (L,): one output plane on the wide grid
        for o_g in range(out_per_group):
            o = g * out_per_group + o_g
            acc[:] = 0
            for c in range(channels_per_group):
                for p in range(kernel_h):
                    # Padded row i*s_h + p*d_h is row i + p*d_h//s_h of row-phase (p*d_h) % s_h.
                    row_phase, row_offset = (p * dilation_h) % stride_h, (p * dilation_h) // stride_h * phase_width
                    q = 0
                    while q < kernel_w:
                        taps_now = min(TAPS_PER_PASS, kernel_w - q)
                        # Tap (p, q) reads one flat slice of one phase, length L (see phases.py).
                        start0 = row_offset + (q * dilation_w) // stride_w
                        x0 = phases[c, row_phase, (q * dilation_w) % stride_w, start0 : start0 + length]
                        w0 = weight[o, c, p, q]
                        if taps_now == 1:
                            for j in range(length):
                                acc[j] += w0 * x0[j]
                        else:
                            start1 = row_offset + ((q + 1) * dilation_w) // stride_w
                            x1 = phases[c, row_phase, ((q + 1) * dilation_w) % stride_w, start1 : start1 + length]
                            w1 = weight[o, c, p, q + 1]
                            if taps_now == 2:
                                for j in range(length):
                                    acc[j] = (acc[j] + w0 * x0[j]) + w1 * x1[j]
                            else:
                                start2 = row_offset + ((q + 2) * dilation_w) // stride_w
                                x2 = phases[c, row_phase, ((q + 2) * dilation_w) % stride_w, start2 : start2 + length]
                                w2 = weight[o, c, p, q + 2]
                                for j in range(length):
                                    acc[j] = ((acc[j] + w0 * x0[j]) + w1 * x1[j]) + w2 * x2[j]
                        q += taps_now
            for i in range(height_out):  # crop the wide grid's junk columns W_out..W_q-1
                out[n, o, i, :] = acc[i * phase_width : i * phase_width + width_out]
