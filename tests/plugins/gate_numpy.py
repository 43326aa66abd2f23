"""A user's NumPy plug-in, as someone gating their own kernel would write it: it takes and returns
arrays in the case's own dtype (float16 as np.float16, bfloat16 as ml_dtypes.bfloat16) and refuses
an invalid layer in its own words, never torch's.

It computes through the project's reference in float64 (the arithmetic is not what these tests are
about: the gate's handling of dtypes and refusals is), then rounds once to the input's dtype.
"""

from __future__ import annotations

import numpy as np

from reference_impl import conv2d as _reference_conv2d


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """F.conv2d over NumPy arrays; refusals are ValueError('numpy_gate rejects ...')."""
    dtype = input.dtype
    as64 = lambda a: None if a is None else np.asarray(a).astype(np.float64)  # noqa: E731
    try:
        output = _reference_conv2d(as64(input), as64(weight), as64(bias), stride, padding, dilation, groups, **kwargs)
    except ValueError:
        raise ValueError("numpy_gate rejects this layer (see the docs of numpy_gate, section 3)") from None
    return output.astype(dtype)


def conv2d_backward(grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """The gradients, in the input's dtype as well."""
    from reference_impl import conv2d_backward as reference_backward

    dtype = input.dtype
    as64 = lambda a: None if a is None else np.asarray(a).astype(np.float64)  # noqa: E731
    grads = reference_backward(
        as64(grad_output), as64(input), as64(weight), as64(bias), stride, padding, dilation, groups, **kwargs
    )
    return tuple(None if g is None else g.astype(dtype) for g in grads)


def crashes_on_invalid(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Right on every valid layer; on an invalid one, sloppy code raises TypeError before any check."""
    try:
        return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)
    except ValueError:
        return None + 1  # a bug, not a refusal: TypeError


def zeros_padding_only(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """A kernel that honestly does not implement reflect/replicate/circular padding."""
    if padding_mode != "zeros":
        from conformance import Unsupported

        raise Unsupported(f"padding_mode={padding_mode!r} is not implemented")
    return conv2d(input, weight, bias, stride, padding, dilation, groups)


def returns_float32(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Right values, but always float32: wrong for float16/bfloat16 cases."""
    return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs).astype(np.float32)


received: list[dict] = []


def recording(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Correct, and remembers the dtypes it was given."""
    received.append(
        {"input": input.dtype.name, "weight": weight.dtype.name, "bias": None if bias is None else bias.dtype.name}
    )
    return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)


def refuses_grouped(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Deliberately refuses every grouped layer, valid or not: a refusal where torch computes."""
    if groups != 1:
        raise ValueError("refuses_grouped: groups > 1 is not allowed here")
    return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)
