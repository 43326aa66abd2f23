"""Explain a case the way the seed blog post did by hand: which output reads which inputs, and
every output element written out as its sum of products.

    y[0,2,0,0] = 650 = 5×10 (in 2) + 6×100 (in 3)

This module builds the *explanation model*: plain dataclasses that say what there is to teach
about one run case (the grouping, the input and weight laid out per group, chosen output elements
as per-channel partial sums of products, notes on rounding and on the digit trick, and the
harness's checks kept apart). It renders nothing: the terminal text (``explain_text.py``) and the
HTML learning page both consume the same :class:`Explanation`, so they can never disagree.

It speaks every op of the case format: Conv1d/2d/3d and ConvTranspose1d/2d/3d. Indices are tuples
over the spatial dimensions, never a hard-coded (h, w). The sums are computed here, element by
element, straight from the definition (so they check the reference and torch rather than repeat
them):

* convolution:  ``y[n, o, *i] = b[o] + Σ_{c in group g} Σ_k x_padded[n, c, i·s + k·d] · W[o, c − g·C_in/G, k]``
* transposed:   ``y[n, o, *i] = b[o] + Σ_{c in group g} Σ_{k: (i + p − k·d) divisible by s, in range}
  x[n, c, (i + p − k·d)/s] · W[c, o − g·C_out/G, k]``

with ``g = o // (C_out/G)`` the output channel's group.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .runner import CaseResult, CaseTensors
from .schema import DTYPES, Case, ConvConfig

DEFAULT_MAX_TERMS = 9  # products shown per input channel: a whole 3×3 kernel
MAX_ALL_ELEMENTS = 32  # a 1×1 output this small is explained element by element
MAX_ALL_ELEMENTS_WITH_KERNEL = 4  # ... and one whose sums run over a real kernel, only this small
MAX_TABLE_ROWS = 32  # rows of the connectivity matrix before eliding
MAX_LAYOUT_GROUPS = 4  # groups of the input/weight layout shown (more: the first ones and the last)
MAX_LAYOUT_CHANNELS = 4  # channels (or kernels) shown per group in the layout, one number each
MAX_LAYOUT_GRIDS = 2  # ... when each is a grid of numbers (a spatial input, a kernel over 1×1)
EXTRA_CHECK_NAMES = ("forward", "expect_error")  # checks every explanation shows; the rest need --checks


# ---------------------------------------------------------------------------------------------
# The model


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
        return self.op.startswith("ConvTranspose")

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
        """'dense' (groups=1), 'depthwise' (groups = in_channels) or 'grouped'."""
        if self.groups == 1:
            return "dense"
        return "depthwise" if self.groups == self.in_channels else "grouped"

    def group_of_output(self, o: int) -> int:
        return o // self.out_per_group

    def group_of_input(self, c: int) -> int:
        return c // self.in_per_group

    def inputs_of_group(self, g: int) -> range:
        return range(g * self.in_per_group, (g + 1) * self.in_per_group)

    def outputs_of_group(self, g: int) -> range:
        return range(g * self.out_per_group, (g + 1) * self.out_per_group)

    def reads(self) -> np.ndarray:
        """(out_channels, in_channels) bool: does output channel o read input channel c?"""
        out_group = np.arange(self.out_channels) // self.out_per_group  # (C_out,)
        in_group = np.arange(self.in_channels) // self.in_per_group  # (C_in,)
        return out_group[:, None] == in_group[None, :]


@dataclass(frozen=True)
class ChannelValues:
    """One channel of the input (batch 0), or one kernel of the weight, with where it belongs."""

    label: str  # "x[0,2]" or "W[2,0]"
    index: tuple[int, ...]  # (n, c) into the input, or the weight's first two indices
    group: int
    input_channel: int
    output_channel: int | None  # the output channel a weight kernel feeds; None for the input
    values: np.ndarray  # float64, shape: the spatial size (input) or the kernel size (weight)


@dataclass(frozen=True)
class GroupLayout:
    """One group's share of a tensor: its input and output channels and the blocks shown."""

    group: int
    input_channels: range
    output_channels: range
    blocks: tuple[ChannelValues, ...]
    hidden_blocks: int = 0  # blocks of this group left out for size


