"""The arithmetic behind ``explain``: how ``groups`` splits the channels, and any output element
written out as per-channel sums of products, for every op (Conv1d/2d/3d, ConvTranspose1d/2d/3d).

Indices are tuples over the spatial dimensions, never a hard-coded (h, w). The sums are computed
here, element by element, straight from the definition (so they check the reference and torch
rather than repeat them):

* convolution:  ``y[n, o, *i] = b[o] + Σ_{c in group g} Σ_k x_padded[n, c, i·s + k·d] · W[o, c − g·C_in/G, k]``
* transposed:   ``y[n, o, *i] = b[o] + Σ_{c in group g} Σ_{k: (i + p − k·d) divisible by s, in range}
  x[n, c, (i + p − k·d)/s] · W[c, o − g·C_out/G, k]``

with ``g = o // (C_out/G)`` the output channel's group.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from conformance.cases.case_tensors import CaseTensors
from conformance.cases.geometry import (
    group_of,
    is_transposed,
    layer_kind,
    output_lengths,
    per_dim,
    same_padding,
)
from conformance.cases.schema import Case, ConvConfig

# ---------------------------------------------------------------------------------------------
# The grouping


@dataclass(frozen=True)
class Grouping:
    """How ``groups`` splits the channels: G blocks of C_in/G inputs and C_out/G outputs each.

    >>> g = Grouping("Conv2d", groups=3, in_channels=6, out_channels=6)
    >>> g.group_of_output(5), list(g.inputs_of_group(2)), g.kind
    (2, [4, 5], 'grouped')
    """

    op: str  # the torch.nn module: Conv2d, ConvTranspose2d, ...
    groups: int
    in_channels: int
    out_channels: int

    @property
    def transposed(self) -> bool:
        return is_transposed(self.op)

    @property
    def in_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def depth_multiplier(self) -> int:
        """out_channels/in_channels of a depthwise layer (1 when each input feeds one output)."""
        return self.out_channels // self.in_channels if self.in_channels else 0

    @property
    def kind(self) -> str:
        """'dense' (groups=1), 'depthwise' (groups = in_channels) or 'grouped' (geometry.layer_kind)."""
        return layer_kind(self.groups, self.in_channels)

    def group_of_output(self, o: int) -> int:
        return group_of(o, channels=self.out_channels, groups=self.groups)

    def group_of_input(self, c: int) -> int:
        return group_of(c, channels=self.in_channels, groups=self.groups)

    def inputs_of_group(self, g: int) -> range:
        return range(g * self.in_per_group, (g + 1) * self.in_per_group)

    def outputs_of_group(self, g: int) -> range:
        return range(g * self.out_per_group, (g + 1) * self.out_per_group)

    def reads(self) -> np.ndarray:
        """(out_channels, in_channels) bool: does output channel o read input channel c?"""
        out_group = np.arange(self.out_channels) // self.out_per_group  # (C_out,)
        in_group = np.arange(self.in_channels) // self.in_per_group  # (C_in,)
        return out_group[:, None] == in_group[None, :]


# ---------------------------------------------------------------------------------------------
# An element as a sum: products, per-channel partial sums


@dataclass(frozen=True)
class Product:
    """One product ``weight × value`` of an output element's sum."""

    weight: float
    value: float  # the input value read (0 for a tap on zero padding)
    weight_index: tuple[int, ...]  # full index into the weight tensor
    input_index: tuple[int, ...] | None  # full index (n, c, *position) into the input; None on zero padding
    input_channel: int
    group: int
    tap: tuple[int, ...]  # the kernel position
    position: tuple[int, ...] | None  # the input position read (after reflect/replicate/circular); None: zero padding

    @property
    def product(self) -> float:
        return self.weight * self.value


@dataclass(frozen=True)
class ChannelSum:
    """The part of an output element that one input channel contributes."""

    input_channel: int
    products: tuple[Product, ...]

    @property
    def total(self) -> float:
        return float(sum(p.product for p in self.products))


@dataclass(frozen=True)
class ElementSum:
    """An output element ``y[n, o, *i]`` as ``bias + Σ per input channel of its group``."""

    index: tuple[int, ...]  # (n, o, *spatial)
    group: int
    channels: tuple[ChannelSum, ...]
    bias: float | None

    @property
    def terms(self) -> tuple[Product, ...]:
        """Every product, channel after channel."""
        return tuple(p for channel in self.channels for p in channel.products)

    @property
    def total(self) -> float:
        """The exact (float64) sum."""
        return float(sum(channel.total for channel in self.channels) + (self.bias or 0.0))


