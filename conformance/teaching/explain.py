"""Explain a case the way the seed blog post did by hand: which output reads which inputs, and
every output element written out as its sum of products.

    y[0,2,0,0] = 650 = 5×10 (in 2) + 6×100 (in 3)

This module builds the *explanation model*: plain dataclasses that say what there is to teach
about one run case (the grouping, the input and weight laid out per group, chosen output elements
as per-channel partial sums of products, notes on rounding and on the digit trick, and the
harness's checks kept apart). It renders nothing: the terminal text (``explain_text.py``) and the
HTML learning page both consume the same :class:`Explanation`, so they can never disagree. The
arithmetic (the grouping, the sums for every op) is in ``element_sums.py`` and re-exported here.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conformance.cases.case_tensors import CaseTensors
from conformance.cases.schema import DTYPES, Case, ConvConfig
from conformance.judging.verdict import CaseResult
from conformance.running.implementations import Implementation
from conformance.running.runner import run_case
from conformance.running.torch_oracle import oracle_notes_shown
from conformance.teaching.element_sums import (
    ChannelSum,  # noqa: F401 - re-exported for explain_text and the report
    ElementSum,
    Grouping,
    Layout,
    Product,  # noqa: F401 - re-exported for explain_text and the report
    element_formula,  # noqa: F401
    element_sum,
    layout_of,
    per_dim,  # noqa: F401 - re-exported for explain_text and the report
    scatter_of,
    window_of,
)

DEFAULT_MAX_TERMS = 9  # products shown per input channel: a whole 3×3 kernel
MAX_ALL_ELEMENTS = 32  # a 1×1 output this small is explained element by element
MAX_ALL_ELEMENTS_WITH_KERNEL = 8  # ... and one whose sums run over a real kernel, only this small
MAX_TABLE_ROWS = 32  # rows of the connectivity matrix before eliding
MAX_LAYOUT_GROUPS = 4  # groups of the input/weight layout shown (more: the first ones and the last)
MAX_LAYOUT_CHANNELS = 4  # channels (or kernels) shown per group in the layout, one number each
MAX_SCATTERS = 4  # input positions of a transposed convolution written out as what they scatter
MAX_LAYOUT_GRIDS = 2  # ... when each is a grid of numbers (a spatial input, a kernel over 1×1)
EXTRA_CHECK_NAMES = ("forward", "expect_error")  # checks every explanation shows; the rest need --checks
EXERCISE_TAG = "exercise"  # a case tagged so is a prediction exercise: its values stay hidden until revealed
MAX_WARNING_CHARACTERS = 160  # a torch warning is quoted up to its first sentence, at most this long


# ---------------------------------------------------------------------------------------------
# The model


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
class ElementExplanation:
    """A chosen output element: its sum, every side's value, and why it was chosen."""

    sum: ElementSum
    values: dict[str, float | None]  # side ("reference", "torch", "expected") -> its value; None: no output
    reason: str  # "worst element of reference vs torch", "group 0", "the last group", "asked for", ...
    window: tuple[tuple[int, int], ...] = ()  # a convolution's (first, last) input index read, per spatial dim

    @property
    def shown(self) -> float:
        """The value written on the left of the sum: torch's."""
        value = self.values.get("torch")
        return self.sum.total if value is None else value

    def agrees(self, rtol: float, atol: float) -> dict[str, bool]:
        """For every side with a value: does it equal the sum within (rtol, atol)?"""
        total = self.sum.total
        return {
            side: abs(value - total) <= atol + rtol * abs(total)
            for side, value in self.values.items()
            if value is not None
        }


@dataclass(frozen=True)
class Scatter:
    """A transposed convolution, seen from one input value: it is multiplied by the kernels of its
    weight row ``W[c, j]`` (one per output channel of its group) and added into the output at ``span``."""

    label: str  # "x[0,1,2]"
    value: float
    input_channel: int
    output_channels: range
    span: tuple[tuple[int, int], ...]  # (first, last) output position written per spatial dim, before cropping
    kernels: tuple[np.ndarray, ...]  # W[c, j] for each output channel of the group, float64


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
    """A short remark a learner needs where the numbers surprise: 'carry' (the digit trick stops
    working), 'warning' (torch, or another library, warned while computing the case) or 'rounding' (why the sides differ
    in the last bits; it explains the comparisons, so it is shown with them)."""

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
    exercise: bool = False  # a prediction exercise: renderers hide the values until asked to reveal them
    input_size: tuple[int, ...] = ()  # the input's spatial size (a window index outside it is padding)
    out_size: tuple[int, ...] = ()  # the output's spatial size
    stride: tuple[int, ...] = ()
    scatters: tuple[Scatter, ...] = ()  # a transposed convolution's first input values, each as what it writes


