"""The oracle: ``torch.nn.Conv2d`` with the case's weight and bias loaded, in the case's dtype."""
from __future__ import annotations

import numpy as np
import torch

from .schema import Case

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class _Conv2dWithoutInit(torch.nn.Conv2d):
    """``torch.nn.Conv2d`` whose constructor skips the random (kaiming) initialisation: the
    parameters are replaced by the case's right after, and on a tiny case that initialisation
    costs as much as the convolution. Argument checks and forward are torch's own."""

    def reset_parameters(self) -> None:
        pass


def build_module(case: Case, weight: np.ndarray, bias: np.ndarray | None) -> torch.nn.Conv2d:
    """``torch.nn.Conv2d(**case.conv)`` holding exactly the case's parameters.

    The parameters are replaced, not copied into: ``copy_`` would silently broadcast a weight
    of the wrong shape, while a replaced parameter of the wrong shape makes torch refuse.
    """
    kwargs = case.conv.torch_kwargs()
    kwargs = {key: tuple(value) if isinstance(value, list) else value for key, value in kwargs.items()}
    module = _Conv2dWithoutInit(**kwargs, dtype=TORCH_DTYPES[case.dtype])
    module.weight = torch.nn.Parameter(torch.from_numpy(np.array(weight)), requires_grad=False)
    if bias is not None:
        module.bias = torch.nn.Parameter(torch.from_numpy(np.array(bias)), requires_grad=False)
    elif module.bias is not None:  # never left uninitialised: the case must supply what the layer has
        raise ValueError("the layer has a bias (conv.bias: true) but the case supplied none")
    return module


def torch_forward(case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Run the case through torch; raises whatever torch raises for an invalid layer."""
    module = build_module(case, weight, bias)
    with torch.no_grad():
        return module(torch.from_numpy(np.array(x))).numpy()
