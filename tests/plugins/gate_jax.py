"""A user's JAX plug-in (``--impl tests.plugins.gate_jax``): it takes jax.Arrays in the case's dtype
and returns one, using JAX's own grouped convolution (``feature_group_count``)."""

from __future__ import annotations

ARRAYS = "jax"

_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """F.conv2d's contract on jax.Arrays; unbatched (C, H, W) inputs get a batch axis of 1."""
    import jax.numpy as jnp  # here, not at the top: --doctest-modules imports this module without JAX installed
    from jax import lax

    unbatched = input.ndim == 3
    x = input[None] if unbatched else input
    if isinstance(padding, str):
        pads = padding.upper()
        if padding_mode != "zeros":
            raise NotImplementedError("string padding with a padding mode")
    else:
        pads = [(p, p) for p in _pair(padding)]
        if padding_mode != "zeros":
            x = jnp.pad(x, [(0, 0), (0, 0), *pads], mode=_PAD_MODES[padding_mode])
            pads = [(0, 0), (0, 0)]
    y = lax.conv_general_dilated(
        x,
        weight,
        _pair(stride),
        pads,
        rhs_dilation=_pair(dilation),
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        feature_group_count=groups,
    )
    if bias is not None:
        y = y + bias[None, :, None, None]
    return y[0] if unbatched else y
