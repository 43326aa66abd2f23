"""Argument checking and output-size arithmetic shared by both reference convolutions.

Everything here mirrors what ``torch.nn.Conv2d`` / ``torch.nn.functional.conv2d`` accept and
refuse, with the same wording, so a case that expects an error can match either message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

IntOrPair = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int], str]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
PADDING_STRINGS = ("same", "valid")


@dataclass(frozen=True)
class ConvGeometry:
    """Every size a 2-D grouped convolution needs, worked out once.

    >>> g = plan_conv2d((1, 6, 1, 1), (6, 2, 1, 1), None, 1, 0, 1, 3)
    >>> (g.groups, g.in_channels_per_group, g.out_channels_per_group, g.output_shape)
    (3, 2, 2, (1, 6, 1, 1))
    """

    batch: int
    in_channels: int
    height: int
    width: int
    out_channels: int
    groups: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]  # (top, bottom, left, right): "same" may be uneven
    padding_mode: str
    unbatched: bool

    @property
    def in_channels_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_channels_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def padded_size(self) -> tuple[int, int]:
        top, bottom, left, right = self.pads
        return self.height + top + bottom, self.width + left + right

    @property
    def effective_kernel(self) -> tuple[int, int]:
        """The span a dilated kernel covers: d*(k-1)+1."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))  # type: ignore[return-value]

    @property
    def output_size(self) -> tuple[int, int]:
        return tuple(  # type: ignore[return-value]
            (padded - span) // s + 1
            for padded, span, s in zip(self.padded_size, self.effective_kernel, self.stride)
        )

    @property
    def output_shape(self) -> tuple[int, ...]:
        h_out, w_out = self.output_size
        if self.unbatched:
            return (self.out_channels, h_out, w_out)
        return (self.batch, self.out_channels, h_out, w_out)

    def group_of_output_channel(self, o: int) -> int:
        """Output channel ``o`` belongs to group ``o // (out_channels / groups)``."""
        return o // self.out_channels_per_group

    def input_channels_of_group(self, g: int) -> range:
        """Group ``g`` reads the contiguous input channels ``g*C_in/G ... (g+1)*C_in/G - 1``."""
        per_group = self.in_channels_per_group
        return range(g * per_group, (g + 1) * per_group)


def _pair(value: IntOrPair, name: str) -> tuple[int, int]:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an int or a pair of ints (h, w), got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be an int or a pair of ints (h, w), got {value!r}")


def _same_pads(kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    """'same' pads d*(k-1) in total; an odd total puts the extra row/column after, as torch does."""
    pads = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        pads += [total // 2, total - total // 2]
    return pads[0], pads[1], pads[2], pads[3]


def plan_conv2d(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    bias_shape: Sequence[int] | None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> ConvGeometry:
    """Check the arguments of a grouped 2-D convolution and return its geometry.

    Raises ``ValueError`` worded like torch for every configuration torch refuses.
    """
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups <= 0:
        raise ValueError("groups must be a positive integer")
    groups = int(groups)
    if isinstance(padding, str) and padding not in PADDING_STRINGS:
        raise ValueError(f"Invalid padding string {padding!r}, should be one of {set(PADDING_STRINGS)}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"padding_mode must be one of {set(PADDING_MODES)}, but got padding_mode={padding_mode!r}"
        )
    stride2 = _pair(stride, "stride")
    dilation2 = _pair(dilation, "dilation")
    if padding == "same" and stride2 != (1, 1):
        raise ValueError("padding='same' is not supported for strided convolutions")

    input_shape, weight_shape = tuple(input_shape), tuple(weight_shape)
    if len(input_shape) not in (3, 4):
        raise ValueError(
            "Expected 3D (unbatched) or 4D (batched) input to conv2d, "
            f"but got input of size: {list(input_shape)}"
        )
    if len(weight_shape) != 4:
        raise ValueError(f"weight must be 4-D (out_channels, in_channels/groups, kH, kW), got {list(weight_shape)}")
    unbatched = len(input_shape) == 3
    batch, in_channels, height, width = (1, *input_shape) if unbatched else input_shape
    out_channels, weight_in_channels, kh, kw = weight_shape

    if in_channels % groups != 0:
        raise ValueError("in_channels must be divisible by groups")
    if out_channels % groups != 0:
        raise ValueError("out_channels must be divisible by groups")
    if in_channels != weight_in_channels * groups:
        raise ValueError(
            f"Given groups={groups}, weight of size {list(weight_shape)}, expected input{list(input_shape)} "
            f"to have {weight_in_channels * groups} channels, but got {in_channels} channels instead"
        )
    if bias_shape is not None and tuple(bias_shape) != (out_channels,):
        raise ValueError(
            f"Given weight of size {list(weight_shape)}, expected bias to be 1-dimensional with "
            f"{out_channels} elements, but got bias of size {list(bias_shape)} instead"
        )
    if min(stride2) <= 0:
        raise ValueError("non-positive stride is not supported")
    if min(dilation2) <= 0:
        raise ValueError(f"dilation should be greater than zero, but got {list(dilation2)}")
    if kh <= 0 or kw <= 0:
        raise ValueError(f"kernel size should be greater than zero, but got kernel_height: {kh} kernel_width: {kw}")

    if padding == "same":
        pads = _same_pads((kh, kw), dilation2)
    elif padding == "valid":
        pads = (0, 0, 0, 0)
    else:
        ph, pw = _pair(padding, "padding")  # type: ignore[arg-type]
        if ph < 0 or pw < 0:
            raise ValueError("negative padding is not supported")
        pads = (ph, ph, pw, pw)

    if padding_mode == "reflect":
        for before, after, size, axis in ((pads[0], pads[1], height, 2), (pads[2], pads[3], width, 3)):
            if before >= size or after >= size:
                raise ValueError(
                    "Padding size should be less than the corresponding input dimension, but got: "
                    f"padding ({before}, {after}) at dimension {axis} of input {list(input_shape)}"
                )
    if padding_mode == "circular" and (max(pads[0], pads[1]) > height or max(pads[2], pads[3]) > width):
        raise ValueError("Padding value causes wrapping around more than once.")

    geometry = ConvGeometry(
        batch=batch, in_channels=in_channels, height=height, width=width,
        out_channels=out_channels, groups=groups, kernel=(kh, kw), stride=stride2,
        dilation=dilation2, pads=pads, padding_mode=padding_mode, unbatched=unbatched,
    )
    (padded_h, padded_w), (span_h, span_w) = geometry.padded_size, geometry.effective_kernel
    if padded_h < span_h or padded_w < span_w:
        raise ValueError(
            f"Calculated padded input size per channel: ({padded_h} x {padded_w}). "
            f"Kernel size: ({span_h} x {span_w}). Kernel size can't be greater than actual input size"
        )
    return geometry
