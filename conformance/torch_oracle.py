"""The oracle: ``torch.nn.Conv2d`` with the case's weight and bias loaded, in the case's dtype."""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch

from .schema import Case

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


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


def build_module(case: Case, weight: np.ndarray, bias: np.ndarray | None) -> torch.nn.Conv2d:
    """``torch.nn.Conv2d(**case.conv)`` holding exactly the case's parameters.

    The parameters are replaced, not copied into: ``copy_`` would silently broadcast a weight
    of the wrong shape, while a replaced parameter of the wrong shape makes torch refuse.
    """
    kwargs = case.conv.torch_kwargs()
    kwargs = {key: tuple(value) if isinstance(value, list) else value for key, value in kwargs.items()}
    module = torch.nn.Conv2d(**kwargs, dtype=TORCH_DTYPES[case.dtype])
    module.weight = torch.nn.Parameter(torch.from_numpy(np.array(weight)), requires_grad=False)
    if bias is not None:
        module.bias = torch.nn.Parameter(torch.from_numpy(np.array(bias)), requires_grad=False)
    return module


def torch_forward(case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Run the case through torch; raises whatever torch raises for an invalid layer."""
    module = build_module(case, weight, bias)
    with torch.no_grad(), single_threaded():
        return module(torch.from_numpy(np.array(x))).numpy()


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
    buffer = torch.zeros(*reversed_shape[:-1], 2 * reversed_shape[-1], dtype=tensor.dtype)
    view = buffer[..., ::2]                                     # (kW, kH, C_in/G, C_out), stride 2 on C_out
    view.copy_(tensor.permute(*reversed(range(tensor.dim()))))
    return view.permute(*reversed(range(tensor.dim())))         # (C_out, C_in/G, kH, kW), non-contiguous


def torch_forward_variant(case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                          variant: str) -> np.ndarray:
    """Run the case through torch in one memory layout (``schema.TORCH_VARIANTS``).

    * ``contiguous``: :func:`torch_forward`, the forward oracle;
    * ``channels_last``: module (weight) and a batched input in ``torch.channels_last`` (NHWC in memory);
      an unbatched 3-D input has no channels_last form and stays as it is;
    * ``noncontiguous_weight``: the weight is a strided view (see :func:`strided_copy`).
    """
    if variant == "contiguous":
        return torch_forward(case, x, weight, bias)
    module = build_module(case, weight, bias)
    inputs = torch.from_numpy(np.array(x))
    if variant == "channels_last":
        module = module.to(memory_format=torch.channels_last)
        if inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
    elif variant == "noncontiguous_weight":
        module.weight = torch.nn.Parameter(strided_copy(module.weight.data), requires_grad=False)
    else:
        raise ValueError(f"unknown torch variant {variant!r}")
    with torch.no_grad(), single_threaded():
        return module(inputs).contiguous().numpy()
