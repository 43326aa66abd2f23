"""Argument checking and output-size arithmetic shared by every reference convolution.

One set of rules for 1, 2 and 3 spatial dimensions (``d``) and for the transposed convolutions.
Everything mirrors what torch 2.13 (``torch.nn.Conv{d}d``, ``torch.nn.ConvTranspose{d}d`` and
their ``torch.nn.functional`` forms) accepts and refuses, with torch's wording, so a case that
expects an error can match either message. Where torch words a message by its internal 2-d view
of a 1-d convolution ("kernel_height: 1 kernel_width: 0"), so does this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

IntOrTuple = int | Sequence[int]
IntOrPair = IntOrTuple  # the 2-d name, kept for the modules that import it
Padding = int | Sequence[int] | str

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
PADDING_STRINGS = ("same", "valid")
SPATIAL_DIMS = (1, 2, 3)


@dataclass(frozen=True)
class ConvGeometry:
    """Every size a grouped convolution with ``d = len(spatial)`` spatial dimensions needs.

    ``pads`` is flat, two numbers per spatial dimension in order: (before_0, after_0, before_1,
    after_1, ...); for 2-d that is (top, bottom, left, right). "same" may pad unevenly.
    The derived sizes are cached: the fast paths read them many times per call.

    >>> g = plan_conv2d((1, 6, 1, 1), (6, 2, 1, 1), None, 1, 0, 1, 3)
    >>> (g.groups, g.in_channels_per_group, g.out_channels_per_group, g.output_shape)
    (3, 2, 2, (1, 6, 1, 1))
    >>> plan_conv((8, 5), (4, 2, 3), None, 2, 1, 1, 4, spatial_dims=1).output_shape   # unbatched 1-d
    (4, 3)
    """

    batch: int
    in_channels: int
    spatial: tuple[int, ...]
    out_channels: int
    groups: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[int, ...]
    padding_mode: str
    unbatched: bool

    @property
    def spatial_dims(self) -> int:
        return len(self.spatial)

    @property
    def height(self) -> int:
        """The 2-d name of the second-to-last spatial size (1 for a 1-d convolution, as torch views it)."""
        return self.spatial[-2] if self.spatial_dims >= 2 else 1

    @property
    def width(self) -> int:
        """The 2-d name of the last spatial size."""
        return self.spatial[-1]

    @cached_property
    def pad_pairs(self) -> tuple[tuple[int, int], ...]:
        """``((before_0, after_0), (before_1, after_1), ...)``."""
        return tuple(zip(self.pads[0::2], self.pads[1::2], strict=False))

    @property
    def in_channels_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_channels_per_group(self) -> int:
        return self.out_channels // self.groups

    @cached_property
    def padded_size(self) -> tuple[int, ...]:
        return tuple(size + before + after for size, (before, after) in zip(self.spatial, self.pad_pairs, strict=False))

    @cached_property
    def effective_kernel(self) -> tuple[int, ...]:
        """The span a dilated kernel covers: d*(k-1)+1."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation, strict=False))

    @cached_property
    def output_size(self) -> tuple[int, ...]:
        return tuple(
            (padded - span) // s + 1
            for padded, span, s in zip(self.padded_size, self.effective_kernel, self.stride, strict=False)
        )

    @property
    def output_shape(self) -> tuple[int, ...]:
        if self.unbatched:
            return (self.out_channels, *self.output_size)
        return (self.batch, self.out_channels, *self.output_size)

    @property
    def batched_input_shape(self) -> tuple[int, ...]:
        """(N, C_in, *spatial): the input with an unbatched one's batch axis of 1 added."""
        return (self.batch, self.in_channels, *self.spatial)

    def group_of_output_channel(self, o: int) -> int:
        """Output channel ``o`` belongs to group ``o // (out_channels / groups)``."""
        return o // self.out_channels_per_group

    def input_channels_of_group(self, g: int) -> range:
        """Group ``g`` reads the contiguous input channels ``g*C_in/G ... (g+1)*C_in/G - 1``."""
        per_group = self.in_channels_per_group
        return range(g * per_group, (g + 1) * per_group)


