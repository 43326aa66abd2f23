"""A user's torch plug-in module (``--impl tests.plugins.gate_torch``): it takes torch tensors in the
case's dtype and returns tensors, computing with torch's own functional ops, as a wrapper around a
custom kernel would. It refuses invalid layers with its own exception type, LayerRejected, which is
not a ValueError or RuntimeError: the gate must be told (--refusal-type) that it is a refusal.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

ARRAYS = "torch"  # what this module takes when --arrays is not given


class LayerRejected(Exception):
    """This library's refusal of an invalid layer."""


def _pairs(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def _pad_widths(padding, kernel, dilation):
    """F.pad's (left, right, top, bottom) for a padding int/pair, 'valid' or 'same' (extra on the right)."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        widths = []
        for k, d in zip(reversed(kernel), reversed(dilation)):  # width first, as F.pad wants
            total = d * (k - 1)
            widths += [total // 2, total - total // 2]
        return tuple(widths)
    pad_h, pad_w = _pairs(padding)
    return (pad_w, pad_w, pad_h, pad_h)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """F.conv2d, with the non-zeros padding modes done by F.pad first (as nn.Conv2d does)."""
    assert isinstance(input, torch.Tensor) and isinstance(weight, torch.Tensor), "the gate passes tensors"
    try:
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode {padding_mode}")
        if padding_mode != "zeros":
            if groups < 1 or input.shape[-3] % groups or weight.shape[0] % groups:
                raise ValueError("groups")
            input = F.pad(input, _pad_widths(padding, weight.shape[-2:], _pairs(dilation)), mode=padding_mode)
            padding = 0
        return F.conv2d(input, weight, bias, stride, padding, dilation, groups)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise LayerRejected(f"gate_torch cannot run this layer ({type(exc).__name__})") from exc


def conv2d_backward(grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros"):
    """Autograd through :func:`conv2d`, returning tensors."""
    input = input.detach().requires_grad_(True)
    weight = weight.detach().requires_grad_(True)
    if bias is not None:
        bias = bias.detach().requires_grad_(True)
    output = conv2d(input, weight, bias, stride, padding, dilation, groups, padding_mode)
    output.backward(grad_output)
    return input.grad, weight.grad, None if bias is None else bias.grad


received: list[tuple[str, str]] = []


def recording_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Correct; remembers the type and dtype it was given, and answers on a non-contiguous view."""
    received.append((type(input).__name__, str(input.dtype), str(input.device)))
    output = conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)
    return output.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values, another memory layout
