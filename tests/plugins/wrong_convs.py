"""Deliberately wrong convolutions: the suite must catch each of them.

They wrap the reference and break one thing, as real kernels do.
"""

from __future__ import annotations

import numpy as np

from reference_impl import conv2d
from tests.plugins.classic_bugs import outputs_interleaved

# Output channel o taken from group o % groups: the classic bug, under the name the CLI, fuzz and
# JUnit tests use (the kill matrix calls it outputs_interleaved).
interleaved_groups = outputs_interleaved


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
