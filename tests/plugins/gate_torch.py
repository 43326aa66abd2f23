"""A user's torch plug-in module (``--impl tests.plugins.gate_torch``): it takes torch tensors in the
case's dtype and returns tensors, computing with torch's own functional ops, as a wrapper around a
custom kernel would. It defines all six ops (conv1d/2d/3d, conv_transpose1d/2d/3d) and a backward
for each. It refuses invalid layers with its own exception type, LayerRejected, which is not a
ValueError or RuntimeError: the gate must be told (--refusal-type) that it is a refusal.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

ARRAYS = "torch"  # what this module takes when --arrays is not given


class LayerRejected(Exception):
    """This library's refusal of an invalid layer."""


def _tuple(value, dims: int) -> tuple:
    return (value,) * dims if isinstance(value, int) else tuple(value)


def _pad_widths(padding, kernel, dilation, dims: int) -> tuple:
    """F.pad's widths, last axis first, for an int/tuple padding, 'valid' or 'same' (the odd one at the end)."""
    if padding == "valid":
        return (0, 0) * dims
    widths: list[int] = []
    if padding == "same":
        for k, d in zip(reversed(kernel), reversed(_tuple(dilation, dims)), strict=False):
            total = d * (k - 1)
            widths += [total // 2, total - total // 2]
    else:
        for p in reversed(_tuple(padding, dims)):
            widths += [p, p]
    return tuple(widths)


def _convolution(function: Callable, dims: int) -> Callable:
    def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
        """F.conv<d>d, with the non-zeros padding modes done by F.pad first (as nn.Conv<d>d does)."""
        assert isinstance(input, torch.Tensor) and isinstance(weight, torch.Tensor), "the gate passes tensors"
        try:
            if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
                raise ValueError(f"padding_mode {padding_mode}")
            if padding_mode != "zeros":
                if groups < 1 or input.shape[-dims - 1] % groups or weight.shape[0] % groups:
                    raise ValueError("groups")
                if padding == "same" and any(s != 1 for s in _tuple(stride, dims)):
                    raise ValueError("'same' with a stride")  # F.conv would say so, but it gets padding 0 here
                input = F.pad(input, _pad_widths(padding, weight.shape[2:], dilation, dims), mode=padding_mode)
                padding = 0
            return function(input, weight, bias, stride, padding, dilation, groups)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise LayerRejected(f"gate_torch cannot run this layer ({type(exc).__name__})") from exc

    conv.__name__ = conv.__qualname__ = f"conv{dims}d"
    return conv


def _transposed(function: Callable, dims: int) -> Callable:
    def conv_transpose(
        input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, padding_mode="zeros"
    ):
        """F.conv_transpose<d>d; only zeros padding, as torch's ConvTranspose."""
        assert isinstance(input, torch.Tensor) and isinstance(weight, torch.Tensor), "the gate passes tensors"
        try:
            if padding_mode != "zeros":
                raise ValueError("padding_mode")
            return function(input, weight, bias, stride, padding, output_padding, groups, dilation)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise LayerRejected(f"gate_torch cannot run this layer ({type(exc).__name__})") from exc

    conv_transpose.__name__ = conv_transpose.__qualname__ = f"conv_transpose{dims}d"
    return conv_transpose


def _backward(forward: Callable) -> Callable:
    def backward(grad_output, input, weight, bias=None, *args, **kwargs):
        """Autograd through the forward, returning tensors."""
        input = input.detach().requires_grad_(True)
        weight = weight.detach().requires_grad_(True)
        if bias is not None:
            bias = bias.detach().requires_grad_(True)
        forward(input, weight, bias, *args, **kwargs).backward(grad_output)
        return input.grad, weight.grad, None if bias is None else bias.grad

    backward.__name__ = backward.__qualname__ = f"{forward.__name__}_backward"
    return backward


conv1d, conv2d, conv3d = (_convolution(f, d) for f, d in ((F.conv1d, 1), (F.conv2d, 2), (F.conv3d, 3)))
conv_transpose1d, conv_transpose2d, conv_transpose3d = (
    _transposed(f, d) for f, d in ((F.conv_transpose1d, 1), (F.conv_transpose2d, 2), (F.conv_transpose3d, 3))
)
conv1d_backward, conv2d_backward, conv3d_backward = map(_backward, (conv1d, conv2d, conv3d))
conv_transpose1d_backward, conv_transpose2d_backward, conv_transpose3d_backward = map(
    _backward, (conv_transpose1d, conv_transpose2d, conv_transpose3d)
)


received: list[tuple[str, str, str]] = []


def recording_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Correct; remembers the type and dtype it was given, and answers on a non-contiguous view."""
    received.append((type(input).__name__, str(input.dtype), str(input.device)))
    output = conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)
    return output.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values, another memory layout