@dataclass(frozen=True)
class TensorLayout:
    """The input or the weight, laid out group by group."""

    name: str  # "input" or "weight"
    shape: tuple[int, ...]
    axes: tuple[str, ...]  # names of the axes, e.g. ("out_channels", "in_channels/groups", "kH", "kW")
    groups: tuple[GroupLayout, ...]
    hidden_groups: tuple[int, ...] = ()  # groups left out for size (the layout shows the first ones and the last)


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


@dataclass(frozen=True)
class ElementExplanation:
    """A chosen output element: its sum, every side's value, and why it was chosen."""

    sum: ElementSum
    values: dict[str, float | None]  # side ("reference", "torch", "expected") -> its value; None: no output
    reason: str  # "worst element of reference vs torch", "group 0", "the last group", "asked for", ...

    @property
    def shown(self) -> float:
        """The value written on the left of the sum: torch's."""
        value = self.values.get("torch")
        return self.sum.total if value is None else value

    def agrees(self, rtol: float, atol: float) -> dict[str, bool]:
        """For every side with a value: does it equal the sum within (rtol, atol)?"""
        total = self.sum.total
        return {side: abs(value - total) <= atol + rtol * abs(total) for side, value in self.values.items()
                if value is not None}


@dataclass(frozen=True)
class Cost:
    """Parameters and multiply-adds of the layer and of the same layer with groups=1."""

    weights: int
    dense_weights: int
    bias: int
    outputs: int
    products_per_output: int  # multiply-adds per output element (transposed: on average)
    multiply_adds: int
    dense_multiply_adds: int


@dataclass(frozen=True)
class Note:
    """A one-line remark a learner needs where the numbers surprise: 'rounding' or 'carry'."""

    kind: str
    text: str


@dataclass(frozen=True)
class CheckLine:
    """One of the harness's checks; ``extra`` ones (torch variants, metamorphic relations, the
    wiring probe, gradients) are shown only on request."""

    name: str
    passed: bool
    summary: str
    extra: bool


@dataclass
class Explanation:
    """Everything there is to teach about one run case; renderers only lay it out."""

    name: str
    location: str
    description: str
    op: str  # "Conv2d", "ConvTranspose2d", ...
    signature: str  # "Conv2d(in_channels=6, out_channels=6, kernel_size=1, groups=3, bias=False)"
    dtype: str
    grouping: Grouping | None  # None when groups does not divide the channels
    invalid: str | None = None  # why the layer cannot be grouped (or computed)
    refusals: tuple[tuple[str, str], ...] = ()  # (side, what it said) for an invalid layer
    message: str = ""  # when there is nothing to compute: why
    input: TensorLayout | None = None
    weight: TensorLayout | None = None
    output_shape: tuple[int, ...] = ()
    unbatched: bool = False
    kernel: tuple[int, ...] = ()
    formula: str = ""  # the element formula of this op
    elements: tuple[ElementExplanation, ...] = ()
    sides: tuple[str, ...] = ()  # the names in each element's values, in order
    tolerance: tuple[float, float] = (0.0, 0.0)  # (rtol, atol) of the case
    cost: Cost | None = None
    notes: tuple[Note, ...] = ()
    checks: tuple[CheckLine, ...] = ()


# ---------------------------------------------------------------------------------------------
# Numbers and words


