"""Plug-ins with a backward pass, right and wrong: the backward cases must catch each wrong one.

The backward is found next to the forward: ``<name>_backward`` beside it, or ``<name>.backward``.
"""

from __future__ import annotations

import numpy as np

from reference_impl import conv2d, conv2d_backward


def attribute(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Correct; its backward is an attribute of the function."""
    return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)


attribute.backward = conv2d_backward


def last_row_mirrored(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Correct forward; see its backward."""
    return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)


def last_row_mirrored_backward(
    grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs
):
    """The wrong weight gradient of pytorch/pytorch#50042: each kernel's last row repeats its first."""
    grads = conv2d_backward(grad_output, input, weight, bias, stride, padding, dilation, groups, **kwargs)
    grad_weight = grads.grad_weight.copy()
    grad_weight[:, :, -1, :] = grad_weight[:, :, 0, :]
    return grads.grad_input, grad_weight, grads.grad_bias


def zero_padding_backward(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Correct forward; see its backward."""
    return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)


def zero_padding_backward_backward(
    grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs
):
    """Backward as if the padding were zeros: the gradient of the padded copies is dropped."""
    return conv2d_backward(grad_output, input, weight, bias, stride, padding, dilation, groups)


def planted(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Correct forward; see its backward."""
    return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)


def planted_backward(grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """The exact gradients rounded to float32, with grad_input[0, 1, 0, 0] moved by 6 x K ULPs (K = the
    number of products an input gradient sums at most). For positive data, where B is the value itself,
    a plug-in is allowed c 2 x 2 sides x K x u x B < 4 x K ULPs: this must fail."""
    as64 = lambda a: None if a is None else np.asarray(a, np.float64)  # noqa: E731
    grads = conv2d_backward(*map(as64, (grad_output, input, weight, bias)), stride, padding, dilation, groups, **kwargs)
    grad_input = grads.grad_input.astype(np.float32)
    terms = weight.shape[0] // groups * weight.shape[2] * weight.shape[3]
    grad_input[0, 1, 0, 0] += 6 * terms * np.spacing(grad_input[0, 1, 0, 0])
    as32 = lambda a: None if a is None else a.astype(np.float32)  # noqa: E731
    return grad_input, as32(grads.grad_weight), as32(grads.grad_bias)


def returns_two(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)


def returns_two_backward(grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Forgets grad_bias."""
    return conv2d_backward(grad_output, input, weight, bias, stride, padding, dilation, groups, **kwargs)[:2]


received: list[dict] = []


def recording(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Correct; remembers the dtypes and values it was given."""
    received.append({"input": input, "weight": weight})
    return conv2d(
        input.astype(np.float64),
        weight.astype(np.float64),
        None if bias is None else bias.astype(np.float64),
        stride,
        padding,
        dilation,
        groups,
        **kwargs,
    ).astype(input.dtype)
