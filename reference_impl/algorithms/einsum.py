"""The first vectorised version, kept as a baseline: windows view -> one einsum.

Reads most like the formula, but einsum's contraction over a 7-D strided view is slow and,
with optimize=True, may materialise the windows (kH*kW copies of the input).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..geometry import ConvGeometry


def sliding_windows(x_padded: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """A read-only view of every kernel window: (N, C_in, H_out, W_out, kH, kW), no copy."""
    n, c, _, _ = x_padded.shape
    height_out, width_out = geo.output_size
    s_n, s_c, s_h, s_w = x_padded.strides
    return as_strided(
        x_padded,
        shape=(n, c, height_out, width_out, *geo.kernel),
        strides=(s_n, s_c, s_h * geo.stride[0], s_w * geo.stride[1],
                 s_h * geo.dilation[0], s_w * geo.dilation[1]),
        writeable=False,
    )


def conv2d_einsum(x_padded: np.ndarray, weight: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """(N, C_in, H_pad, W_pad), (C_out, C_in/G, kH, kW) -> (N, G, C_out/G, H_out, W_out)."""
    G, C_g, O_g = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    windows = sliding_windows(x_padded, geo)                   # (N, C_in, H_out, W_out, kH, kW)
    windows = windows.reshape(geo.batch, G, C_g, *geo.output_size, *geo.kernel)  # (N, G, C_g, H_out, W_out, kH, kW)
    w = weight.reshape(G, O_g, C_g, *geo.kernel)               # (G, O_g, C_g, kH, kW)
    # Contract over (c, p, q) within each group g: the group axis is shared, never summed.
    return np.einsum("ngchwpq,gocpq->ngohw", windows, w, optimize=True)  # (N, G, O_g, H_out, W_out)