def format_number(value: float, dtype: str = "float32", digits: int = 6) -> str:
    """The shortest text that reads back as ``value`` in the case's dtype, at most ``digits`` digits.

    >>> [format_number(v) for v in (0.1, 2.1000000015, 109000.0, -3.0, 1e-7)]
    ['0.1', '2.1', '109000', '-3', '1e-07']
    """
    if not np.isfinite(value):
        return str(float(value))
    typed = DTYPES.get(dtype, np.float64)(value)
    if value != 0 and (abs(value) >= 1e12 or abs(value) < 1e-4):
        return np.format_float_scientific(typed, precision=digits - 1, unique=True, trim="-", exp_digits=2)
    return np.format_float_positional(typed, precision=digits, unique=True, fractional=False, trim="-")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``plural(1, 'group')`` -> '1 group'; ``plural(3, 'group')`` -> '3 groups'.

    >>> plural(1, "product"), plural(2, "product"), plural(0, "case"), plural(2, "matrix", "matrices")
    ('1 product', '2 products', '0 cases', '2 matrices')
    """
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


def channel_span(kind: str, channels: range | Sequence[int]) -> str:
    """('input', range(2, 4)) -> 'input channels 2-3'; ('input', range(2, 3)) -> 'input channel 2'."""
    channels = list(channels)
    if len(channels) == 1:
        return f"{kind} channel {channels[0]}"
    return f"{kind} channels {channels[0]}-{channels[-1]}"


def per_dim(value: int | Sequence[int], dims: int) -> tuple[int, ...]:
    """An int-or-list argument spread over ``dims`` spatial dimensions.

    >>> per_dim(3, 2), per_dim([1, 2], 2)
    ((3, 3), (1, 2))
    """
    if isinstance(value, (int, np.integer)):
        return (int(value),) * dims
    values = tuple(int(v) for v in value)
    return values * dims if len(values) == 1 else values


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
        if self.conv.transposed:
            return tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, s, p, d, k, op in
                         zip(self.in_size, self.stride, self.pad_before, self.dilation, self.kernel, self.output_padding))
        return tuple((n + b + a - d * (k - 1) - 1) // s + 1 for n, b, a, d, k, s in
                     zip(self.in_size, self.pad_before, self.pad_after, self.dilation, self.kernel, self.stride))

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
        totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
        before = tuple(t // 2 for t in totals)
        after = tuple(t - t // 2 for t in totals)
    else:
        before = after = per_dim(conv.padding, dims)  # type: ignore[arg-type]
    output_padding = per_dim(getattr(conv, "output_padding", 0), dims)
    return Layout(conv, batch, unbatched, in_size, kernel, stride, dilation, before, after, output_padding)


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

    >>> from pathlib import Path; from conformance.loader import load_file; from conformance.runner import make_tensors
    >>> case = load_file(Path(__file__).parent.parent / "cases" / "seed" / "groups3.yaml")[0]  # the seed experiment
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
            products.append(Product(float(weight[weight_index]), value, weight_index,
                                    None if read is None else (n, c, *read), c, group, tap, read))
        channels.append(ChannelSum(c, tuple(products)))
    bias = None if tensors.bias is None else float(tensors.bias[o])
    return ElementSum((n, o, *position), group, tuple(channels), bias)


def _forward_read(geo: Layout, position: Sequence[int], tap: Sequence[int]) -> tuple[int, ...] | None:
    """The input position tap ``k`` of output position ``i`` reads: i·s + k·d − padding; None on zeros."""
    read = []
    for i, k, s, d, before, size in zip(position, tap, geo.stride, geo.dilation, geo.pad_before, geo.in_size):
        source = _source_index(i * s + k * d - before, size, geo.conv.padding_mode)
        if source < 0:
            return None
        read.append(source)
    return tuple(read)


def _transposed_read(geo: Layout, position: Sequence[int], tap: Sequence[int]) -> tuple[int, ...] | None:
    """The input position q with q·s − p + k·d = i (the transposed conv scatters x[q] there); None if none."""
    read = []
    for i, k, s, d, p, size in zip(position, tap, geo.stride, geo.dilation, geo.pad_before, geo.in_size):
        offset = i + p - k * d
        if offset % s or not 0 <= offset // s < size:
            return None
        read.append(offset // s)
    return tuple(read)


def element_formula(conv: ConvConfig) -> str:
    """The element formula of this op, with g = o // (C_out/G) the output channel's group."""
    if conv.transposed:
        return ("y[n, o, i] = b[o] + Σ over input channels c of group g, Σ over kernel taps k with "
                "(i + p − k·d) divisible by s and in range: x[n, c, (i + p − k·d)/s] · W[c, o − g·C_out/G, k]")
    return ("y[n, o, i] = b[o] + Σ over input channels c of group g, Σ over kernel taps k: "
            "x[n, c, i·s + k·d − p] · W[o, c − g·C_in/G, k]" + ("  (x = 0 outside the input)" if conv.padding_mode == "zeros"
                                                           else f"  (outside the input: {conv.padding_mode} padding)"))


