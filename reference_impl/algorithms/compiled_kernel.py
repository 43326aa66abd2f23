"""The numba kernel behind algorithms/compiled.py (see there for the why); imports numba.

Kept in its own module so that importing reference_impl never imports numba: compiled.py
imports this on the first "compiled" call. numba caches the machine code in
__pycache__/compiled_kernel.*.nbi / *.nbc next to this file.
"""
from __future__ import annotations

import numba
import numpy as np

TAPS_PER_PASS = 3  # taps of one kernel row added per pass over the accumulator (see compiled.py)


@numba.njit(parallel=True, cache=True, fastmath=False)
def direct_conv(phases_flat: np.ndarray, weight: np.ndarray, stride_h: int, stride_w: int,
                dilation_h: int, dilation_w: int, phase_width: int, width_out: int, out: np.ndarray) -> None:
    """phases_flat (s_h, s_w, N, C_in, H_q*W_q), weight (C_out, C_g, kH, kW) -> out (N, C_out, H_out, W_out).

    Every element of ``out`` is written.
    """
    batch, out_channels, height_out = out.shape[0], out.shape[1], out.shape[2]
    _, channels_per_group, kernel_h, kernel_w = weight.shape
    groups = phases_flat.shape[3] // channels_per_group
    out_per_group = out_channels // groups
    length = (height_out - 1) * phase_width + width_out      # the wide plane, see wide_length
    for n_o in numba.prange(batch * out_channels):
        n, o = n_o // out_channels, n_o % out_channels
        first_in_channel = (o // out_per_group) * channels_per_group
        acc = np.zeros(length, dtype=out.dtype)             # (L,): output plane (n, o) on the wide grid
        for c in range(channels_per_group):
            channel = first_in_channel + c
            for p in range(kernel_h):
                # Padded row i*s_h + p*d_h is row i + p*d_h//s_h of row-phase (p*d_h) % s_h.
                row_phase, row_offset = (p * dilation_h) % stride_h, (p * dilation_h) // stride_h * phase_width
                q = 0
                while q < kernel_w:
                    taps_now = min(TAPS_PER_PASS, kernel_w - q)
                    # Tap (p, q) reads one flat slice of one phase, length L (see phases.py).
                    start0 = row_offset + (q * dilation_w) // stride_w
                    x0 = phases_flat[row_phase, (q * dilation_w) % stride_w, n, channel, start0:start0 + length]
                    w0 = weight[o, c, p, q]
                    if taps_now == 1:
                        for j in range(length):
                            acc[j] += w0 * x0[j]
                    else:
                        start1 = row_offset + ((q + 1) * dilation_w) // stride_w
                        x1 = phases_flat[row_phase, ((q + 1) * dilation_w) % stride_w, n, channel, start1:start1 + length]
                        w1 = weight[o, c, p, q + 1]
                        if taps_now == 2:
                            for j in range(length):
                                acc[j] = (acc[j] + w0 * x0[j]) + w1 * x1[j]
                        else:
                            start2 = row_offset + ((q + 2) * dilation_w) // stride_w
                            x2 = phases_flat[row_phase, ((q + 2) * dilation_w) % stride_w, n, channel, start2:start2 + length]
                            w2 = weight[o, c, p, q + 2]
                            for j in range(length):
                                acc[j] = ((acc[j] + w0 * x0[j]) + w1 * x1[j]) + w2 * x2[j]
                    q += taps_now
        for i in range(height_out):  # crop the wide grid's junk columns W_out..W_q-1
            out[n, o, i, :] = acc[i * phase_width : i * phase_width + width_out]
