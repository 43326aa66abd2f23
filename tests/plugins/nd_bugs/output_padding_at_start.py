"""Planted bug: output_padding's extra positions are put at the START of each spatial axis (holding
only the bias) instead of at the end, where the taps still reach them. The shape is right; the
values are shifted by output_padding. Every other op is correct."""

from __future__ import annotations

import numpy as np

from ._base import TRANSPOSED, conv1d as conv1d, conv2d as conv2d, conv3d as conv3d, per_dim


def _at_start(dims: int):
    correct = TRANSPOSED[dims]

    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, **kw):
        extra = per_dim(output_padding, dims)
        out = correct(input, weight, bias, stride, padding, 0, groups, dilation, **kw)  # (N, C_out, *s) or (C_out, *s)
        if not any(extra):
            return out
        leading = out.ndim - dims
        padded = np.pad(out, [(0, 0)] * leading + [(e, 0) for e in extra])
        if bias is not None:  # an uncovered position holds its channel's bias
            mask = np.pad(np.zeros(out.shape[leading:], bool), [(e, 0) for e in extra], constant_values=True)
            shape = (-1,) + (1,) * dims
            padded = np.where(mask, np.asarray(bias).reshape(shape), padded).astype(out.dtype)
        return padded

    conv_transpose.__name__ = f"conv_transpose{dims}d"
    return conv_transpose


conv_transpose1d, conv_transpose2d, conv_transpose3d = _at_start(1), _at_start(2), _at_start(3)