# ---------------------------------------------------------------------------------------------
# Choosing elements


def default_elements(output_shape: Sequence[int], grouping: Grouping | None = None,
                     result: CaseResult | None = None, kernel: Sequence[int] = ()) -> list[tuple[tuple[int, ...], str]]:
    """Which elements to write out, each with the reason: a failed comparison's worst elements first;
    then every element of a small output; else the first output channel of group 0 at the first
    position and the last output channel (of the last group, where the offset g·C/G shows) at the
    centre, plus the first output channel of group 1 when there are more than two groups."""
    shape = tuple(int(s) for s in output_shape)
    chosen: list[tuple[tuple[int, ...], str]] = []
    seen: set[tuple[int, ...]] = set()

    def add(index: tuple[int, ...], reason: str) -> None:
        if index not in seen:
            seen.add(index)
            chosen.append((index, reason))

    for index, reason in failing_elements(result, len(shape)):
        add(index, reason)
    total = math.prod(shape)
    small = MAX_ALL_ELEMENTS if math.prod(kernel) <= 1 else MAX_ALL_ELEMENTS_WITH_KERNEL
    if total <= small:
        for index in np.ndindex(*shape):
            add(tuple(int(i) for i in index), "")
        return chosen
    spatial = shape[2:]
    first, centre = (0,) * len(spatial), tuple(s // 2 for s in spatial)
    groups = grouping.groups if grouping is not None else 1
    add((0, 0, *first), "")
    if groups > 2 and grouping is not None:
        add((0, grouping.out_per_group, *first), "")
    if groups > 1 and grouping is not None:
        last = groups - 1
        last_reason = (f"the last group, {last}: its input channels start at {last}·{grouping.in_per_group} = "
                       f"{last * grouping.in_per_group}")
    else:
        last_reason = ""
    add((0, shape[1] - 1, *centre), last_reason)
    return chosen


def failing_elements(result: CaseResult | None, ndim: int) -> list[tuple[tuple[int, ...], str]]:
    """The worst element of every failed output comparison of ``result``, batched to ``ndim`` axes."""
    found: list[tuple[tuple[int, ...], str]] = []
    if result is None:
        return found
    for check in result.checks:
        comparison = check.comparison
        if check.tensor != "output" or comparison is None or comparison.passed or comparison.worst_index is None:
            continue
        index = tuple(int(i) for i in comparison.worst_index)
        index = (0, *index) if len(index) == ndim - 1 else index
        if len(index) == ndim:
            found.append((index, f"worst element of {comparison.actual_name} vs {comparison.expected_name}"))
    return found


def parse_element(text: str, output_shape: Sequence[int]) -> tuple[int, ...]:
    """``"0,2,0,0"`` (or ``"2,0,0"`` for an unbatched case) -> (n, o, *i), checked against the output.

    >>> parse_element("0, 2, 0, 0", (1, 6, 1, 1))
    (0, 2, 0, 0)
    >>> parse_element("0,6,0,0", (1, 6, 1, 1))
    Traceback (most recent call last):
    ...
    ValueError: --element 0,6,0,0: o=6 is out of range: the output has shape (n, o, h, w) = (1, 6, 1, 1)
    """
    shape = tuple(int(s) for s in output_shape)
    names = "n, o, " + ", ".join(_spatial_names(len(shape) - 2))
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--element expects {names.replace(' ', '')} (integers separated by commas), "
                         f"got {text!r}") from None
    if len(values) == len(shape) - 1:
        values = (0, *values)
    if len(values) != len(shape):
        raise ValueError(f"--element expects {names.replace(' ', '')} ({len(shape)} integers, or "
                         f"{len(shape) - 1} without n), got {text!r}")
    for name, value, size in zip(names.split(", "), values, shape):
        if not 0 <= value < size:
            raise ValueError(f"--element {text}: {name}={value} is out of range: the output has shape "
                             f"({names}) = {shape}")
    return values