@dataclass(frozen=True)
class TransposedGeometry:
    """A transposed convolution, described by the convolution it is the input-gradient of.

    ``conv`` is that convolution: its input is our output (N, C_out, *output_size), its weight is
    our weight unchanged ((C_in, C_out/G, *k) read as (conv out_channels, conv in_channels/G, *k)),
    its output is our input, extended by zeros at the end of a dimension where output_padding
    reaches a further output position (``conv.output_size >= input_size``).

    >>> t = plan_conv_transpose((1, 6, 1, 1), (6, 2, 1, 1), None, 1, 0, 0, 3, 1, spatial_dims=2)
    >>> t.output_shape, t.conv.in_channels, t.conv.out_channels
    ((1, 6, 1, 1), 6, 6)
    """

    conv: ConvGeometry
    input_size: tuple[int, ...]
    output_padding: tuple[int, ...]

    @property
    def in_channels(self) -> int:
        return self.conv.out_channels

    @property
    def out_channels(self) -> int:
        return self.conv.in_channels

    @cached_property
    def output_size(self) -> tuple[int, ...]:
        return self.conv.spatial

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.conv.batched_input_shape[1:] if self.conv.unbatched else self.conv.batched_input_shape

    @property
    def input_shape(self) -> tuple[int, ...]:
        batched = (self.conv.batch, self.in_channels, *self.input_size)
        return batched[1:] if self.conv.unbatched else batched


def _dim_names(spatial_dims: int) -> tuple[str, ...]:
    return ("depth", "height", "width")[3 - max(spatial_dims, 2) :]


def _torch_view(values: Sequence[int], spatial_dims: int, neutral: int) -> tuple[int, ...]:
    """torch words a 1-d convolution's messages by its 2-d view: a height of ``neutral`` added."""
    return (neutral, *values) if spatial_dims == 1 else tuple(values)


def _named(label: str, values: Sequence[int], spatial_dims: int, neutral: int, separator: str = " ") -> str:
    """``"stride_height: 2 stride_width: 1"``, torch's per-dimension wording."""
    view = _torch_view(values, spatial_dims, neutral)
    return separator.join(f"{label}_{name}: {v}" for name, v in zip(_dim_names(spatial_dims), view, strict=False))


def _per_dim(value: IntOrTuple, name: str, spatial_dims: int) -> tuple[int, ...]:
    """An int, or a list/tuple of ``spatial_dims`` ints, as a tuple of ``spatial_dims`` ints."""

    def is_int(v: object) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

    if is_int(value):
        return (int(value),) * spatial_dims  # type: ignore[arg-type]
    if isinstance(value, (list, tuple)) and len(value) == spatial_dims and all(is_int(v) for v in value):
        return tuple(int(v) for v in value)
    shown = list(value) if isinstance(value, (list, tuple)) else value
    raise ValueError(
        f"expected {name} to be a single integer value or a list of {spatial_dims} values to match "
        f"the convolution dimensions, but got {name}={shown}"
    )


def _same_pads(kernel: Sequence[int], dilation: Sequence[int]) -> tuple[int, ...]:
    """'same' pads d*(k-1) in total; an odd total puts the extra element after, as torch does."""
    pads: list[int] = []
    for k, d in zip(kernel, dilation, strict=False):
        total = d * (k - 1)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def _check_groups(groups: object) -> int:
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)) or groups <= 0:
        raise ValueError("groups must be a positive integer")
    return int(groups)


def _check_ranks(input_shape: tuple[int, ...], weight_shape: tuple[int, ...], spatial_dims: int, op_name: str) -> None:
    if spatial_dims not in SPATIAL_DIMS:
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
    if len(input_shape) not in (spatial_dims + 1, spatial_dims + 2):
        raise ValueError(
            f"Expected {spatial_dims + 1}D (unbatched) or {spatial_dims + 2}D (batched) input to {op_name}, "
            f"but got input of size: {list(input_shape)}"
        )
    if len(weight_shape) != spatial_dims + 2 and len(weight_shape) == len(input_shape):
        raise ValueError(
            f"{op_name} expects a {spatial_dims + 2}-dimensional weight, but got weight of size {list(weight_shape)}"
        )
    if len(weight_shape) != spatial_dims + 2:
        raise ValueError(
            f"Expected {len(weight_shape)}-dimensional input for {len(weight_shape)}-dimensional weight "
            f"{list(weight_shape)}, but got {len(input_shape)}-dimensional input of size {list(input_shape)} instead"
        )