# ---------------------------------------------------------------------------------------------
# Numbers and words


def format_factor(value: float, dtype: str = "float32", digits: int = 6) -> str:
    """:func:`format_number` as a factor of a product: a negative number in parentheses.

    >>> format_factor(-2.5) + "×" + format_factor(4.0)
    '(-2.5)×4'
    """
    text = format_number(value, dtype, digits)
    return f"({text})" if text.startswith("-") else text


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


# ---------------------------------------------------------------------------------------------
# Choosing elements


def default_elements(
    output_shape: Sequence[int],
    grouping: Grouping | None = None,
    result: CaseResult | None = None,
    kernel: Sequence[int] = (),
    overlap: Sequence[int] | None = None,
) -> list[tuple[tuple[int, ...], str]]:
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
    if overlap is not None:  # a transposed convolution: where the scattered windows overlap and add up
        add((0, 0, *overlap), "where windows of neighbouring inputs overlap: their contributions add")
    if groups > 2 and grouping is not None:
        add((0, grouping.out_per_group, *first), "")
    if groups > 1 and grouping is not None:
        last = groups - 1
        last_reason = (
            f"the last group, {last}: its input channels start at {last}·{grouping.in_per_group} = "
            f"{last * grouping.in_per_group}"
        )
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
        raise ValueError(
            f"--element expects {names.replace(' ', '')} (integers separated by commas), got {text!r}"
        ) from None
    if len(values) == len(shape) - 1:
        values = (0, *values)
    if len(values) != len(shape):
        raise ValueError(
            f"--element expects {names.replace(' ', '')} ({len(shape)} integers, or "
            f"{len(shape) - 1} without n), got {text!r}"
        )
    for name, value, size in zip(names.split(", "), values, shape, strict=False):
        if not 0 <= value < size:
            raise ValueError(
                f"--element {text}: {name}={value} is out of range: the output has shape ({names}) = {shape}"
            )
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
    parts = [
        f"in_channels={conv.in_channels}",
        f"out_channels={conv.out_channels}",
        f"kernel_size={_arg(conv.kernel_size)}",
    ]
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


def run_quietly(case: Case, implementation: Implementation, **options: object) -> tuple[CaseResult, tuple[str, ...]]:
    """:func:`~conformance.running.runner.run_case`, with the warnings it raises caught instead of
    printed (torch's padding='same' warning is 296 characters with a path into torch's sources):
    returns the result and each distinct warning as one short sentence naming who warned ("torch
    warned: ...", else the warning's category), for a note."""
    with warnings.catch_warnings(record=True) as caught, oracle_notes_shown():  # torch's notes too: each is a note
        warnings.simplefilter("always")
        result = run_case(case, implementation, **options)  # type: ignore[arg-type]
    seen: dict[str, None] = {}
    for warning in caught:
        message = str(warning.message)
        from_torch = "torch" in Path(warning.filename).parts or "Triggered internally" in message
        who = "torch" if from_torch else warning.category.__name__
        seen.setdefault(f"{who} warned: {short_warning(message)}.", None)
    return result, tuple(seen)


def short_warning(message: str) -> str:
    """A warning's first sentence, without file paths or source lines, at most MAX_WARNING_CHARACTERS.

    >>> short_warning("Using padding='same' with even kernel lengths may require a zero-padded copy of the "
    ...               "input be created (Triggered internally at /pytorch/aten/src/Conv.cpp:1037.) More.")
    "Using padding='same' with even kernel lengths may require a zero-padded copy of the input be created"
    """
    text = " ".join(message.split())
    text = re.sub(r"\s*\((?:Triggered internally at|see) [^)]*\)\.?", ".", text)  # where in torch's C++ it was
    text = re.sub(r"\s*\S*(?:/|\\)\S*\.(?:py|cpp|h):\d+\S*", "", text)
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".")
    if len(first) > MAX_WARNING_CHARACTERS:
        first = first[: MAX_WARNING_CHARACTERS - 1].rsplit(" ", 1)[0] + "…"
    return first


