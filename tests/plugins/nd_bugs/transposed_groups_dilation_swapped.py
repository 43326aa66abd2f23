"""Planted bug (IntelLabs/bayesian-torch#34): F.conv_transpose2d is called with dilation and groups
in each other's place (conv's order, stride, padding, dilation, groups, where conv_transpose's is
stride, padding, output_padding, groups, dilation). Every other op is correct."""

from __future__ import annotations

from ._base import TRANSPOSED, conv1d as conv1d, conv2d as conv2d, conv3d as conv3d


def _swapped(dims: int):
    correct = TRANSPOSED[dims]

    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, **kw):
        return correct(input, weight, bias, stride, padding, output_padding, dilation, groups, **kw)

    conv_transpose.__name__ = f"conv_transpose{dims}d"
    return conv_transpose


conv_transpose1d, conv_transpose2d, conv_transpose3d = _swapped(1), _swapped(2), _swapped(3)
