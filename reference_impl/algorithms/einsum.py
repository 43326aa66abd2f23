"""The first vectorised version, kept as a baseline: windows view -> one einsum.

Reads most like the formula, but einsum's contraction over a strided view of 2d+3 axes is slow
and, with optimize=True, may materialise the windows (prod(k) copies of the input).
Any number of spatial dims: the einsum subscripts are built per dimension.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..geometry import ConvGeometry

# einsum letters for output positions and kernel taps, one per spatial dim (at most 3)
POSITION_LETTERS, TAP_LETTERS = "hwz", "pqr"


def sliding_windows(x_padded: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """A read-only view of every kernel window: (N, C_in, *output_size, *kernel), no copy."""
    n, c = x_padded.shape[:2]
    space_strides = x_padded.strides[2:]
    return as_strided(
        x_padded,
        shape=(n, c, *geo.output_size, *geo.kernel),
        strides=(
            *x_padded.strides[:2],
            *(st * s for st, s in zip(space_strides, geo.stride, strict=False)),
            *(st * d for st, d in zip(space_strides, geo.dilation, strict=False)),
        ),
        writeable=False,
    )


def subscripts(spatial_dims: int) -> tuple[str, str]:
    """The einsum letters of the output positions and of the kernel taps: ("hw", "pq") for 2-d."""
    return POSITION_LETTERS[:spatial_dims], TAP_LETTERS[:spatial_dims]


def conv_einsum(x_padded: np.ndarray, weight: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """(N, C_in, *padded), (C_out, C_in/G, *k) -> (N, G, C_out/G, *output_size)."""
    G, C_g, O_g = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    windows = sliding_windows(x_padded, geo)  # (N, C_in, *out, *k)
    windows = windows.reshape(geo.batch, G, C_g, *geo.output_size, *geo.kernel)  # (N, G, C_g, *out, *k)
    w = weight.reshape(G, O_g, C_g, *geo.kernel)  # (G, O_g, C_g, *k)
    out, taps = subscripts(geo.spatial_dims)
    # Contract over (c, taps) within each group g: the group axis is shared, never summed.
    result: np.ndarray = np.einsum(f"ngc{out}{taps},goc{taps}->ngo{out}", windows, w, optimize=True)
    return result  # (N, G, O_g, *out)
