"""Explain a case the way the seed blog post did by hand: which output reads which inputs, and
every output element written out as its sum of products.

    y[0,0,0,0] = 2.1 = 1×0.1 (in 0) + 2×1 (in 1)

Everything here works from a :class:`~conformance.runner.CaseResult` (the case, its tensors and
both outputs), so the explanation doubles as a check: the values it explains are torch's, shown
beside the implementation's and the expected ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from reference_impl import ConvGeometry, plan_conv2d, source_indices

from .runner import CaseResult, CaseTensors
from .schema import DTYPES, Case, ConvConfig

DEFAULT_MAX_TERMS = 12  # a 3x3 depthwise tap set (9) or a 1x1 conv over 12 channels stays whole
MAX_DEFAULT_ELEMENTS = 32  # explain every element of outputs up to this size, else one per channel
MAX_TABLE_ROWS = 32  # rows of the weight layout and connectivity tables before eliding


@dataclass(frozen=True)
class Term:
    """One product ``weight × value`` of an output element's sum."""

    weight: float
    value: float  # the input value read (0 for a zero-padding tap)
    input_channel: int
    tap: tuple[int, int]  # (p, q): the kernel position
    position: tuple[int, int] | None  # the input (row, col) read; None for zero padding

    @property
    def product(self) -> float:
        return self.weight * self.value


@dataclass(frozen=True)
class ElementSum:
    """An output element ``y[n, o, h, w]`` as ``bias + Σ weight × input`` over its group's inputs."""

    index: tuple[int, int, int, int]
    group: int
    terms: tuple[Term, ...]
    bias: float | None

    @property
    def total(self) -> float:
        return float(sum(term.product for term in self.terms) + (self.bias or 0.0))


# ---------------------------------------------------------------------------------------------
# Numbers


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


def _factor(value: float, dtype: str) -> str:
    text = format_number(value, dtype)
    return f"({text})" if text.startswith("-") else text


def _channels(kind: str, first: int, last: int) -> str:
    """('input', 2, 3) -> 'input channels 2-3'; ('input', 2, 2) -> 'input channel 2'."""
    return f"{kind} channel {first}" if first == last else f"{kind} channels {first}-{last}"


# ---------------------------------------------------------------------------------------------
# The grouping


def connectivity(conv: ConvConfig) -> np.ndarray:
    """(out_channels, in_channels): the group through which output ``o`` reads input ``c``, or -1.

    >>> connectivity(ConvConfig(4, 2, 1, groups=2)).tolist()
    [[0, 0, -1, -1], [-1, -1, 1, 1]]
    """
    groups = conv.groups
    out_group = np.arange(conv.out_channels) // (conv.out_channels // groups)  # (C_out,)
    in_group = np.arange(conv.in_channels) // (conv.in_channels // groups)  # (C_in,)
    return np.where(out_group[:, None] == in_group[None, :], out_group[:, None], -1)


def grouping_lines(conv: ConvConfig) -> list[str]:
    """The grouping in words and numbers, and what the weight's shape means."""
    groups, c_in, c_out = conv.groups, conv.in_channels, conv.out_channels
    in_per_group, out_per_group = c_in // groups, c_out // groups
    k_h, k_w = conv.kernel_hw
    lines = [f"groups = {groups} (number of groups): the {c_in} input channels form {groups} group(s) of "
             f"in_channels/groups = {c_in}/{groups} = {in_per_group}, the {c_out} output channels {groups} group(s) "
             f"of out_channels/groups = {c_out}/{groups} = {out_per_group}.",
             f"Each group has {in_per_group} input channel(s) and {out_per_group} output channel(s); "
             f"an output channel reads only the input channels of its own group:"]
    for g in range(groups):
        if g == MAX_TABLE_ROWS:
            lines.append(f"  … ({groups - g} more groups)")
            break
        lines.append(f"  group {g}: {_channels('output', g * out_per_group, (g + 1) * out_per_group - 1)} read"
                     f"{'s' if out_per_group == 1 else ''} {_channels('input', g * in_per_group, (g + 1) * in_per_group - 1)}")
    if groups == 1:
        lines.append("With one group every output channel reads every input channel: the ordinary (dense) convolution.")
    elif groups == c_in:
        multiplier = c_out // c_in
        lines.append(f"groups = in_channels: a depthwise convolution, each input channel filtered on its own"
                     + (f", with depth multiplier out_channels/in_channels = {multiplier} (output channels "
                        f"{multiplier}g … {multiplier}g+{multiplier - 1} all read input channel g)." if multiplier > 1 else "."))
    lines.append(f"weight shape (out_channels, in_channels/groups, kH, kW) = ({c_out}, {in_per_group}, {k_h}, {k_w}): "
                 f"one row per output channel, holding one {k_h}×{k_w} kernel for each of the {in_per_group} input "
                 f"channel(s) of its group. The second axis counts 0…{in_per_group - 1} within the group, "
                 f"not 0…{c_in - 1}.")
    return lines


