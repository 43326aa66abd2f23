"""The ``nn.Conv2d`` that the exporter and compiler built-ins start from: built from torch's
conv2d arguments as a user's model would hold it (in_channels = weight's C_in/groups x groups),
with the case's weight and bias copied in. ``nn.Conv2d`` checks its arguments as torch does, so
an invalid layer is refused here exactly where torch refuses it."""

from __future__ import annotations

from typing import Any


def as_torch(array: Any) -> Any:
    """A torch tensor of ``array``'s values and dtype; a NumPy ``ml_dtypes.bfloat16`` array (which
    ``torch.from_numpy`` refuses) is reinterpreted bit for bit as ``torch.bfloat16``."""
    import numpy as np
    import torch

    if isinstance(array, np.ndarray) and array.dtype.name == "bfloat16":
        return torch.from_numpy(np.ascontiguousarray(array).view(np.uint16)).view(torch.bfloat16)
    return torch.as_tensor(array)


def conv_module(
    weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any, groups: int, padding_mode: str
) -> Any:
    import torch

    weight = as_torch(weight)
    out_channels, in_per_group, kernel_h, kernel_w = weight.shape
    module = torch.nn.Conv2d(
        in_per_group * groups,
        out_channels,
        (kernel_h, kernel_w),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=bias is not None,
        padding_mode=padding_mode,  # type: ignore[arg-type]  # any mode the case names: torch judges it
        dtype=weight.dtype,
    )
    with torch.no_grad():
        module.weight.copy_(weight)
        if bias is not None and module.bias is not None:  # (the second: narrowing; bias=True made it)
            module.bias.copy_(as_torch(bias))
    return module.eval()
