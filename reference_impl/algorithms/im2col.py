"""im2col + one batched GEMM per group: the contraction over (C_in/G, kH, kW) done by BLAS.

    cols[n, g, (c, p, q), :] = tap (p, q) of input channel c of group g, as a flat wide row
    y[:, g] = W[g] @ cols[g]             W[g]: (O_g, C_g*kH*kW),  cols[g]: (C_g*kH*kW, N*L)

Each row of ``cols`` is one contiguous slice of a phase (see phases.py), so building it is
kH*kW long memcpy-like copies, and the GEMM runs on contiguous data with G as a batch axis.
Cost: ``cols`` is kH*kW times the input — right for many channels per group, where the GEMM's
arithmetic dwarfs the copy; wrong for depthwise, where there is nothing to multiply.
"""

from __future__ import annotations

import numpy as np

from ..geometry import ConvGeometry
from .phases import crop_wide, grouped_flat_phases, wide_size


def conv_im2col(x_padded: np.ndarray, weight: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """(N, C_in, *padded), (C_out, C_in/G, *k) -> (N, G, C_out/G, *output_size); any number of spatial dims."""
    N, G, C_g, O_g = geo.batch, geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    flat, taps, length, phase_dims = grouped_flat_phases(x_padded, geo)  # flat: (*s, N, G, C_g, prod(Q))
    wide = wide_size(geo, phase_dims)  # out_0 * Q_1 * ... (2-d: H_out*W_q)

    # Batch folded into the GEMM's columns: one (O_g, K) @ (K, N*wide) product per group, larger
    # and faster than N*G small ones, since the weight is the same for every sample.
    cols = np.empty((G, C_g, len(taps), N, wide), dtype=x_padded.dtype)  # (G, C_g, kH*kW, N, H_out*W_q)
    cols[..., length:] = 0  # the tail of the wide grid past the last output: junk, but defined
    for t, tap in enumerate(taps):
        x_tap = flat[tap.phase][..., tap.offset : tap.offset + length]  # (N, G, C_g, L), a view
        cols[:, :, t, :, :length] = x_tap.transpose(1, 2, 0, 3)  # (G, C_g, N, L)
    cols = cols.reshape(G, C_g * len(taps), N * wide)  # (G, C_g*kH*kW, N*H_out*W_q)
    w = weight.reshape(G, O_g, C_g * len(taps))  # (G, O_g, C_g*kH*kW), same (c, p, q) order
    out_wide = np.matmul(w, cols).reshape(G, O_g, N, wide)  # (G, O_g, N, H_out*W_q)
    out_wide = out_wide.transpose(2, 0, 1, 3)  # (N, G, O_g, H_out*W_q), a view
    return crop_wide(out_wide, geo, phase_dims)  # (N, G, O_g, *output_size)
