"""Built-in ``torch-compile``: ``torch.compile(nn.Conv2d)`` with the inductor backend on CPU
(inductor writes and compiles C++: a C++ compiler must be on PATH).

The module (torch_module.py) is compiled once per layer and input shape, after
``torch._dynamo.reset()``: otherwise, past dynamo's recompile limit, a new shape would silently run
eagerly and the case would check plain torch instead of the compiled code. Calls with the same
layer and shape reuse the compiled module, with the new weight and bias copied into its parameters
(a fresh module per call would make dynamo recompile, and hit that limit, too). ``ARRAYS = "torch"``: the
harness passes torch tensors in the case's dtype (NumPy arrays are accepted too, and answered in kind).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.frameworks.torch_module import as_torch, conv_module

ARRAYS = "torch"
_COMPILED: dict[str, Any] = {}


def version() -> str:
    import torch

    return f"torch {torch.__version__} torch.compile (inductor, CPU)"


def conv2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Any:
    import torch

    as_numpy = isinstance(input, np.ndarray)
    x = as_torch(input)
    key = repr(
        (
            tuple(x.shape),
            x.dtype,
            tuple(np.shape(weight)),
            bias is None,
            stride,
            padding,
            dilation,
            groups,
            padding_mode,
        )
    )
    if _COMPILED.get("key") != key:
        torch._dynamo.reset()
        module = conv_module(weight, bias, stride, padding, dilation, groups, padding_mode)
        _COMPILED.update(key=key, module=module, compiled=torch.compile(module, backend="inductor", dynamic=False))
    module, compiled = _COMPILED["module"], _COMPILED["compiled"]
    with torch.no_grad():
        module.weight.copy_(as_torch(weight))
        if bias is not None:
            module.bias.copy_(as_torch(bias))
        output = compiled(x)
    return output.numpy() if as_numpy else output
