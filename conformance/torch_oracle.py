"""The oracle: ``torch.nn.Conv2d`` with the case's weight and bias loaded, in the case's dtype,
on the chosen device (``cpu`` unless ``--device cuda``)."""
from __future__ import annotations

import numpy as np
import torch

from .schema import Case

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                "bfloat16": torch.bfloat16}


def to_torch(array: np.ndarray, case: Case, device: str = "cpu") -> torch.Tensor:
    """A case array as a torch tensor in the case dtype (bfloat16 arrays are float32 holding
    bfloat16 values, so the conversion is exact)."""
    return torch.from_numpy(np.array(array)).to(device=device, dtype=TORCH_DTYPES[case.dtype])


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """Back to NumPy on the CPU; bfloat16 becomes float32 (exactly: NumPy has no bfloat16)."""
    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


def build_module(case: Case, weight: np.ndarray, bias: np.ndarray | None, device: str = "cpu",
                 requires_grad: bool = False) -> torch.nn.Conv2d:
    """``torch.nn.Conv2d(**case.conv)`` holding exactly the case's parameters.

    The parameters are replaced, not copied into: ``copy_`` would silently broadcast a weight
    of the wrong shape, while a replaced parameter of the wrong shape makes torch refuse.
    """
    kwargs = case.conv.torch_kwargs()
    kwargs = {key: tuple(value) if isinstance(value, list) else value for key, value in kwargs.items()}
    module = torch.nn.Conv2d(**kwargs, dtype=TORCH_DTYPES[case.dtype], device=device)
    module.weight = torch.nn.Parameter(to_torch(weight, case, device), requires_grad=requires_grad)
    if bias is not None:
        module.bias = torch.nn.Parameter(to_torch(bias, case, device), requires_grad=requires_grad)
    return module


def torch_forward(case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                  device: str = "cpu") -> np.ndarray:
    """Run the case through torch; raises whatever torch raises for an invalid layer."""
    module = build_module(case, weight, bias, device)
    with torch.no_grad():
        return to_numpy(module(to_torch(x, case, device)))


def torch_backward(case: Case, grad_output: np.ndarray, x: np.ndarray, weight: np.ndarray,
                   bias: np.ndarray | None, device: str = "cpu") -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Autograd's ``(grad_input, grad_weight, grad_bias)`` of ``sum(output * grad_output)``."""
    module = build_module(case, weight, bias, device, requires_grad=True)
    x_tensor = to_torch(x, case, device).requires_grad_(True)
    output = module(x_tensor)
    output.backward(to_torch(grad_output, case, device))  # d(sum(output * dy))/d(output) = dy
    grad_bias = None if bias is None else to_numpy(module.bias.grad)
    return to_numpy(x_tensor.grad), to_numpy(module.weight.grad), grad_bias
