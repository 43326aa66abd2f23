"""Built-in ``jax``: ``jax.lax.conv_general_dilated`` with ``feature_group_count=groups``, on CPU.

Layouts: ``dimension_numbers=("NCHW", "OIHW", "NCHW")`` takes torch's input and weight as they are
(no transpose); ``conv1d`` and ``conv3d`` use the 1-D and 3-D forms ("NCH"/"OIH", "NCDHW"/"OIDHW").
``feature_group_count`` is torch's ``groups`` (``batch_group_count`` is something else: it splits the
batch). Padding: explicit ``[(top, bottom), (left, right)]`` pairs; padding
modes go through ``jnp.pad`` (reflect -> "reflect", replicate -> "edge", circular -> "wrap").
Precision: ``precision=lax.Precision.HIGHEST`` and ``jax_enable_x64`` on, so float64 cases compute
in float64 (JAX's default would silently compute them in float32).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.frameworks.layer import (
    check_padding_mode,
    explicit_padding,
    functional_convs,
    kernel_hw,
    ntuple,
    require_batched,
)

ARRAYS = "numpy"
JAX_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
DIMENSION_NUMBERS = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW"), 3: ("NCDHW", "OIDHW", "NCDHW")}


def version() -> str:
    import jax
    import jaxlib

    return f"jax {jax.__version__} (jaxlib {jaxlib.__version__}), {jax.default_backend()}"


def _conv(
    dims: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    padding_mode: str,
) -> np.ndarray:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax import lax

    require_batched(input, "jax.lax.conv_general_dilated", dims)
    mode = check_padding_mode(padding_mode, JAX_PAD_MODES, "jnp.pad")
    pads = explicit_padding(padding, kernel_hw(weight, dims), dilation)
    x = jnp.asarray(input)
    if padding_mode != "zeros":
        x = jnp.pad(x, ((0, 0), (0, 0), *pads), mode=mode)
        pads = ((0, 0),) * dims
    output = lax.conv_general_dilated(
        x,
        jnp.asarray(weight),
        window_strides=ntuple(stride, dims),
        padding=list(pads),
        rhs_dilation=ntuple(dilation, dims),
        dimension_numbers=DIMENSION_NUMBERS[dims],
        feature_group_count=groups,
        precision=lax.Precision.HIGHEST,
    )
    if bias is not None:
        output = output + jnp.asarray(bias).reshape((1, -1) + (1,) * dims)  # (C_out,) -> (1, C_out, 1, ...)
    return np.asarray(output)


# The torch.nn.functional signatures, one per rank, each calling the one op above.
conv1d, conv2d, conv3d = functional_convs(_conv)