# ---------------------------------------------------------------------------------------------
# Geometry, for every op


@dataclass(frozen=True)
class Layout:
    """The case's sizes per spatial dimension, for convolutions and transposed convolutions."""

    conv: ConvConfig
    batch: int
    unbatched: bool
    in_size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pad_before: tuple[int, ...]
    pad_after: tuple[int, ...]
    output_padding: tuple[int, ...]

    @property
    def dims(self) -> int:
        return len(self.in_size)

    @property
    def out_size(self) -> tuple[int, ...]:
        return output_lengths(
            self.in_size,
            self.kernel,
            self.stride,
            tuple(zip(self.pad_before, self.pad_after, strict=True)),
            self.dilation,
            self.output_padding,
            self.conv.transposed,
        )

    @property
    def output_shape(self) -> tuple[int, ...]:
        """(N, C_out, *spatial), batched even for an unbatched case."""
        return (self.batch, self.conv.out_channels, *self.out_size)


def layout_of(conv: ConvConfig, input_shape: Sequence[int], weight_shape: Sequence[int]) -> Layout:
    """The sizes of a valid layer (the caller has checked torch computed it)."""
    dims = len(weight_shape) - 2
    unbatched = len(input_shape) == dims + 1
    batch = 1 if unbatched else int(input_shape[0])
    in_size = tuple(int(n) for n in input_shape[-dims:]) if dims else ()
    kernel = tuple(int(k) for k in weight_shape[2:])
    stride, dilation = per_dim(conv.stride, dims), per_dim(conv.dilation, dims)
    if conv.padding == "valid":
        before = after = (0,) * dims
    elif conv.padding == "same":  # torch puts the odd one of the total padding d·(k-1) at the end
        sides = [same_padding(k, d) for d, k in zip(dilation, kernel, strict=True)]
        before = tuple(side[0] for side in sides)
        after = tuple(side[1] for side in sides)
    else:
        before = after = per_dim(conv.padding, dims)
    output_padding = per_dim(getattr(conv, "output_padding", 0), dims)
    return Layout(conv, batch, unbatched, in_size, kernel, stride, dilation, before, after, output_padding)


