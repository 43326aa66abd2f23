"""Planted bug (uxlfoundation/oneDNN#352): a grouped transposed convolution writes output channel
o from group o % groups (interleaved: g0f0, g1f0, g0f1, ...) instead of concatenating the groups'
outputs. Every other op is correct."""

from __future__ import annotations

import numpy as np

from ._base import TRANSPOSED, channel_axis, conv1d as conv1d, conv2d as conv2d, conv3d as conv3d


def _interleaved(dims: int):
    correct = TRANSPOSED[dims]

    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, **kw):
        out = correct(input, weight, bias, stride, padding, output_padding, groups, dilation, **kw)
        out_channels = weight.shape[1] * groups
        per_group = weight.shape[1]
        order = [(o % groups) * per_group + o // groups for o in range(out_channels)]
        return np.take(out, order, axis=channel_axis(out, weight))

    conv_transpose.__name__ = f"conv_transpose{dims}d"
    return conv_transpose


conv_transpose1d, conv_transpose2d, conv_transpose3d = _interleaved(1), _interleaved(2), _interleaved(3)
