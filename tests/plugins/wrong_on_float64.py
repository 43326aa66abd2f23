"""torch's functional convolutions, wrong only in float64 (every output element off by one part in
a thousand): the plug-in an xfail entry ``{dtype: float64, reason: ...}`` must turn green."""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F

ARRAYS = "torch"


def _wrong_in_float64(function: Any) -> Any:
    @functools.wraps(function)  # torch's signature (its docstring's first line) is the plug-in's
    def op(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        out = function(input, weight, bias, **kwargs)
        return out * 1.001 if input.dtype == torch.float64 else out

    return op


conv1d, conv2d, conv3d = (_wrong_in_float64(getattr(F, f"conv{d}d")) for d in (1, 2, 3))
conv_transpose1d, conv_transpose2d, conv_transpose3d = (
    _wrong_in_float64(getattr(F, f"conv_transpose{d}d")) for d in (1, 2, 3)
)
