"""A correct plug-in module for all six ops: each function hands its NumPy arrays to the
``torch.nn.functional`` function of the same name (float64 on the CPU) and returns NumPy.

It is the "correct module" of the plug-in tests and a stand-in oracle while a reference op is
missing; it computes nothing itself. ``padding_mode`` is the module API's, not the functional's:
for a convolution it is applied with ``F.pad`` first (as ``torch.nn.ConvNd`` does), and a
transposed op refuses anything but zeros (as ``torch.nn.ConvTransposeNd`` does).

>>> import numpy as np
>>> conv_transpose2d(np.array([0.1, 1.0]).reshape(1, 2, 1, 1), np.arange(1.0, 5.0).reshape(2, 2, 1, 1)).ravel().tolist()
[3.1, 4.2]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tensor(array: Any) -> torch.Tensor | None:
    return None if array is None else torch.from_numpy(np.array(array, dtype=np.float64))


def _tuple(value: Any, dims: int) -> tuple[int, ...]:
    return (value,) * dims if isinstance(value, int) else tuple(value)


def _conv(dims: int):
    functional = getattr(F, f"conv{dims}d")

    def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
        if padding_mode not in PADDING_MODES:  # torch.nn.ConvNd's own check
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, but got padding_mode='{padding_mode}'")
        x = _tensor(input)
        if padding_mode != "zeros":
            # torch.nn.ConvNd: pad each spatial axis in that mode first ('same': d*(k-1) in all, the odd
            # one after), then convolve without padding
            kernel, dilations = weight.shape[2:], _tuple(dilation, dims)
            if padding == "same":
                totals = [d * (k - 1) for k, d in zip(kernel, dilations, strict=False)]
                sides = [(total // 2, total - total // 2) for total in totals]
            elif padding == "valid":
                sides = [(0, 0)] * dims
            else:
                sides = [(p, p) for p in _tuple(padding, dims)]
            x = F.pad(x, [p for pair in reversed(sides) for p in pair], mode=padding_mode)
            padding = 0
        with torch.no_grad():
            out = functional(x, _tensor(weight), _tensor(bias), stride, padding, dilation, groups)
        return out.numpy().astype(np.asarray(input).dtype)  # computed in float64, returned in the caller's dtype

    conv.__name__ = f"conv{dims}d"
    return conv


def _conv_transpose(dims: int):
    functional = getattr(F, f"conv_transpose{dims}d")

    def conv_transpose(
        input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, padding_mode="zeros"
    ):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for ConvTranspose{dims}d')
        with torch.no_grad():
            out = functional(
                _tensor(input), _tensor(weight), _tensor(bias), stride, padding, output_padding, groups, dilation
            )
        return out.numpy().astype(np.asarray(input).dtype)

    conv_transpose.__name__ = f"conv_transpose{dims}d"
    return conv_transpose


conv1d, conv2d, conv3d = _conv(1), _conv(2), _conv(3)
conv_transpose1d, conv_transpose2d, conv_transpose3d = _conv_transpose(1), _conv_transpose(2), _conv_transpose(3)
OPS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