def _spatial_names(dims: int) -> list[str]:
    return {1: ["l"], 2: ["h", "w"], 3: ["d", "h", "w"]}.get(dims, [f"i{k}" for k in range(dims)])


# ---------------------------------------------------------------------------------------------
# Building the explanation


def signature(conv: ConvConfig) -> str:
    """The layer as torch would be called, defaults left out except the channels, kernel and groups.

    >>> signature(ConvConfig(6, 6, 1, groups=3, bias=False))
    'Conv2d(in_channels=6, out_channels=6, kernel_size=1, groups=3, bias=False)'
    """
    parts = [f"in_channels={conv.in_channels}", f"out_channels={conv.out_channels}",
             f"kernel_size={_arg(conv.kernel_size)}"]
    for key, default in (("stride", 1), ("padding", 0), ("output_padding", 0), ("dilation", 1)):
        value = getattr(conv, key, default)
        if value != default and not (isinstance(value, (tuple, list)) and set(value) == {default}):
            parts.append(f"{key}={_arg(value)}")
    parts.append(f"groups={conv.groups}")
    if not conv.bias:
        parts.append("bias=False")
    if conv.padding_mode != "zeros":
        parts.append(f"padding_mode={conv.padding_mode!r}")
    return f"{conv.type}({', '.join(parts)})"


