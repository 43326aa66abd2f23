"""The oracle: ``torch.nn.Conv2d`` with the case's weight and bias loaded, in the case's dtype,
on the chosen device (``cpu`` unless ``--device cuda``), in one of several memory layouts."""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch

from .schema import Case

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                "bfloat16": torch.bfloat16}


class _Conv2dWithoutInit(torch.nn.Conv2d):
    """``torch.nn.Conv2d`` whose constructor skips the random (kaiming) initialisation: the
    parameters are replaced by the case's right after, and on a tiny case that initialisation
    costs as much as the convolution. Argument checks and forward are torch's own."""

    def reset_parameters(self) -> None:
        pass


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one intra-op thread, then restore the caller's setting.

    The oracle's tensors are small: on a busy machine the thread pool's hand-offs cost 10-20 ms per
    call, a hundred times the arithmetic, and one thread also keeps torch's summation order the
    same on every machine.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
    module = _Conv2dWithoutInit(**kwargs, dtype=TORCH_DTYPES[case.dtype], device=device)
    module.weight = torch.nn.Parameter(to_torch(weight, case, device), requires_grad=requires_grad)
    if bias is not None:
        module.bias = torch.nn.Parameter(to_torch(bias, case, device), requires_grad=requires_grad)
    elif module.bias is not None:  # never left uninitialised: the case must supply what the layer has
        raise ValueError("the layer has a bias (conv.bias: true) but the case supplied none")
    return module


def torch_forward(case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                  device: str = "cpu") -> np.ndarray:
    """Run the case through torch; raises whatever torch raises for an invalid layer."""
    module = build_module(case, weight, bias, device)
    with torch.no_grad(), single_threaded():
        return to_numpy(module(to_torch(x, case, device)))


def torch_backward(case: Case, grad_output: np.ndarray, x: np.ndarray, weight: np.ndarray,
                   bias: np.ndarray | None, device: str = "cpu") -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Autograd's ``(grad_input, grad_weight, grad_bias)`` of ``sum(output * grad_output)``."""
    module = build_module(case, weight, bias, device, requires_grad=True)
    x_tensor = to_torch(x, case, device).requires_grad_(True)
    with single_threaded():
        output = module(x_tensor)
        output.backward(to_torch(grad_output, case, device))  # d(sum(output * dy))/d(output) = dy
    grad_bias = None if bias is None else to_numpy(module.bias.grad)
    return to_numpy(x_tensor.grad), to_numpy(module.weight.grad), grad_bias


def strided_copy(tensor: torch.Tensor) -> torch.Tensor:
    """The same values as ``tensor`` in a non-contiguous layout: axes stored in reverse order, and the
    first axis every other element of a buffer twice as long (so even a (C, 1, 1, 1) depthwise weight
    is a real strided view, not one that torch may treat as contiguous).

    >>> t = torch.arange(24.0).reshape(2, 3, 2, 2)
    >>> s = strided_copy(t)
    >>> bool(torch.equal(s, t)), s.is_contiguous()
    (True, False)
    """
    reversed_shape = tuple(reversed(tensor.shape))
    buffer = torch.zeros(*reversed_shape[:-1], 2 * reversed_shape[-1], dtype=tensor.dtype, device=tensor.device)
    view = buffer[..., ::2]                                     # (kW, kH, C_in/G, C_out), stride 2 on C_out
    view.copy_(tensor.permute(*reversed(range(tensor.dim()))))
    return view.permute(*reversed(range(tensor.dim())))         # (C_out, C_in/G, kH, kW), non-contiguous


def torch_forward_variant(case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                          variant: str, device: str = "cpu") -> np.ndarray:
    """Run the case through torch in one memory layout (``schema.TORCH_VARIANTS``).

    * ``contiguous``: :func:`torch_forward`, the forward oracle;
    * ``channels_last``: module (weight) and a batched input in ``torch.channels_last`` (NHWC in memory);
      an unbatched 3-D input has no channels_last form and stays as it is;
    * ``noncontiguous_weight``: the weight is a strided view (see :func:`strided_copy`).
    """
    if variant == "contiguous":
        return torch_forward(case, x, weight, bias, device)
    module = build_module(case, weight, bias, device)
    inputs = to_torch(x, case, device)
    if variant == "channels_last":
        module = module.to(memory_format=torch.channels_last)
        if inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
    elif variant == "noncontiguous_weight":
        module.weight = torch.nn.Parameter(strided_copy(module.weight.data), requires_grad=False)
    else:
        raise ValueError(f"unknown torch variant {variant!r}")
    with torch.no_grad(), single_threaded():
        return to_numpy(module(inputs).contiguous())