def _check_steps(
    stride: tuple[int, ...], dilation: tuple[int, ...], kernel: tuple[int, ...], spatial_dims: int, transposed: bool
) -> None:
    if min(stride) <= 0:
        raise ValueError("non-positive stride is not supported")
    if min(dilation) <= 0:
        if transposed:  # torch's transposed path names each dimension, the convolution lists them
            shown = _named("dilation", dilation, spatial_dims, 1, separator=", ")
        else:
            shown = str(list(_torch_view(dilation, spatial_dims, 1)))
        raise ValueError(f"dilation should be greater than zero, but got {shown}")
    if min(kernel) <= 0:
        if spatial_dims == 3:
            shown = " x ".join(map(str, kernel)) + " (TxHxW)"
            raise ValueError(f"kernel size should be greater than zero, but got: {shown}")
        raise ValueError(
            f"kernel size should be greater than zero, but got {_named('kernel', kernel, spatial_dims, 1)}"
        )


def plan_conv(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    bias_shape: Sequence[int] | None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    spatial_dims: int,
) -> ConvGeometry:
    """Check the arguments of a grouped convolution with ``spatial_dims`` spatial dimensions and
    return its geometry. Raises ``ValueError`` worded like torch for every configuration torch refuses.
    """
    op_name = f"conv{spatial_dims}d"
    groups = _check_groups(groups)
    if isinstance(padding, str) and padding not in PADDING_STRINGS:
        raise ValueError(f"Invalid padding string {padding!r}, should be one of {set(PADDING_STRINGS)}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {set(PADDING_MODES)}, but got padding_mode={padding_mode!r}")
    input_shape, weight_shape = tuple(input_shape), tuple(weight_shape)
    _check_ranks(input_shape, weight_shape, spatial_dims, op_name)
    strides = _per_dim(stride, "stride", spatial_dims)
    dilations = _per_dim(dilation, "dilation", spatial_dims)
    if padding == "same" and strides != (1,) * spatial_dims:
        raise ValueError("padding='same' is not supported for strided convolutions")

    unbatched = len(input_shape) == spatial_dims + 1
    batch, in_channels, *spatial = (1, *input_shape) if unbatched else input_shape
    out_channels, weight_in_channels, *kernel = weight_shape

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
    _check_steps(strides, dilations, tuple(kernel), spatial_dims, transposed=False)

    if padding == "same":
        pads = _same_pads(kernel, dilations)
    elif padding == "valid":
        pads = (0,) * (2 * spatial_dims)
    else:
        per_dim = _per_dim(padding, "padding", spatial_dims)  # type: ignore[arg-type]
        if min(per_dim) < 0:
            raise ValueError("negative padding is not supported")
        pads = tuple(p for p in per_dim for _ in (0, 1))  # (p0, p0, p1, p1, ...)

    pad_pairs = list(zip(pads[0::2], pads[1::2], strict=False))
    if padding_mode == "reflect":
        for axis, ((before, after), size) in enumerate(zip(pad_pairs, spatial, strict=False), start=2):
            if before >= size or after >= size:
                raise ValueError(
                    "Padding size should be less than the corresponding input dimension, but got: "
                    f"padding ({before}, {after}) at dimension {axis} of input {list(input_shape)}"
                )
    if padding_mode == "circular" and any(max(pair) > size for pair, size in zip(pad_pairs, spatial, strict=False)):
        raise ValueError("Padding value causes wrapping around more than once.")

    geometry = ConvGeometry(
        batch=batch,
        in_channels=in_channels,
        spatial=tuple(spatial),
        out_channels=out_channels,
        groups=groups,
        kernel=tuple(kernel),
        stride=strides,
        dilation=dilations,
        pads=pads,
        padding_mode=padding_mode,
        unbatched=unbatched,
    )
    if any(padded < span for padded, span in zip(geometry.padded_size, geometry.effective_kernel, strict=False)):
        raise ValueError(
            f"Calculated padded input size per channel: ({' x '.join(map(str, geometry.padded_size))}). "
            f"Kernel size: ({' x '.join(map(str, geometry.effective_kernel))}). "
            "Kernel size can't be greater than actual input size"
        )
    _check_empty_spatial(batch, in_channels, spatial, spatial_dims)
    return geometry


def _check_empty_spatial(batch: int, channels: int, spatial: Sequence[int], spatial_dims: int) -> None:
    """torch computes on an empty batch or zero channels, but refuses a zero-size spatial dimension
    of a non-empty input, even where padding would make room for the kernel."""
    if batch > 0 and channels > 0 and 0 in spatial:
        shape = [batch, channels, *_torch_view(spatial, spatial_dims, 1)]
        raise ValueError(f"Only zero batch or zero channel inputs are supported, but got input shape: {shape}")