def _arg(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


def build_explanation(result: CaseResult, elements: Sequence[Sequence[int]] | None = None) -> Explanation:
    """The explanation model of a run case (``elements``: output indices to write out; default: a
    choice that shows the grouping, see :func:`default_elements`).

    >>> from pathlib import Path; from conformance.loader import load_file
    >>> from conformance.implementations import load_implementation; from conformance.runner import run_case
    >>> case = load_file(Path(__file__).parent.parent / "cases" / "seed" / "groups3.yaml")[0]
    >>> e = build_explanation(run_case(case, load_implementation(None)))
    >>> e.grouping.groups, [round(x.shown, 3) for x in e.elements][:3], [c.total for c in e.elements[2].sum.channels]
    (3, [2.1, 4.3, 650.0], [50.0, 600.0])
    """
    case, run = result.case, result.run
    if case is None:
        return Explanation(name=result.name, location=result.file, description="", op="", signature="",
                           dtype="float32", grouping=None, message=f"case {result.name} could not be loaded:\n"
                                                                   f"{result.message}")
    conv = case.conv
    grouping = Grouping(conv.type, conv.groups, conv.in_channels, conv.out_channels) if conv.is_divisible else None
    explanation = Explanation(name=case.name, location=case.location, description=case.description, op=conv.type,
                              signature=signature(conv), dtype=case.dtype, grouping=grouping,
                              invalid=None if conv.is_divisible else invalid_reason(conv),
                              formula=element_formula(conv), tolerance=case.rtol_atol,
                              checks=tuple(CheckLine(c.name, c.passed, c.summary, is_extra_check(c.name))
                                           for c in result.checks))
    if run is None:
        explanation.message = result.message
        return explanation
    if case.expect_error is not None or run.torch.output is None or grouping is None:
        explanation.message = "This layer is invalid, so there is no output to explain."
        explanation.refusals = tuple(
            (side, f"refused: {outcome.describe_error()}" if outcome.refused else
             f"computed an output of shape {tuple(outcome.output.shape)}")
            for side, outcome in ((run.implementation.name, run.impl), ("torch", run.torch)))
        return explanation

    tensors = run.tensors
    geo = layout_of(conv, tensors.input.shape, tensors.weight.shape)
    shape = geo.output_shape
    explanation.output_shape, explanation.unbatched, explanation.kernel = shape, geo.unbatched, geo.kernel
    if geo.batch == 0 or math.prod(shape) == 0:
        explanation.message = (f"The output has shape {shape}: no element to write out (an empty batch or an empty "
                               "output is valid, and torch returns an empty tensor).")
    else:
        explanation.input = input_layout(grouping, tensors.input.reshape(geo.batch, conv.in_channels, *geo.in_size))
    explanation.weight = weight_layout(grouping, tensors.weight)
    sides = [(run.implementation.name, run.impl.output), ("torch", run.torch.output),
             ("expected", tensors.expected)]
    arrays = {name: _batched(array, shape) for name, array in sides if name != "expected" or array is not None}
    explanation.sides = tuple(arrays)
    if elements:
        chosen = [(tuple(int(i) for i in index), "asked for") for index in elements]
    else:
        chosen = default_elements(shape, grouping, result, geo.kernel)
    explained = []
    for index, reason in chosen:
        values = {name: None if array is None else float(array[index]) for name, array in arrays.items()}
        explained.append(ElementExplanation(element_sum(case, tensors, index), values, reason))
    explanation.elements = tuple(explained)
    explanation.cost = cost_of(grouping, geo)
    explanation.notes = tuple(note for note in (rounding_note(case.dtype, result, explanation.elements),
                                                carry_note(tensors, explanation.elements, case.dtype))
                              if note is not None)
    return explanation


def _batched(array: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """Outputs of unbatched cases are (C, *spatial); index them as (1, C, *spatial)."""
    if array is None or int(np.size(array)) != math.prod(shape):
        return None
    return np.asarray(array, dtype=np.float64).reshape(shape)


def is_extra_check(name: str) -> bool:
    """Is this one of the harness's extra checks (torch variants, metamorphic relations, the wiring
    probe, gradients) rather than an output comparison a learner reads?"""
    return not (name in EXTRA_CHECK_NAMES or name.endswith(" vs expected"))


def invalid_reason(conv: ConvConfig) -> str:
    """Why the channels cannot be split into equal groups."""
    if conv.groups <= 0:
        return f"groups = {conv.groups}: groups must be a positive integer."
    reasons = [f"{name} = {value} is not divisible by groups = {conv.groups} ({value} % {conv.groups} = "
               f"{value % conv.groups})" for name, value in (("in_channels", conv.in_channels),
                                                             ("out_channels", conv.out_channels))
               if value % conv.groups]
    return ("Channels cannot be split into equal groups: " + "; ".join(reasons)
            + ". Every group must hold the same number of input and of output channels.")


def shown_groups(groups: int, most: int = MAX_LAYOUT_GROUPS) -> tuple[list[int], list[int]]:
    """(groups laid out, groups left out): all up to ``most``, else the first ones and the last."""
    if groups <= most:
        return list(range(groups)), []
    shown = list(range(most - 1)) + [groups - 1]
    return shown, [g for g in range(groups) if g not in shown]


def input_layout(grouping: Grouping, x: np.ndarray) -> TensorLayout:
    """Batch 0 of the input (N, C_in, *spatial), channel by channel, group by group."""
    grids = math.prod(x.shape[2:]) > 1
    per_group = MAX_LAYOUT_GRIDS if grids else MAX_LAYOUT_CHANNELS
    shown, hidden = shown_groups(grouping.groups, MAX_LAYOUT_GROUPS - grids)
    layouts = []
    for g in shown:
        channels = grouping.inputs_of_group(g)
        blocks = tuple(ChannelValues(f"x[0,{c}]", (0, c), g, c, None, np.asarray(x[0, c], dtype=np.float64))
                       for c in channels[:per_group])
        layouts.append(GroupLayout(g, channels, grouping.outputs_of_group(g), blocks,
                                   max(0, len(channels) - per_group)))
    axes = ("N", "C_in", *(name.upper() for name in _spatial_names(x.ndim - 2)))
    return TensorLayout("input", tuple(x.shape), axes, tuple(layouts), tuple(hidden))


def weight_layout(grouping: Grouping, weight: np.ndarray) -> TensorLayout:
    """The weight's kernels, group by group. Convolutions: ``W[o, j]`` (row o = output channel o,
    j counts the group's input channels). Transposed: ``W[c, j]`` (row c = input channel c, j counts
    the group's output channels) feeds output channel g·C_out/G + j."""
    grids = math.prod(weight.shape[2:]) > 1
    per_group = MAX_LAYOUT_GRIDS if grids else MAX_LAYOUT_CHANNELS
    shown, hidden = shown_groups(grouping.groups, MAX_LAYOUT_GROUPS - grids)
    k_names = ["k" + name.upper() if name != "l" else "kL" for name in _spatial_names(weight.ndim - 2)]
    layouts = []
    for g in shown:
        ins, outs = grouping.inputs_of_group(g), grouping.outputs_of_group(g)
        blocks = []
        rows = ins if grouping.transposed else outs
        columns = min(weight.shape[1], per_group)
        for row in rows[:per_group]:
            for j in range(columns):
                c, o = (row, outs[j]) if grouping.transposed else (ins[j], row)
                blocks.append(ChannelValues(f"W[{row},{j}]", (row, j), g, c, o,
                                            np.asarray(weight[row, j], dtype=np.float64)))
        layouts.append(GroupLayout(g, ins, outs, tuple(blocks), len(rows) * weight.shape[1] - len(blocks)))
    if grouping.transposed:
        axes = ("in_channels", "out_channels/groups", *k_names)
    else:
        axes = ("out_channels", "in_channels/groups", *k_names)
    return TensorLayout("weight", tuple(weight.shape), axes, tuple(layouts), tuple(hidden))


def cost_of(grouping: Grouping, geo: Layout) -> Cost:
    """Parameters and multiply-adds; the same layer with groups=1 has G times both."""
    kernel = math.prod(geo.kernel)
    weights = grouping.in_channels * grouping.out_channels // grouping.groups * kernel
    outputs = math.prod(geo.output_shape)
    if grouping.transposed:  # every input element is scattered through out/G kernels
        multiply_adds = geo.batch * grouping.in_channels * math.prod(geo.in_size) * grouping.out_per_group * kernel
        per_output = multiply_adds // outputs if outputs else 0
    else:
        per_output = grouping.in_per_group * kernel
        multiply_adds = outputs * per_output
    return Cost(weights, weights * grouping.groups, grouping.out_channels if geo.conv.bias else 0, outputs,
                per_output, multiply_adds, multiply_adds * grouping.groups)


# ---------------------------------------------------------------------------------------------
# Notes where the numbers surprise


def rounding_note(dtype: str, result: CaseResult, elements: Sequence[ElementExplanation]) -> Note | None:
    """Why a tiny error shows beside values that print identically: the spacing of the dtype's
    numbers near the value (only when a passing comparison shows an error, in a rounding dtype)."""
    if dtype == "float64" or not elements:
        return None
    passing = [c.comparison for c in result.checks
               if c.comparison is not None and c.comparison.passed and c.tensor == "output"]
    worst = max(passing, key=lambda c: c.max_abs_error, default=None)
    if worst is None or worst.max_abs_error <= 0:
        return None
    error = worst.max_abs_error
    value = _worst_value(result, worst.actual_name, worst.expected_name)
    if value is None:  # no arrays to look into: the largest value explained
        value = max((e.sum.total for e in elements), key=abs)
    storage = DTYPES.get(dtype, np.float32)
    if dtype == "bfloat16":
        spacing = float(np.spacing(np.float32(abs(value)))) * 2**16  # 8 significant bits instead of 24
    else:
        spacing = float(np.spacing(storage(abs(value))))
    digits = {"float32": 7, "float16": 3, "bfloat16": 2}.get(dtype, 7)
    stored = float(storage(value))
    stored_text = np.format_float_positional(stored, precision=10, unique=False, trim="-")
    exact = f" ({format_number(value, 'float64')} itself is stored as {stored_text})" if stored != value else ""
    return Note("rounding", f"Why an error of {format_number(error, 'float64', 3)} when the values print alike: "
                            f"{dtype} keeps about {digits} significant digits, so near {format_number(value, dtype)} "
                            f"neighbouring {dtype} numbers are {format_number(spacing, 'float64', 3)} apart{exact}; "
                            "the same sum added in another order can land a step or two away.")


def _worst_value(result: CaseResult, actual: str, expected: str) -> float | None:
    """The ``expected`` side's value where the two sides of a comparison differ most."""
    run = result.run
    if run is None:
        return None
    arrays = {run.implementation.name: run.impl.output, "torch": run.torch.output, "expected": run.tensors.expected}
    a, b = arrays.get(actual), arrays.get(expected)
    if a is None or b is None or np.size(a) != np.size(b) or np.size(a) == 0:
        return None
    a64, b64 = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    gaps = np.abs(a64 - b64)
    if not np.isfinite(gaps).any():
        return None
    return float(b64[int(np.nanargmax(gaps))])


def carry_note(tensors: CaseTensors, elements: Sequence[ElementExplanation], dtype: str) -> Note | None:
    """Where the digit trick (inputs 0.1, 1, 10, ... so the digits name the inputs) breaks: a partial
    sum reaches the next channel's lowest digit and carries into it (131000 = 11×1000 + 12×10000)."""
    x = np.abs(tensors.input[np.nonzero(tensors.input)])
    if x.size == 0 or np.any(tensors.input < 0) or np.any(tensors.weight < 0):
        return None
    leading = x / 10.0 ** np.floor(np.log10(x))
    if not np.allclose(leading, np.round(leading), rtol=1e-5, atol=0):  # not one significant digit each
        return None
    for element in elements:
        partials = sorted((abs(c.total), c) for c in element.sum.channels if c.total)
        for (small, low), (_, high) in zip(partials, partials[1:]):
            if small >= _lowest_digit_place(high.total):
                parts = " + ".join(f"{format_number(p.weight, dtype)}×{format_number(p.value, dtype)}"
                                   for c in element.sum.channels for p in c.products if p.product)
                return Note("carry", f"The digits stop naming the inputs once a channel's part reaches the next "
                                     f"channel's lowest digit: {format_number(element.shown, dtype)} = {parts} — "
                                     f"{format_number(small, dtype)} (in {low.input_channel}) carries into the "
                                     f"digits of in {high.input_channel}. The sums are still right; read them "
                                     f"term by term.")
    return None


def _lowest_digit_place(value: float) -> float:
    """The place value of the lowest non-zero decimal digit: 120000 -> 10000, 0.3 -> 0.1."""
    text = np.format_float_positional(abs(value), precision=8, unique=True, trim="-")
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    if fraction:
        return 10.0 ** -len(fraction)
    stripped = whole.rstrip("0")
    return 10.0 ** (len(whole) - len(stripped))


# ---------------------------------------------------------------------------------------------
# Compatibility for the 2-D pictures (pictures.py) and the report


def connectivity(conv: ConvConfig) -> np.ndarray:
    """(out_channels, in_channels): the group through which output ``o`` reads input ``c``, or -1.

    >>> connectivity(ConvConfig(4, 2, 1, groups=2)).tolist()
    [[0, 0, -1, -1], [-1, -1, 1, 1]]
    """
    grouping = Grouping(conv.type, conv.groups, conv.in_channels, conv.out_channels)
    out_group = np.arange(conv.out_channels) // grouping.out_per_group  # (C_out,)
    return np.where(grouping.reads(), out_group[:, None], -1)


def geometry_of(case: Case, tensors: CaseTensors):
    """The reference's 2-D geometry of a Conv2d case (used by the pictures)."""
    from reference_impl import plan_conv2d

    conv = case.conv
    return plan_conv2d(tensors.input.shape, tensors.weight.shape, None if tensors.bias is None else tensors.bias.shape,
                       conv.stride, conv.padding, conv.dilation, conv.groups, conv.padding_mode)


def explain_result(result: CaseResult, elements: Sequence[Sequence[int]] | None = None,
                   max_terms: int = DEFAULT_MAX_TERMS, *, width: int | None = None, show_checks: bool = False) -> str:
    """The terminal text of :func:`build_explanation` (kept here for callers of the old API; new
    code calls ``explain_text.render_text(build_explanation(...))``)."""
    from .explain_text import render_text  # late: the renderer builds on this module, not the reverse

    return render_text(build_explanation(result, elements), width=width, max_terms=max_terms, show_checks=show_checks)
