"""Direct accumulation over the kernel taps: no im2col, peak memory ~ input + output.

    y[n, g] = sum_{p, q} W[g, :, :, p, q] @ x_tap(p, q)[n, g]       (O_g, C_g) @ (C_g, L)

(any number of spatial dims: the taps are the kernel's positions, see phases.py). Only the kH*kW
taps are looped over; each tap is one broadcast multiply-add over (G, O_g, L) — for depthwise
(C_g == 1) a plain elementwise product, otherwise a small batched matmul. Every tap reads a
contiguous slice of a phase (see phases.py), so the inner loops are long and no window is ever
copied. This is the path for depthwise and few channels per group,
where im2col would copy kH*kW times the input (49x for ConvNeXt's 7x7) to feed a GEMM that has
almost nothing to multiply.

The (n, group-block) loop around the taps is cache blocking, not maths: each block's output
and scratch (~256 KiB) stay in L2 while all kH*kW taps are added into it. Measured 2.3 ms vs
7.7 ms unblocked on MobileNetV2's 144-channel depthwise layer (see docs/performance.md).
"""

from __future__ import annotations

import numpy as np

from ..geometry import ConvGeometry
from .phases import crop_wide, grouped_flat_phases, wide_size

BLOCK_BYTES = 256 * 1024  # output block kept hot in L2 across all taps


def conv_taps(x_padded: np.ndarray, weight: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """(N, C_in, *padded), (C_out, C_in/G, *k) -> (N, G, C_out/G, *output_size)."""
    N, G, C_g, O_g = geo.batch, geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    flat, taps, length, phase_dims = grouped_flat_phases(x_padded, geo)  # flat: (*s, N, G, C_g, prod(Q))
    w = weight.reshape(G, O_g, C_g, len(taps))  # (G, O_g, C_g, prod(k))

    out_wide = np.zeros((N, G, O_g, wide_size(geo, phase_dims)), dtype=x_padded.dtype)  # (N, G, O_g, out_0*Q_1*...)
    block = max(1, BLOCK_BYTES // max(1, O_g * length * out_wide.itemsize))  # groups per block
    scratch = np.empty((min(block, G), O_g, length), dtype=out_wide.dtype)
    for n in range(N):
        for g0 in range(0, G, block):
            acc = out_wide[n, g0 : g0 + block, :, :length]  # (g_blk, O_g, L), a view
            tmp = scratch[: acc.shape[0]]
            for t, tap in enumerate(taps):
                x_tap = flat[tap.phase][n, g0 : g0 + block, :, tap.offset : tap.offset + length]  # (g_blk, C_g, L)
                w_tap = w[g0 : g0 + block, :, :, t]  # (g_blk, O_g, C_g)
                if C_g == 1:  # depthwise: an outer product is a broadcast, not a GEMM
                    np.multiply(w_tap, x_tap, out=tmp)  # (g_blk, O_g, 1) * (g_blk, 1, L)
                else:
                    np.matmul(w_tap, x_tap, out=tmp)  # (g_blk, O_g, C_g) @ (g_blk, C_g, L)
                acc += tmp
    return crop_wide(out_wide, geo, phase_dims)  # (N, G, O_g, *output_size)
