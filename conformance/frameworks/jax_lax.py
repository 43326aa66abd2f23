"""Built-in ``jax``: ``jax.lax.conv_general_dilated`` with ``feature_group_count=groups``, on CPU.

Layouts: ``dimension_numbers=("NCHW", "OIHW", "NCHW")`` takes torch's input and weight as they are
(no transpose); ``conv1d`` and ``conv3d`` use the 1-D and 3-D forms ("NCH"/"OIH", "NCDHW"/"OIDHW").
``feature_group_count`` is torch's ``groups`` (``batch_group_count`` is something else: it splits
the batch). Padding: explicit ``[(top, bottom), (left, right)]`` pairs; padding
modes go through ``jnp.pad`` (reflect -> "reflect", replicate -> "edge", circular -> "wrap").
Precision: ``precision=lax.Precision.HIGHEST`` and ``jax_enable_x64`` on, so float64 cases compute
in float64 (JAX's default would silently compute them in float32). torch's unbatched ``(C, *spatial)``
input gets its batch axis from ``jnp.expand_dims`` (what torch does itself), removed from the output
by ``jnp.squeeze``.

Errors: JAX checks a convolution's arguments in Python and refuses a bad one with ``raise
TypeError(...)`` (a wrong rank: "convolution requires lhs and rhs ndim to be equal"), a ``raise``
statement in JAX's own code: that is a refusal (:func:`judge_error`), although a TypeError elsewhere
is a crash. JAX's traceback filtering is turned off, so that the raise is in the traceback to see.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.frameworks.adapter_errors import judge_adapter_error, raise_origin
from conformance.frameworks.layer import (
    check_padding_mode,
    explicit_padding,
    functional_convs,
    kernel_hw,
    ntuple,
)
from conformance.judging.outcomes import REFUSED

ARRAYS = "numpy"
JAX_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
DIMENSION_NUMBERS = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW"), 3: ("NCDHW", "OIDHW", "NCDHW")}


def version() -> str:
    import jax
    import jaxlib

    return f"jax {jax.__version__} (jaxlib {jaxlib.__version__}), {jax.default_backend()}"


def environment() -> dict[str, str]:
    import jax

    _enable_x64()
    return {
        "jax.version": jax.__version__,
        "jax.backend": jax.default_backend(),
        "jax.enable_x64": str(jax.config.read("jax_enable_x64")).lower(),
        "jax.precision": "HIGHEST",
    }


def judge_error(error: BaseException) -> str | None:
    """A ``raise TypeError``/``ValueError`` statement in JAX's own code is its deliberate refusal."""
    origin = raise_origin(error)
    if isinstance(error, (TypeError, ValueError)) and origin is not None and origin.within("jax") and origin.is_raise:
        return REFUSED
    return judge_adapter_error(error)


def _enable_x64() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    # JAX cuts its own frames out of a traceback by default; judge_error needs them to see the raise
    jax.config.update("jax_traceback_filtering", "off")


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
    _enable_x64()
    import jax.numpy as jnp
    from jax import lax

    mode = check_padding_mode(padding_mode, JAX_PAD_MODES, "jnp.pad")
    pads = explicit_padding(padding, kernel_hw(weight, dims), dilation)
    unbatched = np.ndim(input) == dims + 1
    x = jnp.expand_dims(jnp.asarray(input), 0) if unbatched else jnp.asarray(input)
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
    return np.asarray(jnp.squeeze(output, 0) if unbatched else output)


# The torch.nn.functional signatures, one per rank, each calling the one op above.
conv1d, conv2d, conv3d = functional_convs(_conv)
