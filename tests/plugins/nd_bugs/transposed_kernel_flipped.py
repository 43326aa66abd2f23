"""Planted bug: a transposed convolution written as "a convolution with the kernel flipped" and
then flipped once more: every kernel is used mirrored along each spatial axis. Every other op is
correct; only non-symmetric kernels show it."""

from __future__ import annotations

import numpy as np

from ._base import TRANSPOSED, conv1d as conv1d, conv2d as conv2d, conv3d as conv3d


def _flipped(dims: int):
    correct = TRANSPOSED[dims]

    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, **kw):
        mirrored = np.ascontiguousarray(np.flip(weight, axis=tuple(range(2, 2 + dims))))
        return correct(input, mirrored, bias, stride, padding, output_padding, groups, dilation, **kw)

    conv_transpose.__name__ = f"conv_transpose{dims}d"
    return conv_transpose


conv_transpose1d, conv_transpose2d, conv_transpose3d = _flipped(1), _flipped(2), _flipped(3)
