"""The terminal renderer of the explanation model (:mod:`conformance.teaching.explain`), for learners.

Every line fits the terminal (``COLUMNS``, at most 100 characters): prose is wrapped, sums are
broken at their ``+`` signs, grids and the connectivity matrix are cropped with ``…``. The
harness's extra checks (torch variants, metamorphic relations, wiring probe, gradients) are only
listed when asked for (``show_checks``).
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence

import numpy as np

from conformance.running.runner import CaseResult
from conformance.teaching.element_sums import ChannelSum, Product
from conformance.teaching.explain import (
    DEFAULT_MAX_TERMS,
    MAX_TABLE_ROWS,
    ChannelValues,
    ElementExplanation,
    Explanation,
    Grouping,
    TensorLayout,
    build_explanation,
    channel_span,
    format_factor,
    format_number,
    plural,
)

MAX_WIDTH = 100  # wider terminals still get 100-character lines: long lines are hard to follow
MIN_WIDTH = 40
MAX_GRID = 8  # rows and columns of a channel's values shown before eliding
GRID_DIGITS = 4  # significant digits in the input/weight layout (the sums show every digit)
MAX_CHANNELS_IN_SUM = 8  # partial sums written out per element (the rest summed up)
MAX_CHANNELS_WITH_PRODUCTS = 3  # channels whose products are listed one per line (kernels over 1×1)
MAX_GROUP_LINES = 4  # groups listed one line each; more are written as one line with g


def terminal_width() -> int:
    """The width to fit: ``COLUMNS`` or the terminal's, at most 100 (default 100 off a terminal)."""
    columns = shutil.get_terminal_size((MAX_WIDTH, 24)).columns
    return max(MIN_WIDTH, min(columns, MAX_WIDTH))


def explain_result(
    result: CaseResult,
    elements: Sequence[Sequence[int]] | None = None,
    max_terms: int = DEFAULT_MAX_TERMS,
    *,
    width: int | None = None,
    show_checks: bool = False,
) -> str:
    """The learner's explanation of a run case, as terminal text."""
    return render_text(build_explanation(result, elements), width=width, max_terms=max_terms, show_checks=show_checks)


