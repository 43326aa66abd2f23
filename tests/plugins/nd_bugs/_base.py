"""The correct six ops (the reference's), for the planted-bug modules to start from, and the
helpers they share."""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_impl import conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d

TRANSPOSED = {1: conv_transpose1d, 2: conv_transpose2d, 3: conv_transpose3d}
CONVS = {1: conv1d, 2: conv2d, 3: conv3d}


def per_dim(value: Any, dims: int) -> tuple[int, ...]:
    return (int(value),) * dims if isinstance(value, (int, np.integer)) else tuple(int(v) for v in value)


def channel_axis(array: np.ndarray, weight: np.ndarray) -> int:
    """The channel axis of an (N, C, *s) or (C, *s) array, counted from the end."""
    return -(np.ndim(weight) - 1)