def build_explanation(
    result: CaseResult,
    elements: Sequence[Sequence[int]] | None = None,
    *,
    layout_limits: tuple[int, int] | None = None,
    warnings_seen: Sequence[str] = (),
) -> Explanation:
    """The explanation model of a run case (``elements``: output indices to write out; default: a
    choice that shows the grouping, see :func:`default_elements`). ``layout_limits`` = (most groups,
    most channels or kernels per group) of the input and weight layouts; default: what fits a
    terminal (see :func:`layout_limits_for`). ``warnings_seen``: the warnings raised while the case
    ran, as :func:`run_quietly` words them, each shown as a note.

    >>> from pathlib import Path; from conformance.cases.loader import load_file
    >>> from conformance.running.implementations import load_implementation
    >>> from conformance.running.runner import run_case
    >>> case = load_file(Path(__file__).parents[2] / "cases" / "seed" / "groups3.yaml")[0]
    >>> e = build_explanation(run_case(case, load_implementation(None)))
    >>> e.grouping.groups, [round(x.shown, 3) for x in e.elements][:3], [c.total for c in e.elements[2].sum.channels]
    (3, [2.1, 4.3, 650.0], [50.0, 600.0])
    """
    case, run = result.case, result.run
    if case is None:
        return Explanation(
            name=result.name,
            location=result.file,
            description="",
            op="",
            signature="",
            dtype="float32",
            grouping=None,
            message=f"case {result.name} could not be loaded:\n{result.message}",
        )
    conv = case.conv
    grouping = Grouping(conv.type, conv.groups, conv.in_channels, conv.out_channels) if conv.is_divisible else None
    explanation = Explanation(
        name=case.name,
        location=case.location,
        description=case.description,
        op=conv.type,
        signature=signature(conv),
        dtype=case.dtype,
        grouping=grouping,
        invalid=None if conv.is_divisible else invalid_reason(conv),
        formula=element_formula(conv),
        tolerance=case.rtol_atol,
        checks=tuple(CheckLine(c.name, c.passed, c.summary, is_extra_check(c.name)) for c in result.checks),
        exercise=EXERCISE_TAG in case.tags,
        notes=tuple(Note("warning", text) for text in warnings_seen),
    )
    if run is None:
        explanation.message = result.message
        return explanation
    if case.expect_error is not None or run.torch.output is None or grouping is None:
        explanation.message = "This layer is invalid, so there is no output to explain."
        explanation.refusals = tuple(
            (
                side,
                f"refused: {outcome.describe_error()}"
                if outcome.refused
                else f"computed an output of shape {_shape_of(outcome.output)}",
            )
            for side, outcome in ((run.implementation.name, run.impl), ("torch", run.torch))
        )
        return explanation

    tensors = run.tensors
    geo = layout_of(conv, tensors.input.shape, tensors.weight.shape)
    shape = geo.output_shape
    explanation.output_shape, explanation.unbatched, explanation.kernel = shape, geo.unbatched, geo.kernel
    if geo.batch == 0 or math.prod(shape) == 0:
        explanation.message = (
            f"The output has shape {shape}: no element to write out (an empty batch or an empty "
            "output is valid, and torch returns an empty tensor)."
        )
    else:
        explanation.input = input_layout(
            grouping, tensors.input.reshape(geo.batch, conv.in_channels, *geo.in_size), layout_limits
        )
    explanation.weight = weight_layout(grouping, tensors.weight, layout_limits)
    sides = [(run.implementation.name, run.impl.output), ("torch", run.torch.output), ("expected", tensors.expected)]
    # a side without an output (an implementation that skipped or refused the case) gets no column
    arrays = {name: _batched(array, shape) for name, array in sides if array is not None}
    explanation.sides = tuple(arrays)
    if elements:
        chosen = [(tuple(int(i) for i in index), "asked for") for index in elements]
    else:
        chosen = default_elements(shape, grouping, result, geo.kernel, overlap_position(geo))
    explanation.input_size, explanation.out_size, explanation.stride = geo.in_size, geo.out_size, geo.stride
    explained = []
    for index, reason in chosen:
        values = {name: None if array is None else float(array[index]) for name, array in arrays.items()}
        window = () if conv.transposed else window_of(geo, index[2:])
        explained.append(ElementExplanation(element_sum(case, tensors, index), values, reason, window))
    explanation.elements = tuple(explained)
    if conv.transposed and geo.batch:
        explanation.scatters = scatters_of(grouping, geo, tensors)
    explanation.cost = cost_of(grouping, geo)
    explanation.notes += tuple(
        note
        for note in (
            rounding_note(case.dtype, result, explanation.elements),
            carry_note(tensors, explanation.elements, case.dtype),
        )
        if note is not None
    )
    return explanation