def window_of(geo: Layout, position: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """The input indices a convolution's output position reads, per spatial dimension, as (first,
    last): ``i·s − p`` to ``i·s − p + d·(k − 1)``, in the input's own coordinates, so an index below 0
    or past the end is the padding. (A transposed convolution scatters instead: see ``scatter_of``.)

    >>> from conformance.cases.schema import ConvConfig
    >>> geo = layout_of(ConvConfig(4, 2, 3, stride=2, padding=1, groups=2), (1, 4, 5, 5), (2, 2, 3, 3))
    >>> window_of(geo, (1, 0)), window_of(geo, (2, 2))
    (((1, 3), (-1, 1)), ((3, 5), (3, 5)))
    """
    return tuple(
        (i * s - p, i * s - p + d * (k - 1))
        for i, s, p, d, k in zip(position, geo.stride, geo.pad_before, geo.dilation, geo.kernel, strict=False)
    )


def scatter_of(geo: Layout, position: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Where a transposed convolution writes input position ``q``'s kernel, per spatial dimension, as
    (first, last) output index: ``q·s − p`` to ``q·s − p + d·(k − 1)`` (indices outside the output are
    cut off by the padding).

    >>> from conformance.cases.schema import ConvConfig
    >>> geo = layout_of(ConvConfig(4, 2, 3, stride=2, groups=2, type="ConvTranspose1d"), (1, 4, 3), (4, 1, 3))
    >>> [scatter_of(geo, (q,)) for q in range(3)]
    [((0, 2),), ((2, 4),), ((4, 6),)]
    """
    return window_of(geo, position)  # the same arithmetic, read the other way round


def _source_index(position: int, size: int, mode: str) -> int:
    """The input index a (possibly out-of-range) position reads under ``padding_mode``; -1: a zero."""
    if 0 <= position < size:
        return position
    if mode == "zeros":
        return -1
    if mode == "replicate":
        return min(max(position, 0), size - 1)
    if mode == "circular":
        return position % size
    if size == 1:  # reflect
        return 0
    period = 2 * (size - 1)  # a b c b | a b c b | ...
    folded = position % period
    return folded if folded < size else period - folded


# ---------------------------------------------------------------------------------------------
# Output elements as sums of products


def element_sum(case: Case, tensors: CaseTensors, index: Sequence[int]) -> ElementSum:
    """``y[n, o, *i]`` written out: every (input channel of the group, kernel tap) product.

    >>> from pathlib import Path; from conformance.cases.loader import load_file
    >>> from conformance.cases.case_tensors import make_tensors
    >>> case = load_file(Path(__file__).parents[2] / "cases" / "seed" / "groups3.yaml")[0]  # the seed experiment
    >>> s = element_sum(case, make_tensors(case), (0, 2, 0, 0))
    >>> [(t.weight, round(t.value, 6), t.input_channel) for t in s.terms], round(s.total, 3)
    ([(5.0, 10.0, 2), (6.0, 100.0, 3)], 650.0)
    >>> [c.total for c in s.channels]  # the partial sums: 5×10 from input channel 2, 6×100 from 3
    [50.0, 600.0]
    """
    conv = case.conv
    geo = layout_of(conv, tensors.input.shape, tensors.weight.shape)
    grouping = Grouping(conv.type, conv.groups, conv.in_channels, conv.out_channels)
    n, o, *position = (int(i) for i in index)
    group = grouping.group_of_output(o)
    x = tensors.input.reshape(geo.batch, conv.in_channels, *geo.in_size).astype(np.float64)
    weight = tensors.weight.astype(np.float64)
    taps = list(itertools.product(*(range(k) for k in geo.kernel)))
    channels = []
    for c in grouping.inputs_of_group(group):
        products = []
        for tap in taps:
            if conv.transposed:
                read = _transposed_read(geo, position, tap)
                if read is None:
                    continue  # this tap never lands on y[.., i]: (i + p - k·d) is not a multiple of s in range
                weight_index = (c, o - group * grouping.out_per_group, *tap)
            else:
                read = _forward_read(geo, position, tap)
                weight_index = (o, c - group * grouping.in_per_group, *tap)
            value = 0.0 if read is None else float(x[(n, c, *read)])
            products.append(
                Product(
                    float(weight[weight_index]),
                    value,
                    weight_index,
                    None if read is None else (n, c, *read),
                    c,
                    group,
                    tap,
                    read,
                )
            )
        channels.append(ChannelSum(c, tuple(products)))
    bias = None if tensors.bias is None else float(tensors.bias[o])
    return ElementSum((n, o, *position), group, tuple(channels), bias)


def _forward_read(geo: Layout, position: Sequence[int], tap: Sequence[int]) -> tuple[int, ...] | None:
    """The input position tap ``k`` of output position ``i`` reads: i·s + k·d − padding; None on zeros."""
    read = []
    for i, k, s, d, before, size in zip(
        position, tap, geo.stride, geo.dilation, geo.pad_before, geo.in_size, strict=False
    ):
        source = _source_index(i * s + k * d - before, size, geo.conv.padding_mode)
        if source < 0:
            return None
        read.append(source)
    return tuple(read)


def _transposed_read(geo: Layout, position: Sequence[int], tap: Sequence[int]) -> tuple[int, ...] | None:
    """The input position q with q·s − p + k·d = i (the transposed conv scatters x[q] there); None if none."""
    read = []
    for i, k, s, d, p, size in zip(position, tap, geo.stride, geo.dilation, geo.pad_before, geo.in_size, strict=False):
        offset = i + p - k * d
        if offset % s or not 0 <= offset // s < size:
            return None
        read.append(offset // s)
    return tuple(read)


def element_formula(conv: ConvConfig) -> str:
    """The element formula of this op, with g = o // (C_out/G) the output channel's group."""
    if conv.transposed:
        return (
            "y[n, o, i] = b[o] + Σ over input channels c of group g, Σ over kernel taps k with "
            "(i + p − k·d) divisible by s and in range: x[n, c, (i + p − k·d)/s] · W[c, o − g·C_out/G, k]"
        )
    return (
        "y[n, o, i] = b[o] + Σ over input channels c of group g, Σ over kernel taps k: "
        "x[n, c, i·s + k·d − p] · W[o, c − g·C_in/G, k]"
        + (
            "  (x = 0 outside the input)"
            if conv.padding_mode == "zeros"
            else f"  (outside the input: {conv.padding_mode} padding)"
        )
    )
