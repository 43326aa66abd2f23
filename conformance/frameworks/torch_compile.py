"""Built-in ``torch-compile``: ``torch.compile(nn.Conv2d)`` with the inductor backend on CPU
(inductor writes and compiles C++: a C++ compiler must be on PATH).

The module (torch_module.py) is compiled once per layer and input shape, after
``torch._dynamo.reset()``: otherwise, past dynamo's recompile limit, a new shape would silently run
eagerly and the case would check plain torch instead of the compiled code. ``ARRAYS = "torch"``: the
harness passes torch tensors in the case's dtype (NumPy arrays are accepted too, and answered in kind).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .torch_module import conv_module

ARRAYS = "torch"
_COMPILED: dict[str, Any] = {}


def version() -> str:
    import torch

    return f"torch {torch.__version__} torch.compile (inductor, CPU)"


def conv2d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1, padding_mode: str = "zeros") -> Any:
    import torch

    as_numpy = isinstance(input, np.ndarray)
    x = torch.as_tensor(input)
    key = repr((tuple(x.shape), x.dtype, tuple(np.shape(weight)), bias is None, stride, padding, dilation, groups,
                padding_mode))
    module = conv_module(weight, bias, stride, padding, dilation, groups, padding_mode)
    if _COMPILED.get("key") != key:
        torch._dynamo.reset()
        _COMPILED.update(key=key)
    compiled = torch.compile(module, backend="inductor", dynamic=False)
    with torch.no_grad():
        output = compiled(x)
    return output.numpy() if as_numpy else output
