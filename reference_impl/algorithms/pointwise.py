"""1x1 kernels: a convolution that is only a per-group matrix product over channels.

    y[n, g, o, :] = W[g] @ x[n, g, :, ::s_h, ::s_w]      W[g]: (C_out/G, C_in/G)

Stride is a slice (a 1x1 kernel never looks at the skipped pixels); dilation changes nothing.
np.matmul broadcasts the (G, O_g, C_g) weight over the batch, one BLAS GEMM per (n, g).
"""
from __future__ import annotations

import numpy as np

from ..geometry import ConvGeometry


def conv2d_pointwise(x_padded: np.ndarray, weight: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """(N, C_in, H_pad, W_pad), (C_out, C_in/G, 1, 1) -> (N, G, C_out/G, H_out, W_out)."""
    G, C_g, O_g = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    height_out, width_out = geo.output_size
    s_h, s_w = geo.stride
    x = x_padded[:, :, : height_out * s_h : s_h, : width_out * s_w : s_w]  # (N, C_in, H_out, W_out)
    # A copy only when strided: BLAS wants each (C_g, H_out*W_out) slab contiguous.
    x = np.ascontiguousarray(x).reshape(geo.batch, G, C_g, height_out * width_out)  # (N, G, C_g, HW)
    w = weight.reshape(G, O_g, C_g)                                          # (G, O_g, C_g)
    out = np.matmul(w, x)                                                    # (N, G, O_g, HW)
    return out.reshape(geo.batch, G, O_g, height_out, width_out)             # (N, G, O_g, H_out, W_out)
