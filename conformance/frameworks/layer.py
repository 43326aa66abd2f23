"""What every adapter does the same way: read torch's conv2d arguments into the explicit numbers a
framework op takes. Only arithmetic on the layer's configuration happens here (pad amounts, pairs);
never on the tensors: padding and convolving are each framework's own ops.

torch's conventions, which every adapter translates from:

* input NCHW ``(N, C_in, H, W)`` (or unbatched ``(C_in, H, W)``), weight OIHW
  ``(C_out, C_in/groups, kH, kW)``, output NCHW;
* ``padding``: an int, a pair ``(pH, pW)`` (each side of that dimension gets it), or "valid" / "same";
  "same" splits the total ``dilation * (k - 1)`` as ``total // 2`` before and the rest after;
* ``padding_mode`` "zeros" pads inside the convolution; "reflect", "replicate" and "circular" pad
  the input first (``F.pad``) by the same amounts, then convolve with no padding.

>>> explicit_padding("same", (3, 4), (2, 1))
((2, 2), (1, 2))
>>> explicit_padding((1, 0), (3, 3), 1)
((1, 1), (0, 0))
>>> pair(2), pair((1, 3))
((2, 2), (1, 3))
"""
from __future__ import annotations

from typing import Any, Sequence

from ..outcomes import Unsupported

Pads = tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right))
TORCH_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    """torch's int-or-pair argument as a pair (an int applies to both H and W)."""
    if isinstance(value, int):
        return (value, value)
    values = tuple(int(v) for v in value)
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) != 2:
        raise Unsupported(f"a 2-D convolution takes one or two values per argument, got {tuple(value)}")
    return values  # type: ignore[return-value]


def explicit_padding(padding: Any, kernel_hw: Sequence[int], dilation: int | Sequence[int]) -> Pads:
    """``padding`` as ``((top, bottom), (left, right))``, by torch's rule (see the module docstring).
    A string torch does not define has nothing to translate to: Unsupported."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            totals = [d * (k - 1) for d, k in zip(pair(dilation), kernel_hw)]
            return tuple((total // 2, total - total // 2) for total in totals)  # type: ignore[return-value]
        raise Unsupported(f"padding={padding!r} is no padding torch defines; there is nothing to translate it to")
    pad_h, pad_w = pair(padding)
    return ((pad_h, pad_h), (pad_w, pad_w))


def check_padding_mode(padding_mode: str, framework_modes: dict[str, str], framework: str) -> str:
    """The framework's name for torch's ``padding_mode`` (e.g. replicate -> "edge"); Unsupported
    when the framework has no such pad."""
    if padding_mode not in framework_modes:
        known = ", ".join(sorted(framework_modes)) or "none"
        raise Unsupported(f"{framework} has no padding mode equivalent to torch's {padding_mode!r} (it has: {known})")
    return framework_modes[padding_mode]


def require_batched(input: Any, op: str) -> None:
    """Framework conv ops take a batch dimension; torch also takes an unbatched (C, H, W) input,
    which they cannot express (an adapter adding the batch itself would hide what the op does)."""
    if len(input.shape) == 3:
        raise Unsupported(f"{op} takes a batched (N, C, H, W) input; torch's unbatched (C, H, W) form has no "
                          "equivalent")


def kernel_hw(weight: Any) -> tuple[int, int]:
    """(kH, kW) of an OIHW weight (the last two dimensions; whatever its rank, for the op to judge)."""
    shape = tuple(weight.shape)
    return (int(shape[-2]), int(shape[-1])) if len(shape) >= 2 else (1, 1)
