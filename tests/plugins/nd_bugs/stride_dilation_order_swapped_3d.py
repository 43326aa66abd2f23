"""Planted bug: the 3-d ops read per-dimension stride and dilation in (W, H, D) order instead of
(D, H, W) (padding and kernel right). Invisible when every axis has the same value, or the values
are a palindrome. Every other op is correct."""

from __future__ import annotations

from ._base import (
    conv1d as conv1d,
    conv2d as conv2d,
    conv3d as _conv3d,
    conv_transpose1d as conv_transpose1d,
    conv_transpose2d as conv_transpose2d,
    conv_transpose3d as _conv_transpose3d,
    per_dim,
)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kw):
    return _conv3d(input, weight, bias, per_dim(stride, 3)[::-1], padding, per_dim(dilation, 3)[::-1], groups, **kw)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, **kw):
    return _conv_transpose3d(
        input, weight, bias, per_dim(stride, 3)[::-1], padding, output_padding, groups, per_dim(dilation, 3)[::-1], **kw
    )
