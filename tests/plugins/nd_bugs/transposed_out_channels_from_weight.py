"""Planted bug (apache/tvm#4261, #10223): a grouped transposed convolution sizes its output as
weight.shape[1] channels, forgetting the x groups, so only group 0's outputs come out. Every other
op is correct."""

from __future__ import annotations

import numpy as np

from ._base import TRANSPOSED, channel_axis, conv1d as conv1d, conv2d as conv2d, conv3d as conv3d


def _from_weight(dims: int):
    correct = TRANSPOSED[dims]

    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, **kw):
        out = correct(input, weight, bias, stride, padding, output_padding, groups, dilation, **kw)
        out_channels = weight.shape[1]  # the bug: should be weight.shape[1] * groups
        return np.take(out, np.arange(out_channels), axis=channel_axis(out, weight))

    conv_transpose.__name__ = f"conv_transpose{dims}d"
    return conv_transpose


conv_transpose1d, conv_transpose2d, conv_transpose3d = _from_weight(1), _from_weight(2), _from_weight(3)
