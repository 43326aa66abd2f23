"""Deliberately wrong convolutions: the suite must catch each of them.

They wrap the reference and break one thing, as real kernels do.
"""
from __future__ import annotations

import numpy as np

from reference_impl import conv2d


def interleaved_groups(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Output channel o taken from group o % groups (interleaved) instead of o // (C_out/groups)."""
    out = conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)
    per_group = weight.shape[0] // groups
    order = [(o % groups) * per_group + o // groups for o in range(weight.shape[0])]
    return np.take(out, order, axis=-3)


def ignores_padding_mode(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Always pads with zeros."""
    return conv2d(input, weight, bias, stride, padding, dilation, groups)


def returns_float64(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Right values, wrong dtype."""
    return conv2d(input.astype(np.float64), weight, bias, stride, padding, dilation, groups, **kwargs)


def accepts_anything(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Never refuses: returns zeros of a plausible shape."""
    return np.zeros((input.shape[0], weight.shape[0], 1, 1), dtype=input.dtype)


calls: list[dict] = []


def recording(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Correct, and remembers how it was called."""
    calls.append(dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias, **kwargs))
    return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)


NOT_CALLABLE = 42