class _Writer:
    """Collects lines, wrapping prose to the width."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.lines: list[str] = []

    def text(self, text: str, indent: int = 0, hanging: int = 0) -> None:
        pad = " " * indent
        self.lines.extend(
            textwrap.wrap(
                text,
                self.width,
                initial_indent=pad,
                subsequent_indent=pad + " " * hanging,
                break_on_hyphens=False,
                break_long_words=True,
            )
            or [""]
        )

    def raw(self, line: str = "") -> None:
        self.lines.append(line)

    def heading(self, title: str) -> None:
        if self.lines and self.lines[-1]:
            self.lines.append("")
        self.lines.append(title)

    def joined(self, head: str, parts: Sequence[str], separator: str = " + ", indent: int | None = None) -> None:
        """``head`` followed by ``parts`` joined with ``separator``, broken before a separator where
        the line would overflow (after it, for a comma); continuation lines start under the first part."""
        comma = separator.strip() == ","
        indent = len(head) if indent is None else indent
        if indent > self.width // 2:
            indent = len(head) - len(head.lstrip()) + 6
        line = head
        for i, part in enumerate(parts):
            piece = part if i == 0 else separator + part
            room = self.width - (1 if comma and i < len(parts) - 1 else 0)  # a comma may follow it
            if i and len(line) + len(piece) > room:
                self.lines.append(line.rstrip() + ("," if comma else ""))
                line = " " * indent + (part if comma else piece.lstrip())
            else:
                line += piece
        self.lines.append(line)

    def result(self, strict: bool = False) -> str:
        out = []
        for line in self.lines:  # the safety net: nothing leaves wider than the width
            if len(line) <= self.width:
                out.append(line)
            elif strict:
                raise ValueError(f"line of {len(line)} characters laid out for a width of {self.width}: {line!r}")
            else:
                lead = len(line) - len(line.lstrip())
                out.extend(
                    textwrap.wrap(
                        line,
                        self.width,
                        subsequent_indent=" " * (lead + 4),
                        drop_whitespace=True,
                        break_on_hyphens=False,
                    )
                )
        return "\n".join(out)


def render_text(
    explanation: Explanation,
    *,
    width: int | None = None,
    max_terms: int = DEFAULT_MAX_TERMS,
    show_checks: bool = False,
    reveal: bool = False,
    strict: bool = False,
) -> str:
    """The explanation as lines of at most ``width`` characters (default: :func:`terminal_width`).

    By default a learner sees one value per element (torch's, beside its sum); ``show_checks`` adds
    every side's values, the harness's comparisons and its extra checks (a disagreement is shown
    either way). An exercise case (tagged ``exercise``) prints ``?`` for its values, and leaves out
    what would give them away, unless ``reveal``.

    Every section lays itself out to fit; a line that still would not is hard-wrapped, or with
    ``strict`` raises ValueError (the tests use it, so a layout that relies on the safety net fails)."""
    e = explanation
    hidden = e.exercise and not reveal
    out = _Writer(max(MIN_WIDTH, width or terminal_width()))
    out.text(f"case {e.name} ({e.location})")
    for i, paragraph in enumerate(e.description.strip().split("\n") if e.description else []):
        if i:
            out.raw()
        out.text(paragraph)
    if e.signature:
        out.joined("layer: ", _split_signature(e.signature), separator=", ")
    if e.invalid:
        out.raw()
        out.text(e.invalid)
    if e.grouping is None:
        if e.message:
            out.raw()
            out.text(e.message)
        for side, said in e.refusals:
            out.text(f"{side}: {said}", indent=2, hanging=4)
        _notes(out, e, show_checks, hidden)
        _checks(out, e, show_checks)
        return out.result(strict)

    g = e.grouping
    _grouping(out, e, g, hidden)
    if not hidden:
        _connectivity(out, g)
    if e.input is not None:
        _tensor(out, e, e.input, hidden)
    if e.weight is not None:
        _tensor(out, e, e.weight, hidden)
    if e.message:
        out.raw()
        out.text(e.message)
    if e.elements and hidden:
        _hidden_elements(out, e)
    elif e.elements:
        if g.transposed:
            _scatter(out, e)
        _elements(out, e, max_terms)
        _values(out, e, show_checks)
    _checks(out, e, show_checks)
    _notes(out, e, show_checks, hidden)
    _cost(out, e)
    if not show_checks and e.checks and not hidden:
        failed = sum(not check.passed for check in e.checks)
        agreed = bool(e.elements) and all(
            all(agree.values()) and len(agree) == len(e.sides)
            for agree in (element.agrees(*e.tolerance) for element in e.elements)
        )
        sides = _and_list(list(e.sides))  # in full: a plug-in is named as it was given
        out.raw()
        out.text(
            (f"(Checked: {sides} agree with every sum above. " if agreed else "(")
            + f"The harness made {plural(len(e.checks), 'check')} on this case"
            + (f", {failed} of them failed" if failed else ", all passed")
            + "; --checks lists them.)"
        )
    return out.result(strict)


def _and_list(words: Sequence[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b and c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1] if words else ""


def _notes(out: _Writer, e: Explanation, show_checks: bool, hidden: bool) -> None:
    """The notes: a rounding note explains the comparisons, so it waits for --checks; a carry note
    would show sums an exercise hides."""
    for note in e.notes:
        if (note.kind == "rounding" and not show_checks) or (note.kind == "carry" and hidden):
            continue
        out.raw()
        out.text(note.text)


def _split_signature(signature: str) -> list[str]:
    """'Conv2d(a=1, b=(1, 2))' -> ['Conv2d(a=1', 'b=(1, 2))']: commas inside brackets stay."""
    parts, depth, current = [], 0, ""
    for char in signature:
        if char == "," and depth == 1:
            parts.append(current)
            current = ""
            continue
        depth += (char == "(") - (char == ")")
        current += char
    parts.append(current)
    return [part.strip() for part in parts]


# ---------------------------------------------------------------------------------------------
# Sections


def _grouping(out: _Writer, e: Explanation, g: Grouping, hidden: bool = False) -> None:
    out.heading("THE GROUPS")
    G, cin, cout = g.groups, g.in_channels, g.out_channels
    kind = "transposed convolution" if g.transposed else "convolution"
    if G == 1:
        out.text(
            f"groups = 1: one group holding all {plural(cin, 'input channel')} and all "
            f"{plural(cout, 'output channel')}, so every output channel reads every input channel: the "
            f"ordinary (dense) {kind}."
        )
    else:
        out.text(
            f"groups = {G}: the {cin} input channels are split into {G} groups of {cin}/{G} = "
            f"{plural(g.in_per_group, 'channel')}, the {cout} output channels into {G} groups of {cout}/{G} = "
            f"{plural(g.out_per_group, 'channel')}. It is {G} ordinary {kind}s side by side, each from "
            f"{plural(g.in_per_group, 'input channel')} to {plural(g.out_per_group, 'output channel')}, with "
            "their outputs stacked in group order."
        )
    if hidden:
        out.text("Which input channels each output channel reads is part of the exercise: --reveal shows it.")
        return
    if G <= MAX_GROUP_LINES:
        for group in range(G):
            outs, ins = g.outputs_of_group(group), g.inputs_of_group(group)
            verb = "reads" if len(outs) == 1 else "read"
            out.text(
                f"group {group}: {channel_span('output', outs)} {verb} {channel_span('input', ins)}",
                indent=2,
                hanging=4,
            )
    else:  # the same line G times says less than the pattern once
        verb = "reads" if g.out_per_group == 1 else "read"
        last = G - 1
        out.text(
            f"group g: {_channels_of_g('output', g.out_per_group)} {verb} "
            f"{_channels_of_g('input', g.in_per_group)}, for g = 0 … {last}; e.g. group {last}: "
            f"{channel_span('output', g.outputs_of_group(last))} {verb} "
            f"{channel_span('input', g.inputs_of_group(last))}",
            indent=2,
            hanging=4,
        )
    if G > 1:
        group_of_o = "g = o" if g.out_per_group == 1 else f"g = o // {g.out_per_group}"
        reads = (
            "input channel g"
            if g.in_per_group == 1
            else f"input channels g·{g.in_per_group} … g·{g.in_per_group}+{g.in_per_group - 1}"
        )
        out.text(
            f"Output channel o is in group {group_of_o} and reads {reads}: its inputs start at the offset "
            "g·in_channels/groups."
        )
    if g.kind == "depthwise":
        m = g.depth_multiplier
        out.text(
            "groups = in_channels: a depthwise convolution, each input channel filtered on its own"
            + (
                f", with depth multiplier out_channels/in_channels = {m}: output channels {m}c … {m}c+{m - 1} "
                "all read input channel c."
                if m > 1
                else "."
            )
        )


def _channels_of_g(kind: str, per_group: int) -> str:
    """('output', 1) -> 'output channel g'; ('input', 4) -> 'input channels 4g … 4g+3'."""
    if per_group == 1:
        return f"{kind} channel g"
    return f"{kind} channels {per_group}g … {per_group}g+{per_group - 1}"


def _connectivity(out: _Writer, g: Grouping) -> None:
    """The (out × in) matrix of ■/·. When it does not fit the width (or MAX_TABLE_ROWS), whole groups
    are left out of both axes, the first groups and the last kept, so the block diagonal still shows;
    a single group too large for the width is cropped. Either way a line says what was left out."""
    reads = g.reads()  # (C_out, C_in) bool
    width = len(str(g.in_channels - 1))

    def layout(cols: list[int], rows: list[int]) -> tuple[int, int] | None:
        """(label width, line width) of a matrix with these columns and rows; None if it does not fit."""
        label = max(len(f"out {max(rows)}  group {g.group_of_output(max(rows))}"), len("input channel"))
        gaps = sum(1 for a, b in zip(cols, cols[1:], strict=False) if b != a + 1)
        gap_rows = sum(1 for a, b in zip(rows, rows[1:], strict=False) if b != a + 1)
        line = 2 + label + 2 + (len(cols) + gaps) * (width + 1) - 1
        if line > out.width or len(rows) + gap_rows > MAX_TABLE_ROWS:
            return None
        return label, line

    cols, rows = list(range(g.in_channels)), list(range(g.out_channels))
    note = ""
    if layout(cols, rows) is None and g.groups > 2:
        for kept in range(g.groups - 2, 0, -1):  # the first `kept` groups and the last
            shown = [*range(kept), g.groups - 1]
            cols = [c for group in shown for c in g.inputs_of_group(group)]
            rows = [o for group in shown for o in g.outputs_of_group(group)]
            if layout(cols, rows) is not None:
                left_out = f"{kept}" if kept == g.groups - 2 else f"{kept} … {g.groups - 2}"
                note = (
                    f"(groups {left_out} are left out of both axes to fit: each reads only its own input "
                    "channels, as the groups shown do)"
                    if kept < g.groups - 2
                    else f"(group {left_out} is left out of both axes to fit: it reads only its own input channels)"
                )
                break
    if layout(cols, rows) is None:  # one group alone is too wide or too tall: crop it, keeping the last channel
        most_rows = MAX_TABLE_ROWS - 2
        rows = (
            list(range(g.out_channels)) if g.out_channels <= most_rows + 1 else [*range(most_rows), g.out_channels - 1]
        )
        for most_cols in range(g.in_channels, 0, -1):  # the first channels and the last
            cols = (
                list(range(g.in_channels)) if most_cols == g.in_channels else [*range(most_cols - 1), g.in_channels - 1]
            )
            if layout(cols, rows) is not None:
                break
        what = []
        for shown, total, kind in ((cols, g.in_channels, "input"), (rows, g.out_channels, "output")):
            count = total - len(shown)
            if count:
                first = shown[-2] + 1
                what.append(f"{kind} channels {first} … {total - 2}" if count > 1 else f"{kind} channel {first}")
        single = len(what) == 1 and "channels" not in what[0]
        note = f"({' and '.join(what)} {'is' if single else 'are'} left out to fit)"
    found = layout(cols, rows)
    label = found[0] if found else len(f"out {g.out_channels - 1}  group {g.groups - 1}")

    def cells(values: Sequence[str]) -> str:
        """Cells of the shown columns, with … where columns are left out."""
        parts = []
        for i, (c, text) in enumerate(zip(cols, values, strict=False)):
            if i and c != cols[i - 1] + 1:
                parts.append("…".rjust(width))
            parts.append(text.rjust(width))
        return " ".join(parts)

    out.heading("CONNECTIVITY: ■ = the output channel reads that input channel, · = it does not")
    out.raw("  " + "input channel".rjust(label) + "  " + cells([str(c) for c in cols]))
    if g.groups > 1:
        out.raw("  " + "input group".rjust(label) + "  " + cells([str(g.group_of_input(c)) for c in cols]))
    for i, o in enumerate(rows):
        if i and o != rows[i - 1] + 1:
            out.raw("  …")
        name = f"out {o}" + (f"  group {g.group_of_output(o)}" if g.groups > 1 else "")
        out.raw("  " + name.ljust(label) + "  " + cells(["■" if reads[o, c] else "·" for c in cols]))
    if note:
        out.text(note, indent=2, hanging=1)


def _tensor(out: _Writer, e: Explanation, layout: TensorLayout, hidden: bool = False) -> None:
    g = e.grouping
    assert g is not None
    shape = "(" + ", ".join(str(s) for s in layout.shape) + ")"
    axes = "(" + ", ".join(layout.axes) + ")"
    if layout.name == "input":
        out.heading("THE INPUT" if hidden else "THE INPUT, group by group")
        out.text(f"shape {shape} = {axes}" + ("; batch 0 shown." if layout.shape[0] > 1 else "."))
    else:
        out.heading("THE WEIGHT" if hidden else "THE WEIGHT, group by group")
        out.text(f"shape {shape} = {axes}.")
        if g.transposed and g.groups == 1:
            out.text(
                f"{e.op} keeps input channels first: W[c, o] is input channel c's kernel into output "
                "channel o, one row per input channel (a Conv2d weight has one row per output channel)."
            )
        elif g.transposed:
            out.text(
                f"{e.op} keeps input channels first: W[c, j] belongs to input channel c's group g and "
                f"feeds output channel g·out_channels/groups + j = g·{g.out_per_group} + j (j counts "
                f"0…{g.out_per_group - 1} within the group). The digits below say which input feeds which "
                "output."
            )
        elif g.groups == 1:
            out.text("W[o, c] is output channel o's kernel for input channel c: one row per output channel.")
        elif g.in_per_group == 1:
            which = "input channel o" if g.out_per_group == 1 else f"input channel g = o // {g.out_per_group}"
            out.text(
                f"W[o, 0] is output channel o's kernel for the one input channel of its group, {which}: "
                "the second axis has size in_channels/groups = 1."
            )
        else:
            out.text(
                f"W[o, j] is output channel o's kernel for input channel g·in_channels/groups + j = "
                f"g·{g.in_per_group} + j, g = o's group: the second axis counts 0…{g.in_per_group - 1} "
                f"within the group, not 0…{g.in_channels - 1}."
            )
    one_value = all(block.values.size == 1 for group in layout.groups for block in group.blocks)
    if hidden:  # the tensor as stored, not sorted into groups: which group holds what is the exercise
        blocks = [block for group in layout.groups for block in group.blocks]
        if one_value:
            out.joined(
                "  ",
                [f"{b.label} = {format_number(float(b.values.reshape(-1)[0]), e.dtype)}" for b in blocks],
                separator="   ",
            )
        else:
            for block in blocks:
                _grid(out, f"    {block.label} = ", block.values, e.dtype)
        return
    for i, group in enumerate(layout.groups):
        if i and group.group != layout.groups[i - 1].group + 1:
            out.raw(f"  … ({plural(group.group - layout.groups[i - 1].group - 1, 'more group')})")
        title = f"group {group.group}"
        if one_value:
            items = [
                f"{block.label} = {format_number(float(block.values.reshape(-1)[0]), e.dtype)}" + _route(block)
                for block in group.blocks
            ]
            if layout.name == "weight":  # one line per weight row
                rows: dict[int, list[str]] = {}
                for block, item in zip(group.blocks, items, strict=False):
                    rows.setdefault(block.index[0], []).append(item)
                for r, row_items in enumerate(rows.values()):
                    out.joined((title + ": " if r == 0 else "").rjust(len(title) + 4), row_items, separator="   ")
            else:
                out.joined(f"  {title}: ", items, separator="   ")
        else:
            out.raw(f"  {title}:")
            for block in group.blocks:
                _grid(out, f"    {block.label}{_route(block)} = ", block.values, e.dtype)
        if group.hidden_blocks:
            what = "kernel" if layout.name == "weight" else "channel"
            out.raw(f"    … ({plural(group.hidden_blocks, 'more ' + what)} in this group)")


def _route(block: ChannelValues) -> str:
    """' (in 2→out 3)' for a weight kernel: which input it multiplies, which output it feeds."""
    return "" if block.output_channel is None else f" (in {block.input_channel}→out {block.output_channel})"


def _grid(out: _Writer, head: str, values: np.ndarray, dtype: str) -> None:
    """A channel's values: 1-D on one line, 2-D as rows, 3-D as 2-D slices; cropped with …"""
    if values.ndim == 3:
        out.raw(head.rstrip(" ="))
        for d in range(min(values.shape[0], MAX_GRID)):
            _grid(out, " " * (len(head) - len(head.lstrip()) + 2) + f"[{d}] = ", values[d], dtype)
        if values.shape[0] > MAX_GRID:
            out.raw(" " * (len(head) - len(head.lstrip()) + 2) + f"… ({values.shape[0] - MAX_GRID} more)")
        return
    matrix = values.reshape(1, -1) if values.ndim <= 1 else values
    texts = [[format_number(float(v), dtype, GRID_DIGITS) for v in row[:MAX_GRID]] for row in matrix[:MAX_GRID]]
    cell = max(len(t) for row in texts for t in row)
    room = max(1, (out.width - len(head) + 1) // (cell + 1))  # cells are joined by one space
    if room < matrix.shape[1]:
        room = max(1, (out.width - len(head) - 1) // (cell + 1))  # and " …" says there are more
    cols = min(len(texts[0]), room)
    crop = cols < matrix.shape[1]
    for r, row in enumerate(texts):
        line = " ".join(t.rjust(cell) for t in row[:cols]) + (" …" if crop else "")
        out.raw((head if r == 0 else " " * len(head)) + line)
    if matrix.shape[0] > MAX_GRID:
        out.raw(" " * len(head) + f"… ({plural(matrix.shape[0] - MAX_GRID, 'more row')})")


def _elements(out: _Writer, e: Explanation, max_terms: int) -> None:
    g = e.grouping
    assert g is not None
    out.heading("OUTPUT ELEMENTS as sums of products (the value on the left is torch's)")
    one_by_one = all(k == 1 for k in e.kernel)
    if not one_by_one:  # a 1×1 layer's sum needs no stride, dilation or padding to read
        out.text(e.formula, indent=2, hanging=4)
    if one_by_one:
        out.text('Each product is weight×input, "in c" naming the input channel read.', indent=2)
    else:
        out.text(
            "Each sum is split by input channel; under it, that channel's products weight×input, one per "
            "line, with the weight's and the input's index (\"pad\": a zero of the padding).",
            indent=2,
        )
    if e.unbatched:
        out.text("(unbatched input: n = 0)", indent=2)
    by_group: dict[int, list[ElementExplanation]] = {}
    for element in e.elements:
        by_group.setdefault(element.sum.group, []).append(element)
    for group in sorted(by_group):
        out.raw(
            f"  group {group} ({channel_span('output', g.outputs_of_group(group))} "
            f"{'reads' if g.out_per_group == 1 else 'read'} {channel_span('input', g.inputs_of_group(group))}):"
        )
        for i, element in enumerate(by_group[group]):
            if element.reason and element.reason != "asked for" and len(e.elements) > 1:
                out.text(f"({element.reason})", indent=4, hanging=1)
            if one_by_one:
                _one_by_one(out, e, element, max_terms)
            else:
                # a group's first element (or one chosen for a reason) shows its products; later ones their window
                _with_kernel(out, e, element, max_terms, products=i == 0 or bool(element.reason))
            expected = element.values.get("expected")
            if expected is not None and not element.agrees(*e.tolerance).get("expected", True):
                out.text(
                    f"but expected says {format_number(expected, e.dtype)}: the sum above gives "
                    f"{format_number(element.sum.total, e.dtype)}",
                    indent=6,
                    hanging=2,
                )


def _hidden_elements(out: _Writer, e: Explanation) -> None:
    """An exercise: each element as ``?``; a prediction written as ``expected`` is marked right or wrong."""
    out.heading("OUTPUT ELEMENTS: your turn")
    out.text(
        "This case is an exercise: work each value out by hand, then run explain again with --reveal to "
        "see every sum (or write your values as `expected` and run `conformance run` on the file).",
        indent=2,
    )
    rtol, atol = e.tolerance
    wrong = []
    for element in e.elements:
        expected = element.values.get("expected")
        mark = ""
        if expected is not None:
            right = element.agrees(rtol, atol).get("expected", False)
            mark = f"   (you wrote {format_number(expected, e.dtype)}: {'right' if right else 'not right'})"
            if not right:
                wrong.append(element)
        out.raw(f"    {element_name(element.sum.index)} = ?{mark}")
    if any(element.values.get("expected") is not None for element in e.elements):
        out.text(
            f"{plural(len(wrong), 'prediction')} of {len(e.elements)} not right"
            + ("; --reveal writes out their sums." if wrong else ": well done."),
            indent=2,
        )


def _scatter(out: _Writer, e: Explanation) -> None:
    """A transposed convolution from the input side: each input value writes its scaled kernels."""
    g = e.grouping
    if not e.scatters or g is None:
        return
    out.heading("THE SCATTER: a transposed convolution works from the inputs")
    stride = str(e.stride[0]) if len(set(e.stride)) == 1 else "(" + ", ".join(map(str, e.stride)) + ")"
    out.text(
        "Each input value is multiplied by its row of the weight, W[c, j] (one kernel per output channel "
        "of its group), and added into the output: one window per input position, each window shifted by "
        f"the stride, {stride}, from the previous one; where windows overlap, their contributions add up.",
        indent=2,
    )
    names = {1: ["position"], 2: ["row", "column"], 3: ["depth", "row", "column"]}.get(len(e.stride), [])
    for scatter in e.scatters:
        spans = ", ".join(
            f"{name} {first}" if first == last else f"{name}s {first}…{last}"
            for name, (first, last) in zip(names, scatter.span, strict=False)
        )
        cut = any(first < 0 or last >= n for (first, last), n in zip(scatter.span, e.out_size, strict=False))
        value = format_number(scatter.value, e.dtype)
        where = [
            f"{channel_span('output', scatter.output_channels)},",
            spans + (" (cut by the padding):" if cut else ":"),
        ]
        factor = format_factor(scatter.value, e.dtype)
        weights: list[float] | None = None  # written out when they fit on a line
        if all(kernel.size == 1 for kernel in scatter.kernels):  # one weight per output channel of the group
            weights = [float(kernel.reshape(-1)[0]) for kernel in scatter.kernels]
        elif len(scatter.kernels) == 1 and scatter.kernels[0].ndim == 1 and scatter.kernels[0].size <= MAX_GRID:
            weights = [float(w) for w in scatter.kernels[0]]
        if weights is not None:
            what = (
                f"{factor}×[{', '.join(format_number(w, e.dtype) for w in weights)}] = "
                f"[{', '.join(format_number(scatter.value * w, e.dtype) for w in weights)}]"
            )
        else:
            j = "0" if len(scatter.kernels) == 1 else "j"
            what = f"{factor} × W[{scatter.input_channel}, {j}]"
        out.joined(f"    {scatter.label} = {value} → ", [*where, what], separator=" ", indent=8)


def element_name(index: Sequence[int]) -> str:
    return "y[" + ",".join(str(i) for i in index) + "]"


def _one_by_one(out: _Writer, e: Explanation, element: ElementExplanation, max_terms: int) -> None:
    """``y[0,2,0,0] = 650 = 5×10 (in 2) + 6×100 (in 3)``: with a 1×1 kernel each channel gives one product."""
    s = element.sum
    products = [p for channel in s.channels for p in channel.products]
    shown, rest = _largest(products, max(max_terms, MAX_CHANNELS_IN_SUM))
    parts = [
        f"{format_factor(p.weight, e.dtype)}×{format_factor(p.value, e.dtype)} (in {p.input_channel}"
        + ("" if p.position is not None else ", pad")
        + ")"
        for p in shown
    ]
    if rest:
        parts.append(
            f"… ({plural(len(rest), 'more product')}, together {format_number(sum(p.product for p in rest), e.dtype)})"
        )
    if s.bias is not None:
        parts.append(f"{format_factor(s.bias, e.dtype)} (bias)")
    head = f"    {element_name(s.index)} = {format_number(element.shown, e.dtype)} = "
    out.joined(head, parts or ["0"])


def _with_kernel(
    out: _Writer, e: Explanation, element: ElementExplanation, max_terms: int, products: bool = True
) -> None:
    """``y[..] = 330 = 30 (in 0) + 300 (in 1)``, the window it reads, then each channel's products one
    per line (unless ``products`` is False)."""
    s = element.sum
    channels = list(s.channels)
    shown = channels[:MAX_CHANNELS_IN_SUM]
    terms = [(c.total, f"(in {c.input_channel})") for c in shown]
    hidden = channels[len(shown) :]
    if hidden:
        terms.append((sum(c.total for c in hidden), f"(… {plural(len(hidden), 'more channel')})"))
    if s.bias is not None:
        terms.append((s.bias, "(bias)"))
    head = f"    {element_name(s.index)} = {format_number(element.shown, e.dtype)} = "
    out.joined(head, signed(terms, e.dtype) or ["0"], separator=" ")
    if element.window:
        out.text(window_words(element.window, e.input_size), indent=6, hanging=2)
    if not products:
        return
    for channel in shown[:MAX_CHANNELS_WITH_PRODUCTS]:
        _channel_products(out, e, channel, max_terms)
    if len(shown) > MAX_CHANNELS_WITH_PRODUCTS:
        out.raw(
            f"      (the products of the other {plural(len(channels) - MAX_CHANNELS_WITH_PRODUCTS, 'channel')} "
            "are formed the same way)"
        )


def window_words(window: Sequence[tuple[int, int]], size: Sequence[int]) -> str:
    """Which input positions an output element reads, in words.

    >>> window_words([(2, 4), (-1, 1)], (5, 5))
    "reads rows 2…4, columns -1…1 of its group's input channels (column -1 is padding)"
    """
    names = {1: ["positions"], 2: ["rows", "columns"], 3: ["depths", "rows", "columns"]}.get(len(window))
    names = names or [f"axis {d}" for d in range(len(window))]
    spans = ", ".join(f"{name} {first}…{last}" for name, (first, last) in zip(names, window, strict=False))
    outside = [
        f"{name.rstrip('s')} {index}"
        for name, (first, last), n in zip(names, window, size, strict=False)
        for index in range(first, last + 1)
        if not 0 <= index < n
    ]
    padding = ""
    if outside:
        padding = f" ({_and_list(outside)} {'is' if len(outside) == 1 else 'are'} padding)"
    return f"reads {spans} of its group's input channels{padding}"


def signed(terms: Sequence[tuple[float, str]], dtype: str) -> list[str]:
    """[(30, '(in 0)'), (-3, '(in 1)')] -> ['30 (in 0)', '− 3 (in 1)']: a sum written with its signs.

    >>> signed([(30.0, "(in 0)"), (-3.0, "(in 1)"), (0.5, "(bias)")], "float32")
    ['30 (in 0)', '− 3 (in 1)', '+ 0.5 (bias)']
    """
    parts = []
    for i, (value, label) in enumerate(terms):
        text = format_number(abs(value) if i else value, dtype)
        sign = "" if i == 0 else ("− " if value < 0 else "+ ")
        parts.append(f"{sign}{text} {label}")
    return parts


def _channel_products(out: _Writer, e: Explanation, channel: ChannelSum, max_terms: int) -> None:
    head = f"      in {channel.input_channel}: {format_number(channel.total, e.dtype)} = "
    if not channel.products:
        out.raw(head + "0 (no kernel tap lands here)")
        return
    shown, rest = _largest(list(channel.products), max_terms)
    pad = " " * (len(head) - 2)
    products = [f"{format_factor(p.weight, e.dtype)}×{format_factor(p.value, e.dtype)}" for p in shown]
    wide = max(len(text) for text in products)
    # Where each product comes from, as much of it as fits: tap and indices, the indices, nothing.
    for detail in (2, 1, 0):
        sources = [_product_source(p, detail) for p in shown]
        if len(head) + wide + 2 + max(len(source) for source in sources) <= out.width:
            break
    for i, (text, source) in enumerate(zip(products, sources, strict=False)):
        out.raw(((head if i == 0 else pad + "+ ") + text.ljust(wide) + "  " + source).rstrip())
    if rest:
        on_padding = sum(p.input_index is None for p in rest)
        read = len(rest) - on_padding
        words = (
            [f"{plural(read, 'more product')}, together {format_number(sum(p.product for p in rest), e.dtype)}"]
            if read
            else []
        )
        if on_padding:
            words.append(f"{plural(on_padding, 'tap')} on zero padding")
        out.text(f"+ … ({'; '.join(words)})", indent=len(pad), hanging=4)


def _product_source(p: Product, detail: int = 2) -> str:
    """'tap 0,1: W[0,0,0,1]·x[0,0,0,1]' (detail 2), 'W[0,0,0,1]·x[0,0,0,1]' (1) or '' (0)."""
    if detail == 0:
        return ""
    weight = "W[" + ",".join(str(i) for i in p.weight_index) + "]"
    read = "pad" if p.input_index is None else "x[" + ",".join(str(i) for i in p.input_index) + "]"
    return f"{weight}·{read}" if detail == 1 else f"tap {','.join(str(k) for k in p.tap)}: {weight}·{read}"


def _largest(products: list[Product], keep: int) -> tuple[list[Product], list[Product]]:
    """The ``keep`` products of largest magnitude (in their order) and the rest."""
    if len(products) <= keep:
        return products, []
    kept = set(sorted(range(len(products)), key=lambda i: -abs(products[i].product))[:keep])
    return ([p for i, p in enumerate(products) if i in kept], [p for i, p in enumerate(products) if i not in kept])


def _values(out: _Writer, e: Explanation, show_checks: bool = True) -> None:
    """Every side's value beside each sum: with --checks, or where a side disagrees (a wrong
    implementation or a wrong prediction is never hidden)."""
    rtol, atol = e.tolerance
    if not show_checks and all(
        all(agree.values()) and len(agree) == len(e.sides)
        for agree in (element.agrees(rtol, atol) for element in e.elements)
    ):
        return
    out.heading("EVERY SIDE'S VALUE beside the sum (the explanation is also a check)")
    short = {side: side_label(side) for side in e.sides}
    for side, label in short.items():
        if label != side:
            out.text(f"({label} = {side})", indent=2)
    header = ["element", *short.values(), "sum", "verdict"]
    rows = []
    for element in e.elements:
        agree = element.agrees(rtol, atol)
        verdict = (
            "agree"
            if agree and all(agree.values()) and len(agree) == len(e.sides)
            else "DIFFER: " + ", ".join(short[side] for side in e.sides if not agree.get(side, False))
        )
        rows.append(
            [element_name(element.sum.index)]
            + [
                "-" if value is None else format_number(value, e.dtype)
                for value in (element.values[side] for side in e.sides)
            ]
            + [format_number(element.sum.total, e.dtype), verdict]
        )
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        out.raw("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())


def side_label(side: str) -> str:
    """A short column title for a side: 'tests.plugins.wrong_convs:interleaved_groups' -> 'interleaved_groups'."""
    return side.rsplit(":", 1)[-1].rsplit(".", 1)[-1].rsplit("/", 1)[-1] or side


def _checks(out: _Writer, e: Explanation, show_checks: bool) -> None:
    """The harness's checks: all of them with --checks; otherwise only a failed comparison."""
    checks = [check for check in e.checks if show_checks or (not check.extra and not check.passed)]
    if not checks:
        return
    if show_checks:
        out.heading("THE HARNESS'S CHECKS")
    for check in checks:
        out.text(f"{'ok  ' if check.passed else 'FAIL'} {check.summary}", indent=2, hanging=5)


def _cost(out: _Writer, e: Explanation) -> None:
    c, g = e.cost, e.grouping
    if c is None or g is None:
        return
    k = "×".join(str(n) for n in e.kernel)
    dims = "×".join(str(n) for n in (e.weight.shape if e.weight else ()))
    out.heading("WHAT GROUPS SAVE")
    if g.groups == 1:
        out.text(
            f"parameters: the weight {dims} holds {plural(c.weights, 'number')}"
            + (f", the bias {c.bias}" if c.bias else "")
            + ". This is the dense layer; groups = G would "
            "keep 1/G of the weight and of the multiply-adds.",
            indent=2,
            hanging=4,
        )
    else:
        dense = f"{g.in_channels}×{g.out_channels}×{k}" if g.transposed else f"{g.out_channels}×{g.in_channels}×{k}"
        out.text(
            f"parameters: the weight {dims} holds {plural(c.weights, 'number')}"
            + (f" (plus a bias of {c.bias})" if c.bias else "")
            + f"; with groups=1 it would be {dense} = "
            f"{c.dense_weights}: groups={g.groups} keeps 1/{g.groups} of them.",
            indent=2,
            hanging=4,
        )
    if g.transposed:
        taps = int(np.prod(e.kernel))
        work = (
            f"multiply-adds: each input value is multiplied by the {plural(g.out_per_group * taps, 'weight')} "
            f"of its row of W ({plural(g.out_per_group, 'output')} × {plural(taps, 'tap')}): {c.multiply_adds} in all"
        )
    else:
        work = (
            f"multiply-adds: {plural(c.outputs, 'output')} × {plural(c.products_per_output, 'product')} each = "
            f"{c.multiply_adds}"
        )
    if g.groups > 1:
        work += f"; with groups=1, {c.dense_multiply_adds} (this layer does 1/{g.groups} of the work)."
    out.text(work, indent=2, hanging=4)


def failure_explanation(result: CaseResult, width: int | None = None) -> list[str]:
    """For a failed comparison against the case's ``expected`` (a learner's prediction, say): the
    worst element's sum written out beside the expected value, as lines for a failure report.

    The report calls it under a failed case: ``lines += failure_explanation(result)``. It returns
    [] when no golden comparison failed or the case cannot be explained."""
    if result.case is None or result.run is None or result.run.torch.output is None:
        return []
    golden = [
        check
        for check in result.checks
        if check.name.endswith(" vs expected")
        and not check.passed
        and check.comparison is not None
        and check.comparison.worst_index is not None
    ]
    if not golden:
        return []
    comparison = golden[0].comparison
    assert comparison is not None and comparison.worst_index is not None
    try:
        explanation = build_explanation(result, [_batched_index(comparison.worst_index, result)])
    except Exception:  # an explanation is a courtesy; the failure itself is already reported
        return []
    out = _Writer(max(MIN_WIDTH, width or terminal_width()))
    element = explanation.elements[0]
    expected = element.values.get("expected")
    out.text(
        f"the worst element explained: expected {element_name(element.sum.index)} = "
        f"{'-' if expected is None else format_number(expected, explanation.dtype)}, but the sum is:",
        indent=2,
    )
    if all(k == 1 for k in explanation.kernel):
        _one_by_one(out, explanation, element, DEFAULT_MAX_TERMS)
    else:
        _with_kernel(out, explanation, element, DEFAULT_MAX_TERMS)
    return out.result().splitlines()


def _batched_index(index: Sequence[int], result: CaseResult) -> tuple[int, ...]:
    """Indices of an unbatched case's (C, *spatial) output as (0, C, *spatial)."""
    case = result.case
    assert case is not None
    dims = case.conv.spatial_dims
    return (0, *index) if len(index) == dims + 1 else tuple(index)
