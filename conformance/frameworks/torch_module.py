"""The ``nn.Conv2d`` that the exporter and compiler built-ins start from: built from torch's
conv2d arguments as a user's model would hold it (in_channels = weight's C_in/groups x groups),
with the case's weight and bias copied in. ``nn.Conv2d`` checks its arguments as torch does, so
an invalid layer is refused here exactly where torch refuses it. :func:`layer_module` builds any
of the six layers (``nn.Conv1d/2d/3d``, ``nn.ConvTranspose1d/2d/3d``) the same way (``executorch``)."""

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


def layer_module(
    dims: int,
    transposed: bool,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    padding_mode: str = "zeros",
    output_padding: Any = 0,
) -> Any:
    """The ``nn.Conv{dims}d`` (or ``nn.ConvTranspose{dims}d``) holding ``weight`` and ``bias``, as a
    user's model holds that layer: channels and kernel read from the weight (``(C_out, C_in/g, *k)``,
    transposed ``(C_in, C_out/g, *k)``), everything else passed as given, so torch's own constructor
    and forward judge the arguments (an invalid layer is refused where torch refuses it; a transposed
    layer gets ``padding_mode`` too, which its constructor refuses unless "zeros"). A weight of another
    rank is no weight such a layer holds: Unsupported.

    >>> import torch
    >>> layer_module(1, True, torch.ones(4, 3, 2), None, 2, 0, 1, 2)
    ConvTranspose1d(4, 6, kernel_size=(2,), stride=(2,), groups=2, bias=False)
    """
    import torch

    from conformance.judging.outcomes import Unsupported

    weight = as_torch(weight)
    if weight.dim() != dims + 2:
        kind = f"ConvTranspose{dims}d" if transposed else f"Conv{dims}d"
        raise Unsupported(f"an nn.{kind} holds a {dims + 2}-D weight; a {weight.dim()}-D one is no such layer")
    first, second, *kernel = (int(size) for size in weight.shape)
    common: dict[str, Any] = dict(
        stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias is not None, dtype=weight.dtype
    )
    if transposed:
        module = getattr(torch.nn, f"ConvTranspose{dims}d")(
            first, second * groups, tuple(kernel), output_padding=output_padding, padding_mode=padding_mode, **common
        )
    else:
        module = getattr(torch.nn, f"Conv{dims}d")(
            second * groups, first, tuple(kernel), padding_mode=padding_mode, **common
        )
    with torch.no_grad():
        module.weight.copy_(weight)
        if bias is not None and module.bias is not None:
            module.bias.copy_(as_torch(bias))
    return module.eval()