def overlap_position(geo: Layout) -> tuple[int, ...] | None:
    """The first output position of a transposed convolution that the most input positions write
    into, when that is more than the fewest (overlapping windows); None for a convolution, or when
    every position receives alike.

    >>> from conformance.cases.schema import ConvConfig
    >>> conv = ConvConfig(2, 2, 3, stride=2, groups=2, type="ConvTranspose1d")
    >>> overlap_position(layout_of(conv, (1, 2, 3), (2, 1, 3)))  # outputs 0…6: 2 and 4 get two windows
    (2,)
    """
    if not geo.conv.transposed:
        return None
    best, varies = [], False
    for size, n, k, s, d, p in zip(
        geo.out_size, geo.in_size, geo.kernel, geo.stride, geo.dilation, geo.pad_before, strict=False
    ):
        counts = [
            sum(1 for tap in range(k) if (i + p - tap * d) % s == 0 and 0 <= (i + p - tap * d) // s < n)
            for i in range(size)
        ]
        varies = varies or (bool(counts) and max(counts) > min(counts))
        best.append(counts.index(max(counts)) if counts else 0)
    return tuple(best) if varies else None


def _shape_of(array: np.ndarray | None) -> str:
    return "(none)" if array is None else str(tuple(array.shape))


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
    reasons = [
        f"{name} = {value} is not divisible by groups = {conv.groups} ({value} % {conv.groups} = {value % conv.groups})"
        for name, value in (("in_channels", conv.in_channels), ("out_channels", conv.out_channels))
        if value % conv.groups
    ]
    return (
        "Channels cannot be split into equal groups: "
        + "; ".join(reasons)
        + ". Every group must hold the same number of input and of output channels."
    )


def shown_groups(groups: int, most: int = MAX_LAYOUT_GROUPS) -> tuple[list[int], list[int]]:
    """(groups laid out, groups left out): all up to ``most``, else the first ones and the last."""
    if groups <= most:
        return list(range(groups)), []
    shown = list(range(most - 1)) + [groups - 1]
    return shown, [g for g in range(groups) if g not in shown]


def layout_limits_for(block_size: int) -> tuple[int, int]:
    """The terminal's (most groups, most blocks per group): fewer when each block is a grid."""
    return (MAX_LAYOUT_GROUPS - 1, MAX_LAYOUT_GRIDS) if block_size > 1 else (MAX_LAYOUT_GROUPS, MAX_LAYOUT_CHANNELS)


def input_layout(grouping: Grouping, x: np.ndarray, limits: tuple[int, int] | None = None) -> TensorLayout:
    """Batch 0 of the input (N, C_in, *spatial), channel by channel, group by group."""
    most_groups, per_group = limits or layout_limits_for(math.prod(x.shape[2:]))
    shown, hidden = shown_groups(grouping.groups, most_groups)
    layouts = []
    for g in shown:
        channels = grouping.inputs_of_group(g)
        blocks = tuple(
            ChannelValues(f"x[0,{c}]", (0, c), g, c, None, np.asarray(x[0, c], dtype=np.float64))
            for c in channels[:per_group]
        )
        layouts.append(
            GroupLayout(g, channels, grouping.outputs_of_group(g), blocks, max(0, len(channels) - per_group))
        )
    axes = ("N", "C_in", *(name.upper() for name in _spatial_names(x.ndim - 2)))
    return TensorLayout("input", tuple(x.shape), axes, tuple(layouts), tuple(hidden))


def weight_layout(grouping: Grouping, weight: np.ndarray, limits: tuple[int, int] | None = None) -> TensorLayout:
    """The weight's kernels, group by group. Convolutions: ``W[o, j]`` (row o = output channel o,
    j counts the group's input channels). Transposed: ``W[c, j]`` (row c = input channel c, j counts
    the group's output channels) feeds output channel g·C_out/G + j."""
    most_groups, per_group = limits or layout_limits_for(math.prod(weight.shape[2:]))
    shown, hidden = shown_groups(grouping.groups, most_groups)
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
                blocks.append(
                    ChannelValues(f"W[{row},{j}]", (row, j), g, c, o, np.asarray(weight[row, j], dtype=np.float64))
                )
        layouts.append(GroupLayout(g, ins, outs, tuple(blocks), len(rows) * weight.shape[1] - len(blocks)))
    if grouping.transposed:
        axes = ("in_channels", "out_channels/groups", *k_names)
    else:
        axes = ("out_channels", "in_channels/groups", *k_names)
    return TensorLayout("weight", tuple(weight.shape), axes, tuple(layouts), tuple(hidden))


def scatters_of(grouping: Grouping, geo: Layout, tensors: CaseTensors, most: int = MAX_SCATTERS) -> tuple[Scatter, ...]:
    """The first ``most`` input positions of input channel 0 (and of the last group's first channel)
    of batch 0, each as the kernels it writes into the output and where."""
    x = tensors.input.reshape(geo.batch, grouping.in_channels, *geo.in_size).astype(np.float64)
    weight = tensors.weight.astype(np.float64)
    channels = sorted({0, grouping.inputs_of_group(grouping.groups - 1)[0]})
    found = []
    for c in channels:
        group = grouping.group_of_input(c)
        for position in list(np.ndindex(*geo.in_size))[:most]:
            q = tuple(int(i) for i in position)
            found.append(
                Scatter(
                    "x[0," + ",".join(str(i) for i in (c, *q)) + "]",
                    float(x[(0, c, *q)]),
                    c,
                    grouping.outputs_of_group(group),
                    scatter_of(geo, q),
                    tuple(weight[c, j] for j in range(grouping.out_per_group)),
                )
            )
    return tuple(found)


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
    return Cost(
        weights,
        weights * grouping.groups,
        grouping.out_channels if geo.conv.bias else 0,
        outputs,
        per_output,
        multiply_adds,
        multiply_adds * grouping.groups,
    )


# ---------------------------------------------------------------------------------------------
# Notes where the numbers surprise


def rounding_note(dtype: str, result: CaseResult, elements: Sequence[ElementExplanation]) -> Note | None:
    """Why a tiny error shows beside values that print identically: the spacing of the dtype's
    numbers near the value (only when a passing comparison shows an error, in a rounding dtype)."""
    if dtype == "float64" or not elements:
        return None
    passing = [
        c.comparison for c in result.checks if c.comparison is not None and c.comparison.passed and c.tensor == "output"
    ]
    worst = max(passing, key=lambda c: c.max_abs_error, default=None)
    if worst is None or worst.max_abs_error <= 0:
        return None
    error = worst.max_abs_error
    # Cite a value the learner can see: the worst element's own when it is written out, else the
    # largest value written out (a value from elsewhere in the output would appear from nowhere).
    shown = {e.sum.index: e.sum.total for e in elements}
    worst_at = tuple(int(i) for i in worst.worst_index) if worst.worst_index is not None else None
    if worst_at is not None and len(worst_at) == len(elements[0].sum.index) - 1:
        worst_at = (0, *worst_at)
    value = shown.get(worst_at) if worst_at is not None else None
    if value is None:
        value = max(shown.values(), key=abs)
    storage = DTYPES.get(dtype, np.float32)
    if dtype == "bfloat16":
        spacing = float(np.spacing(np.float32(abs(value)))) * 2**16  # 8 significant bits instead of 24
    else:
        spacing = float(np.spacing(storage(abs(value))))
    digits = {"float32": 7, "float16": 3, "bfloat16": 2}.get(dtype, 7)
    stored = float(storage(value))
    stored_text = np.format_float_positional(stored, precision=10, unique=False, trim="-")
    exact = f" ({format_number(value, 'float64')} itself is stored as {stored_text})" if stored != value else ""
    return Note(
        "rounding",
        f"Why an error of {format_number(error, 'float64', 3)} when the values print alike: "
        f"{dtype} keeps about {digits} significant digits, so near {format_number(value, dtype)} "
        f"neighbouring {dtype} numbers are {format_number(spacing, 'float64', 3)} apart{exact}; "
        "the same sum added in another order can land a step or two away.",
    )


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
        partials = sorted((c for c in element.sum.channels if c.total), key=lambda c: abs(c.total))
        for low, high in zip(partials, partials[1:], strict=False):
            if abs(low.total) >= _lowest_digit_place(high.total):
                # Only the two partial sums that collide: the note stays within three lines.
                return Note(
                    "carry",
                    f"Digits carry in {format_number(element.shown, dtype)}: "
                    f"{format_number(low.total, dtype)} (in {low.input_channel}) reaches the digits of "
                    f"{format_number(high.total, dtype)} (in {high.input_channel}), so the digits no longer "
                    "name the inputs; the sum is still right.",
                )
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
    return plan_conv2d(
        tensors.input.shape,
        tensors.weight.shape,
        None if tensors.bias is None else tensors.bias.shape,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.padding_mode,
    )