def weight_layout_lines(conv: ConvConfig) -> list[str]:
    """The table ``W[o, j, :, :] -> group g, input channel g*(in_channels/groups) + j``."""
    in_per_group, out_per_group = conv.in_channels // conv.groups, conv.out_channels // conv.groups
    shown_j = min(in_per_group, 8)
    lines = [f"weight layout: W[o, j, :, :] belongs to group g = o // {out_per_group} and multiplies input channel "
             f"g*{in_per_group} + j"]
    header = ["o", "group"] + [f"W[o,{j}]→in" for j in range(shown_j)] + (["…"] if shown_j < in_per_group else [])
    rows = []
    for o in range(min(conv.out_channels, MAX_TABLE_ROWS)):
        g = o // out_per_group
        rows.append([str(o), str(g)] + [str(g * in_per_group + j) for j in range(shown_j)]
                    + (["…"] if shown_j < in_per_group else []))
    lines.extend("  " + line for line in _table(header, rows))
    if conv.out_channels > MAX_TABLE_ROWS:
        lines.append(f"  … ({conv.out_channels - MAX_TABLE_ROWS} more rows)")
    return lines


def connectivity_lines(conv: ConvConfig) -> list[str]:
    """The (output × input) connectivity matrix as text: the group digit where o reads c, '·' elsewhere."""
    matrix = connectivity(conv)
    rows_shown, cols_shown = min(matrix.shape[0], MAX_TABLE_ROWS), min(matrix.shape[1], MAX_TABLE_ROWS)
    width = max(len(str(conv.groups - 1)), len(str(cols_shown - 1)))
    label = len(f"out {rows_shown - 1}")
    lines = ["connectivity (rows: output channels, columns: input channels; the number is the group through which "
             "the output reads that input, · = not read):",
             "  " + "in".rjust(label) + " " + " ".join(str(c).rjust(width) for c in range(cols_shown))
             + (" …" if cols_shown < matrix.shape[1] else "")]
    for o in range(rows_shown):
        cells = " ".join(("·" if v < 0 else str(v)).rjust(width) for v in matrix[o, :cols_shown])
        lines.append("  " + f"out {o}".rjust(label) + " " + cells)
    if rows_shown < matrix.shape[0]:
        lines.append(f"  … ({matrix.shape[0] - rows_shown} more output channels)")
    return lines


