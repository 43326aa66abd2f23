"""1x1 kernels: a convolution that is only a per-group matrix product over channels.

    y[n, g, o, :] = W[g] @ x[n, g, :, ::s_0, ::s_1, ...]      W[g]: (C_out/G, C_in/G)

Stride is a slice (a 1x1 kernel never looks at the skipped pixels); dilation changes nothing.
np.matmul broadcasts the (G, O_g, C_g) weight over the batch, one BLAS GEMM per (n, g).
Any number of spatial dims: they are flattened into one axis of positions.
"""

from __future__ import annotations

import math

import numpy as np

from ..geometry import ConvGeometry


def conv_pointwise(x_padded: np.ndarray, weight: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """(N, C_in, *padded), (C_out, C_in/G, 1, ...) -> (N, G, C_out/G, *output_size)."""
    G, C_g, O_g = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    out_size = geo.output_size
    x = x_padded[
        (slice(None), slice(None), *(slice(0, n * s, s) for n, s in zip(out_size, geo.stride, strict=False)))
    ]  # (N, C_in, *out)
    # A copy only when strided: BLAS wants each (C_g, positions) slab contiguous.
    x = np.ascontiguousarray(x).reshape(geo.batch, G, C_g, math.prod(out_size))  # (N, G, C_g, positions)
    w = weight.reshape(G, O_g, C_g)  # (G, O_g, C_g)
    out: np.ndarray = np.matmul(w, x)  # (N, G, O_g, positions)
    return out.reshape(geo.batch, G, O_g, *out_size)  # (N, G, O_g, *output_size)