def plan_conv2d(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    bias_shape: Sequence[int] | None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> ConvGeometry:
    """:func:`plan_conv` for two spatial dimensions (the name the rest of the project uses)."""
    return plan_conv(
        input_shape, weight_shape, bias_shape, stride, padding, dilation, groups, padding_mode, spatial_dims=2
    )


def plan_conv_transpose(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    bias_shape: Sequence[int] | None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    padding_mode: str = "zeros",
    *,
    spatial_dims: int,
) -> TransposedGeometry:
    """Check the arguments of a grouped transposed convolution (torch's argument order) and return
    its geometry. Output size per dimension: (S - 1)*s - 2p + d*(k - 1) + output_padding + 1.

    >>> plan_conv_transpose((1, 4, 5), (4, 1, 4), None, 2, 1, 1, 4, 1, spatial_dims=1).output_shape
    (1, 4, 11)
    """
    op_name = f"conv_transpose{spatial_dims}d"
    if padding_mode != "zeros":
        raise ValueError(f'Only "zeros" padding mode is supported for ConvTranspose{spatial_dims}d')
    groups = _check_groups(groups)
    input_shape, weight_shape = tuple(input_shape), tuple(weight_shape)
    _check_ranks(input_shape, weight_shape, spatial_dims, op_name)
    if isinstance(padding, str):
        raise ValueError(f"{op_name}(): argument 'padding' must be tuple of ints, not str")
    strides = _per_dim(stride, "stride", spatial_dims)
    dilations = _per_dim(dilation, "dilation", spatial_dims)
    pads = _per_dim(padding, "padding", spatial_dims)
    output_pads = _per_dim(output_padding, "output_padding", spatial_dims)

    unbatched = len(input_shape) == spatial_dims + 1
    batch, in_channels, *spatial = (1, *input_shape) if unbatched else input_shape
    weight_in_channels, out_per_group, *kernel = weight_shape
    out_channels = out_per_group * groups

    if in_channels % groups != 0:
        raise ValueError("in_channels must be divisible by groups")
    if weight_in_channels % groups != 0:
        raise ValueError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
            f"but got weight of size [{list(weight_shape)}] instead"
        )
    if in_channels != weight_in_channels:
        raise ValueError(
            f"Given transposed=1, weight of size {list(weight_shape)}, expected input{list(input_shape)} "
            f"to have {weight_in_channels} channels, but got {in_channels} channels instead"
        )
    if bias_shape is not None and tuple(bias_shape) != (out_channels,):
        raise ValueError(
            f"Given transposed=1, weight of size {list(weight_shape)}, expected bias to be 1-dimensional with "
            f"{out_channels} elements, but got bias of size {list(bias_shape)} instead"
        )
    _check_steps(strides, dilations, tuple(kernel), spatial_dims, transposed=True)
    if min(pads) < 0:
        raise ValueError("negative padding is not supported")
    if min(output_pads) < 0:
        raise ValueError("negative output_padding is not supported")
    if any(op >= s and op >= d for op, s, d in zip(output_pads, strides, dilations, strict=False)):
        raise ValueError(
            "output padding must be smaller than either stride or dilation, but got "
            f"{_named('output_padding', output_pads, spatial_dims, 0)} {_named('stride', strides, spatial_dims, 1)} "
            f"{_named('dilation', dilations, spatial_dims, 1)}"
        )
    _check_empty_spatial(batch, in_channels, spatial, spatial_dims)
    output_size = tuple(
        (size - 1) * s - 2 * p + d * (k - 1) + op + 1
        for size, s, p, d, k, op in zip(spatial, strides, pads, dilations, kernel, output_pads, strict=False)
    )
    # torch skips this check for an empty batch and returns a (0, C, ..., 0, ...) tensor (a
    # negative size still fails there, with a reshape error): so do we, with this message.
    if min(output_size) < 1 and not (batch == 0 and min(output_size) == 0):
        raise ValueError(
            f"Given input size per channel: ({' x '.join(map(str, _torch_view(spatial, spatial_dims, 1)))}). "
            f"Calculated output size per channel: ({' x '.join(map(str, _torch_view(output_size, spatial_dims, 1)))}). "
            "Output size is too small"
        )
    conv = ConvGeometry(
        batch=batch,
        in_channels=out_channels,
        spatial=output_size,
        out_channels=weight_in_channels,
        groups=groups,
        kernel=tuple(kernel),
        stride=strides,
        dilation=dilations,
        pads=tuple(p for p in pads for _ in (0, 1)),
        padding_mode="zeros",
        unbatched=unbatched,
    )
    return TransposedGeometry(conv=conv, input_size=tuple(spatial), output_padding=output_pads)