def cost_lines(conv: ConvConfig, output_shape: Sequence[int]) -> list[str]:
    """Parameters and multiply-adds, against the same layer with groups=1."""
    groups, c_in, c_out = conv.groups, conv.in_channels, conv.out_channels
    k_h, k_w = conv.kernel_hw
    weights, dense_weights = c_out * (c_in // groups) * k_h * k_w, c_out * c_in * k_h * k_w
    bias = c_out if conv.bias else 0
    outputs = int(np.prod(output_shape))
    per_output = (c_in // groups) * k_h * k_w
    saving = f"1/{groups} of it" if groups > 1 else "the same"
    return [f"parameters: weight {c_out}×{c_in // groups}×{k_h}×{k_w} = {weights}"
            + (f" + bias {bias}" if bias else "") + f"; with groups=1 the weight is {c_out}×{c_in}×{k_h}×{k_w} = "
            f"{dense_weights}, so this layer has {saving}",
            f"multiply-adds: {outputs} outputs × {per_output} products each = {outputs * per_output}; "
            f"with groups=1: {outputs} × {c_in * k_h * k_w} = {outputs * c_in * k_h * k_w} ({saving})"]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]


# ---------------------------------------------------------------------------------------------
# Output elements as sums of products


def geometry_of(case: Case, tensors: CaseTensors) -> ConvGeometry:
    """The reference's geometry for the case (raises ValueError, worded like torch, for an invalid layer)."""
    conv = case.conv
    return plan_conv2d(tensors.input.shape, tensors.weight.shape, None if tensors.bias is None else tensors.bias.shape,
                       conv.stride, conv.padding, conv.dilation, conv.groups, conv.padding_mode)


def element_sum(case: Case, tensors: CaseTensors, index: Sequence[int]) -> ElementSum:
    """``y[n, o, h, w]`` written out: every (input channel of the group, kernel tap) product.

    >>> from pathlib import Path; from conformance.loader import load_file; from conformance.runner import make_tensors
    >>> case = load_file(Path(__file__).parent.parent / "cases" / "seed" / "groups3.yaml")[0]  # the seed experiment
    >>> s = element_sum(case, make_tensors(case), (0, 2, 0, 0))
    >>> [(t.weight, round(t.value, 6), t.input_channel) for t in s.terms], round(s.total, 3)
    ([(5.0, 10.0, 2), (6.0, 100.0, 3)], 650.0)
    """
    geo = geometry_of(case, tensors)
    n, o, h, w = (int(i) for i in index)
    group = geo.group_of_output_channel(o)
    top, bottom, left, right = geo.pads
    # For every padded row/column, the input row/column it copies (-1: a zero of zero padding).
    rows = source_indices(geo.height, top, bottom, geo.padding_mode)
    cols = source_indices(geo.width, left, right, geo.padding_mode)
    x = tensors.input.reshape(geo.batch, geo.in_channels, geo.height, geo.width).astype(np.float64)
    weight = tensors.weight.astype(np.float64)
    terms = []
    for j, channel in enumerate(geo.input_channels_of_group(group)):
        for p in range(geo.kernel[0]):
            for q in range(geo.kernel[1]):
                row = rows[h * geo.stride[0] + p * geo.dilation[0]]
                col = cols[w * geo.stride[1] + q * geo.dilation[1]]
                inside = row >= 0 and col >= 0
                terms.append(Term(float(weight[o, j, p, q]), float(x[n, channel, row, col]) if inside else 0.0,
                                  channel, (p, q), (int(row), int(col)) if inside else None))
    bias = None if tensors.bias is None else float(tensors.bias[o])
    return ElementSum((n, o, h, w), group, tuple(terms), bias)


def format_element(element: ElementSum, value: float, dtype: str, kernel: tuple[int, int],
                   max_terms: int = DEFAULT_MAX_TERMS) -> str:
    """``y[0,2,0,0] = 650 = 5×10 (in 2) + 6×100 (in 3)``; beyond ``max_terms`` the largest products
    are kept (in order) and the rest summed up as ``… (n more, together s)``."""
    one_by_one = kernel == (1, 1)

    def where(term: Term) -> str:
        if one_by_one and term.position is not None:
            return f"in {term.input_channel}"
        at = "zero padding" if term.position is None else f"at {term.position[0]},{term.position[1]}"
        return f"in {term.input_channel}, tap {term.tap[0]},{term.tap[1]}, {at}"

    terms = list(element.terms)
    rest: list[Term] = []
    if len(terms) > max_terms:
        keep = set(sorted(range(len(terms)), key=lambda i: -abs(terms[i].product))[:max(max_terms, 0)])
        rest = [t for i, t in enumerate(terms) if i not in keep]
        terms = [t for i, t in enumerate(terms) if i in keep]
    parts = [f"{_factor(t.weight, dtype)}×{_factor(t.value, dtype)} ({where(t)})" for t in terms]
    if rest:
        parts.append(f"… ({len(rest)} more, together {format_number(sum(t.product for t in rest), dtype)})")
    if element.bias is not None:
        parts.append(f"{_factor(element.bias, dtype)} (bias)")
    n, o, h, w = element.index
    return f"y[{n},{o},{h},{w}] = {format_number(value, dtype)} = " + " + ".join(parts or ["0"])


# ---------------------------------------------------------------------------------------------
# The whole explanation


def _as_4d(array: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """Outputs of unbatched cases are (C, H, W); index them as (1, C, H, W)."""
    if array is None or int(np.size(array)) != int(np.prod(shape)):
        return None
    return np.asarray(array, dtype=np.float64).reshape(shape)


def default_elements(output_shape: tuple[int, int, int, int], result: CaseResult | None = None
                     ) -> list[tuple[int, int, int, int]]:
    """Which elements to write out: a failed comparison's worst elements first; then all of a small
    output, else the first element of every output channel (one line per channel shows the grouping)."""
    chosen: list[tuple[int, int, int, int]] = []
    if result is not None:
        for check in result.checks:
            c = check.comparison
            if c is not None and not c.passed and c.worst_index is not None:
                index = tuple(c.worst_index)
                index = (0, *index) if len(index) == 3 else index
                if len(index) == 4 and index not in chosen:
                    chosen.append(index)  # type: ignore[arg-type]
    n, c_out, h_out, w_out = output_shape
    if n * c_out * h_out * w_out <= MAX_DEFAULT_ELEMENTS:
        candidates = [tuple(int(i) for i in idx) for idx in np.ndindex(*output_shape)]
    else:
        candidates = [(0, o, 0, 0) for o in range(min(c_out, MAX_DEFAULT_ELEMENTS))]
    chosen.extend(idx for idx in candidates if idx not in chosen)  # type: ignore[misc]
    return chosen


def parse_element(text: str, output_shape: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """``"0,2,0,0"`` (or ``"2,0,0"`` for an unbatched case) -> (n, o, h, w), checked against the output.

    >>> parse_element("0, 2, 0, 0", (1, 6, 1, 1))
    (0, 2, 0, 0)
    >>> parse_element("0,6,0,0", (1, 6, 1, 1))
    Traceback (most recent call last):
    ...
    ValueError: --element 0,6,0,0: o=6 is out of range: the output has shape (n, o, h, w) = (1, 6, 1, 1)
    """
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--element expects n,o,h,w (integers separated by commas), got {text!r}") from None
    if len(values) == 3:
        values = (0, *values)
    if len(values) != 4:
        raise ValueError(f"--element expects n,o,h,w (4 integers, or o,h,w), got {text!r}")
    for name, value, size in zip("nohw", values, output_shape):
        if not 0 <= value < size:
            raise ValueError(f"--element {text}: {name}={value} is out of range: the output has shape (n, o, h, w) = "
                             f"{tuple(output_shape)}")
    return values  # type: ignore[return-value]


def explain_result(result: CaseResult, elements: Sequence[Sequence[int]] | None = None,
                   max_terms: int = DEFAULT_MAX_TERMS) -> str:
    """The full explanation of a run case: grouping, weight layout, connectivity, the elements as sums
    of products, costs, and the values of every side next to each other."""
    case, run = result.case, result.run
    if case is None:
        return f"case {result.name} could not be loaded:\n{result.message}"
    conv = case.conv
    lines = [f"case {case.name} ({case.location})"]
    if case.description:
        lines.append(case.description)
    lines.append(f"Conv2d(in_channels={conv.in_channels}, out_channels={conv.out_channels}, "
                 f"kernel_size={conv.kernel_size}, stride={conv.stride}, padding={conv.padding!r}, "
                 f"dilation={conv.dilation}, groups={conv.groups}, bias={conv.bias}"
                 + (f", padding_mode={conv.padding_mode!r}" if conv.padding_mode != "zeros" else "") + ")")
    if not conv.is_divisible:
        lines.append(_invalid_explanation(conv))
    if run is None:
        lines.append(result.message)
        return "\n".join(lines)
    if case.expect_error is not None or run.torch.output is None:
        lines.append("")
        lines.append("This layer is invalid, so there is no output to explain:")
        for side, outcome in ((run.implementation.name, run.impl), ("torch", run.torch)):
            lines.append(f"  {side}: " + (f"refused: {outcome.describe_error()}" if outcome.refused else
                                          f"computed an output of shape {tuple(outcome.output.shape)}"))
        return "\n".join(lines)

    geo = geometry_of(case, run.tensors)
    shape4 = (geo.batch, geo.out_channels, *geo.output_size)
    torch_out = _as_4d(run.torch.output, shape4)
    impl_out = _as_4d(run.impl.output, shape4)
    expected = _as_4d(run.tensors.expected, shape4)
    lines += ["", *grouping_lines(conv), "", *weight_layout_lines(conv), "", *connectivity_lines(conv), ""]

    chosen = [tuple(int(i) for i in e) for e in elements] if elements else default_elements(shape4, result)
    lines.append("output elements as sums of products (weight×input; \"in c\" = input channel c"
                 + ("" if geo.kernel == (1, 1) else "; tap p,q = kernel row,column; at r,c = the input row,column read")
                 + "); the value is torch's:" + (" (unbatched input: n = 0)" if geo.unbatched else ""))
    by_group: dict[int, list[ElementSum]] = {}
    for index in chosen:
        element = element_sum(case, run.tensors, index)
        by_group.setdefault(element.group, []).append(element)
    in_per_group, out_per_group = geo.in_channels_per_group, geo.out_channels_per_group
    for group in sorted(by_group):
        lines.append(f"  group {group} ({_channels('output', group * out_per_group, (group + 1) * out_per_group - 1)}, "
                     f"{_channels('input', group * in_per_group, (group + 1) * in_per_group - 1)}):")
        for element in by_group[group]:
            lines.append("    " + format_element(element, float(torch_out[element.index]), case.dtype, geo.kernel,
                                                 max_terms))
    lines += ["", *cost_lines(conv, shape4), ""]

    sides = [(run.implementation.name, impl_out), ("torch", torch_out)] + ([("expected", expected)]
                                                                          if expected is not None else [])
    lines.append("values side by side (the explanation is also a check):")
    header = ["element"] + [name for name, _ in sides] + ["sum above", "verdict"]
    rtol, atol = case.rtol_atol
    rows = []
    for group in sorted(by_group):
        for element in by_group[group]:
            values = [None if array is None else float(array[element.index]) for _, array in sides]
            agree = all(v is not None and abs(v - element.total) <= atol + rtol * abs(element.total) for v in values)
            rows.append(["y[{},{},{},{}]".format(*element.index)]
                        + ["-" if v is None else format_number(v, case.dtype) for v in values]
                        + [format_number(element.total, case.dtype), "agree" if agree else "DIFFER"])
    lines.extend("  " + line for line in _table(header, rows))
    for check in result.checks:
        lines.append(f"  {'ok  ' if check.passed else 'FAIL'} {check.summary}")
    return "\n".join(lines)


def _invalid_explanation(conv: ConvConfig) -> str:
    if conv.groups <= 0:
        return f"groups = {conv.groups}: groups must be a positive integer."
    reasons = [f"{name} = {value} is not divisible by groups = {conv.groups} ({value} % {conv.groups} = "
               f"{value % conv.groups})" for name, value in (("in_channels", conv.in_channels),
                                                             ("out_channels", conv.out_channels))
               if value % conv.groups]
    return ("Channels cannot be split into equal groups: " + "; ".join(reasons)
            + ". Every group must hold the same number of input and of output channels.")
