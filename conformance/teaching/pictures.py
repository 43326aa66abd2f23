"""Pictures of a case's grouping as SVG, written by hand: no plotting library, real ``<text>``
(searchable, selectable, sharp at any zoom), small enough to inline in the HTML report.

* ``connectivity``: input channels on the left wired to output channels on the right, coloured by
  group (bands instead of single wires once there are too many channels to label);
* ``weights``: the stored, compact weight ``(out, in/groups, kH, kW)`` beside the (out × in)
  matrix of kernels it stands for, each compact row drawn to its place in the block diagonal;
* ``element``: one output element: the window over *every* input channel (the unread ones greyed),
  each tap's ``input × weight = product``, and the sum;
* ``shuffle``: a channel shuffle written as a 1×1 convolution with a permutation weight, drawn as
  what it is, crossing wires with no arithmetic (ShuffleNet's reshape–transpose–flatten), instead
  of as the dense layer its weight's shape suggests;
* ``filmstrip``: numbered frames of the window sliding over the padded, strided input (the
  conv_arithmetic picture), for a small case.

Every picture is a :class:`Picture` (name, caption, SVG text). The element and the filmstrip need
a 2-d, non-transposed convolution; other ops get the connectivity and weights pictures.

    >>> from pathlib import Path; from conformance.cases.loader import load_file
    >>> from conformance.cases.case_tensors import make_tensors
    >>> case = load_file(Path(__file__).parents[2] / "cases" / "seed" / "groups3.yaml")[0]
    >>> [p.name for p in case_pictures(case, make_tensors(case))]
    ['connectivity', 'weights', 'element']
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conformance.cases.case_tensors import CaseTensors
from conformance.cases.geometry import group_of
from conformance.cases.schema import Case
from conformance.teaching.explain import connectivity, element_sum, format_factor, format_number, geometry_of

PICTURES = ("connectivity", "weights", "element", "filmstrip", "shuffle")
# tab10: distinct for the first ten groups, then cycling; the report's tables use the same colours.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
INK, MUTED, FAINT, PAPER = "#222222", "#777777", "#bbbbbb", "#ffffff"
FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"
DIGITS = 3  # significant digits written into pictures (the report's tables have the full numbers)
MAX_LABELLED_CHANNELS = 48  # beyond this, channels are drawn as group bands, not one wire each
MAX_ELEMENT_CHANNELS = 8  # input channels drawn for one element before eliding
MAX_FRAMES = 16  # filmstrip frames; more output positions and the case is not "small"
MAX_FILM_INPUT = 9  # padded input rows/columns a filmstrip frame draws (conv_arithmetic draws 5 to 7)
MAX_ELEMENT_SPAN = 7  # window rows/columns an element picture draws; a taller kernel is cropped


@dataclass(frozen=True)
class Picture:
    """One picture: ``name`` (one of PICTURES), a one-sentence ``caption`` and the ``svg`` text."""

    name: str
    caption: str
    svg: str


def group_colour(group: int) -> str:
    """The colour of group ``group`` (cycling after ten).

    >>> group_colour(0), group_colour(10)
    ('#1f77b4', '#1f77b4')
    """
    return PALETTE[group % len(PALETTE)]


def tint(colour: str, strength: float = 0.3) -> str:
    """``colour`` mixed into white: ``strength`` 1 is the colour itself, 0 is white.

    >>> tint("#000000", 0.5)
    '#808080'
    """
    channels = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - (255 - c) * strength):02x}" for c in channels)


class Canvas:
    """SVG elements appended in drawing order; :meth:`render` wraps them in a sized ``<svg>``."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.right = 0.0  # the rightmost x any text reaches (estimated), so render() never clips a label

    def rect(
        self,
        x: float,
        y: float,
        width: float,
        height: float,
        fill: str,
        stroke: str = "none",
        stroke_width: float = 1.0,
        dashed: bool = False,
        rx: float = 0.0,
    ) -> None:
        outline = (
            ""
            if stroke == "none"
            else f' stroke="{stroke}" stroke-width="{stroke_width:g}"' + (' stroke-dasharray="3 2"' if dashed else "")
        )
        self.parts.append(
            f'<rect x="{x:g}" y="{y:g}" width="{width:g}" height="{height:g}" fill="{fill}"{outline}'
            + (f' rx="{rx:g}"' if rx else "")
            + "/>"
        )

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float = 12,
        anchor: str = "start",
        fill: str = INK,
        bold: bool = False,
        italic: bool = False,
    ) -> None:
        style = (' font-weight="600"' if bold else "") + (' font-style="italic"' if italic else "")
        extent = text_width(text, size, bold)
        self.right = max(self.right, x + {"start": extent, "middle": extent / 2, "end": 0}[anchor])
        style += (f' text-anchor="{anchor}"' if anchor != "start" else "") + (f' fill="{fill}"' if fill != INK else "")
        self.parts.append(f'<text x="{x:g}" y="{y:g}" font-size="{size:g}"{style}>{html.escape(text)}</text>')

    def paragraph(self, x: float, y: float, text: str, size: float, width: float, **style) -> float:
        """``text`` wrapped at spaces into lines no wider than ``width``; returns the y below it."""
        line = ""
        for word in text.split(" "):
            if line and text_width(f"{line} {word}", size, style.get("bold", False)) > width:
                self.text(x, y + size, line, size, **style)
                y, line = y + size * 1.35, word
            else:
                line = f"{line} {word}" if line else word
        self.text(x, y + size, line, size, **style)
        return y + size * 1.35

    def line(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        stroke: str,
        width: float = 1.0,
        opacity: float = 1.0,
        dashed: bool = False,
        arrow: bool = False,
    ) -> None:
        extra = (' stroke-dasharray="4 3"' if dashed else "") + (
            f' stroke-opacity="{opacity:g}"' if opacity < 1 else ""
        )
        self.parts.append(
            f'<line x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" stroke="{stroke}" stroke-width="{width:g}"{extra}/>'
        )
        if arrow:  # a small filled head at (x2, y2), pointing right
            self.parts.append(f'<path d="M{x2:g} {y2:g} l-6 -3.5 v7 z" fill="{stroke}"/>')

    def circle(self, x: float, y: float, r: float, fill: str, stroke: str = INK) -> None:
        self.parts.append(f'<circle cx="{x:g}" cy="{y:g}" r="{r:g}" fill="{fill}" stroke="{stroke}"/>')

    def polygon(self, points: Sequence[tuple[float, float]], fill: str, opacity: float = 1.0) -> None:
        text = " ".join(f"{x:g},{y:g}" for x, y in points)
        self.parts.append(
            f'<polygon points="{text}" fill="{fill}"' + (f' fill-opacity="{opacity:g}"' if opacity < 1 else "") + "/>"
        )

    def render(self, width: float, height: float, label: str) -> str:
        """The ``<svg>``: its viewBox is its drawing; CSS may scale it down (``max-width: 100%``)."""
        width, height = int(np.ceil(max(width, self.right + 6))), int(np.ceil(height))
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{html.escape(label)}" font-family="{FONT}" fill="{INK}">'
            f"<title>{html.escape(label)}</title>" + "".join(self.parts) + "</svg>"
        )


def text_width(text: str, size: float, bold: bool = False) -> float:
    """An estimate of the width of ``text`` in a sans-serif font (no font metrics here): wide enough
    for digits and most letters, so labels are placed and wrapped without being clipped."""
    return len(text) * size * (0.6 if bold else 0.56)


def _legend(canvas: Canvas, groups: int, x: float, y: float, width: float) -> float:
    """Group swatches in rows that fit ``width``; returns the y below them."""
    shown, per_row = min(groups, 12), max(1, int(width // 78))
    for g in range(shown):
        row, column = divmod(g, per_row)
        gx, gy = x + column * 78, y + row * 18
        canvas.rect(gx, gy, 11, 11, group_colour(g))
        canvas.text(gx + 15, gy + 10, f"group {g}", 11)
    rows = -(-shown // per_row)
    if shown < groups:
        canvas.text(
            x, y + rows * 18 + 10, f"… and {groups - shown} more groups (colours repeat every 10)", 11, fill=MUTED
        )
        rows += 1
    return y + rows * 18


def _plural(count: int, word: str) -> str:
    """``(1, 'channel') -> '1 channel'``, ``(2, 'channel') -> '2 channels'``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# ---------------------------------------------------------------------------------------------
# connectivity


def connectivity_picture(case: Case, tensors: CaseTensors | None = None) -> Picture:
    """Which input channels each output channel reads, coloured by group."""
    conv = case.conv
    matrix = connectivity(conv)  # (C_out, C_in): the group, or -1
    c_out, c_in = matrix.shape
    groups, per_group = conv.groups, c_in // conv.groups
    canvas = Canvas()
    width = 520
    title = (
        (
            f"groups = {groups}: every output channel reads all {c_in} input channels"
            if c_in != 1
            else "groups = 1: every output channel reads the one input channel"
        )
        if groups == 1
        else f"groups = {groups}: each output channel reads only the {_plural(per_group, 'input channel')} of its group"
    )
    top = canvas.paragraph(10, 2, title, 13, width - 20, bold=True) + 14
    in_x, out_x = 170, 350
    if max(c_in, c_out) <= MAX_LABELLED_CHANNELS:
        step = 24
        height = max(c_in, c_out) * step
        in_y = [top + (height - c_in * step) / 2 + step * (c + 0.5) for c in range(c_in)]
        out_y = [top + (height - c_out * step) / 2 + step * (o + 0.5) for o in range(c_out)]
        for o, c in zip(*np.nonzero(matrix >= 0), strict=False):
            canvas.line(in_x, in_y[c], out_x, out_y[o], group_colour(int(matrix[o, c])), 1.8, 0.85)
        inputs = _single_pixel_values(tensors.input, c_in) if tensors is not None else None
        outputs = _single_pixel_outputs(case, tensors) if tensors is not None else None
        for c in range(c_in):
            canvas.circle(in_x, in_y[c], 7, group_colour(group_of(c, channels=c_in, groups=groups)))
            label = f"in {c}" + (f" = {format_number(inputs[c], case.dtype, DIGITS)}" if inputs is not None else "")
            canvas.text(in_x - 13, in_y[c] + 4, label, 12, "end")
        for o in range(c_out):
            canvas.circle(out_x, out_y[o], 7, group_colour(group_of(o, channels=c_out, groups=groups)))
            label = f"out {o}" + (f" = {format_number(outputs[o], case.dtype, DIGITS)}" if outputs is not None else "")
            canvas.text(out_x + 13, out_y[o] + 4, label, 12)
    else:  # one band per group: thousands of single wires would be a grey smear (and a heavy file)
        height = 320
        in_step, out_step = height / c_in, height / c_out
        out_per_group = c_out // groups
        for g in range(groups):
            a, b = top + g * per_group * in_step, top + (g + 1) * per_group * in_step
            c, d = top + g * out_per_group * out_step, top + (g + 1) * out_per_group * out_step
            canvas.polygon([(in_x, a), (out_x, c), (out_x, d), (in_x, b)], group_colour(g), 0.45)
            canvas.rect(in_x - 10, a, 10, b - a, group_colour(g))
            canvas.rect(out_x, c, 10, d - c, group_colour(g))
        for x, anchor, name, count in ((in_x - 16, "end", "in", c_in), (out_x + 16, "start", "out", c_out)):
            canvas.text(x, top + 10, f"{name} 0", 12, anchor)
            canvas.text(x, top + height / 2 + 4, _plural(count, "channel"), 12, anchor, fill=MUTED)
            canvas.text(x, top + height, f"{name} {count - 1}", 12, anchor)
    bottom = _legend(canvas, groups, 20, top + height + 16, width - 40)
    return Picture("connectivity", _connectivity_caption(conv), canvas.render(width, bottom + 6, title))


def _connectivity_caption(conv) -> str:
    if conv.groups == 1:
        return "groups=1, the ordinary convolution: every output channel is wired to every input channel."
    return (
        f"Input channels (left) wired to the output channels (right) that read them. The {conv.groups} groups never "
        "share a wire: a grouped convolution is separate ordinary convolutions side by side."
    )


def _single_pixel_values(x: np.ndarray, channels: int) -> np.ndarray | None:
    """The per-channel values of a one-pixel, one-sample input (the seed's 0.1 … 10000), else None."""
    return np.asarray(x, dtype=np.float64).reshape(channels) if x.size == channels else None


def _single_pixel_outputs(case: Case, tensors: CaseTensors) -> np.ndarray | None:
    conv = case.conv
    if conv.transposed or conv.spatial_dims != 2:
        return None
    geo = geometry_of(case, tensors)
    if geo.batch * geo.output_size[0] * geo.output_size[1] != 1:
        return None
    return np.array([element_sum(case, tensors, (0, o, 0, 0)).total for o in range(geo.out_channels)])


def channel_permutation(case: Case, tensors: CaseTensors) -> list[int] | None:
    """For a 1×1, groups=1, bias-free layer whose weight is a permutation matrix (a channel shuffle
    written as a convolution), the input channel each output copies; else None.

    >>> from pathlib import Path; from conformance.cases.loader import load_file
    >>> from conformance.running.runner import make_tensors
    >>> cases = load_file(Path(__file__).parents[2] / "cases" / "tutorial" / "07_stacked_groups.yaml")
    >>> [channel_permutation(c, make_tensors(c)) for c in cases][2:4]
    [None, [0, 2, 1, 3]]
    """
    conv = case.conv
    w = np.asarray(tensors.weight, dtype=np.float64)
    if conv.transposed or conv.groups != 1 or w.shape[0] != w.shape[1] or any(k != 1 for k in w.shape[2:]):
        return None
    if tensors.bias is not None and np.any(tensors.bias):
        return None
    matrix = w.reshape(w.shape[0], w.shape[1])
    ones = matrix == 1
    if not np.all((matrix == 0) | ones) or not np.all(ones.sum(0) == 1) or not np.all(ones.sum(1) == 1):
        return None
    return [int(np.argmax(row)) for row in ones]


def shuffle_groups(permutation: Sequence[int]) -> int | None:
    """The G of ShuffleNet's shuffle (reshape to (G, C/G), transpose, flatten) that gives
    ``permutation``, if one does.

    >>> shuffle_groups([0, 2, 1, 3]), shuffle_groups([0, 3, 1, 4, 2, 5]), shuffle_groups([1, 0])
    (2, 2, None)
    """
    n = len(permutation)
    for groups in range(2, n):
        if n % groups == 0:
            per = n // groups
            if all(permutation[o] == (o % groups) * per + o // groups for o in range(n)):
                return groups
    return None


def shuffle_picture(case: Case, tensors: CaseTensors, permutation: Sequence[int]) -> Picture:
    """A channel shuffle as crossing wires: output o copies input permutation[o]; 0 multiply-adds."""
    n = len(permutation)
    canvas = Canvas()
    width = 520
    title = "a channel shuffle: each output channel is one input channel, moved (0 multiply-adds)"
    top = canvas.paragraph(10, 2, title, 13, width - 20, bold=True) + 14
    in_x, out_x, step = 170, 350, 24
    inputs = _single_pixel_values(tensors.input, n)
    for o, c in enumerate(permutation):
        canvas.line(in_x, top + step * (c + 0.5), out_x, top + step * (o + 0.5), group_colour(o), 2)
    for k in range(n):
        y = top + step * (k + 0.5)
        canvas.circle(in_x, y, 7, PAPER)
        canvas.circle(out_x, y, 7, PAPER)
        canvas.text(
            in_x - 13,
            y + 4,
            f"in {k}" + (f" = {format_number(inputs[k], case.dtype, DIGITS)}" if inputs is not None else ""),
            12,
            "end",
        )
        value = f" = {format_number(inputs[permutation[k]], case.dtype, DIGITS)}" if inputs is not None else ""
        canvas.text(out_x + 13, y + 4, f"out {k}{value}", 12)
    bottom = top + n * step + 8
    groups = shuffle_groups(permutation)
    if groups:
        rows = ", ".join(
            "[" + ", ".join(f"c{k}" for k in range(g * n // groups, (g + 1) * n // groups)) + "]" for g in range(groups)
        )
        recipe = (
            f"ShuffleNet's recipe: reshape the {n} channels to ({groups}, {n // groups}) = [{rows}], transpose, "
            f"flatten: [{', '.join(f'c{k}' for k in permutation)}]"
        )
        bottom = canvas.paragraph(10, bottom, recipe, 12, width - 20, fill=MUTED)
    caption = (
        "A channel shuffle moves channels and computes nothing: written here as a 1×1 convolution with a "
        "permutation weight, but it costs 0 multiply-adds."
    )
    return Picture("shuffle", caption, canvas.render(width, bottom + 6, title))


# ---------------------------------------------------------------------------------------------
# weights


def weights_picture(case: Case, tensors: CaseTensors) -> Picture:
    """The stored weight (compact) beside the full (out × in) matrix of kernels it stands for."""
    conv = case.conv
    weight = np.asarray(
        tensors.weight, dtype=np.float64
    )  # (A, B, *kernel): conv (C_out, C_in/G, …), transposed (C_in, C_out/G, …)
    groups = conv.groups
    rows_name, cols_name = ("input", "output") if conv.transposed else ("output", "input")
    rows_count, per_group = weight.shape[0], weight.shape[1]
    short_name = "in" if conv.transposed else "out"  # the row labels: "out 3" (or "in 3" when transposed)
    kernel = weight.shape[2:]
    # A kernel is drawn as a (kr × kc) block: kH × kW in 2-d, 1 × k in 1-d, (kD·kH) × kW in 3-d.
    kc = int(kernel[-1]) if kernel else 1
    kr = int(np.prod(kernel[:-1])) if len(kernel) > 1 else 1
    rows_per_group = rows_count // groups
    full_cols = per_group * groups
    title = f"stored weight {tuple(weight.shape)}: {weight.size} numbers" + (
        ""
        if groups == 1
        else f"; the {rows_count}×{full_cols} matrix of kernels it stands for has "
        f"{rows_count * full_cols * kr * kc}, {rows_count * full_cols * kr * kc - weight.size} of them always zero"
    )
    canvas = Canvas()
    cells = rows_count * kr <= 24 and full_cols * kc <= 36  # each kernel cell drawn (and numbered, if room)
    if cells:
        cell = max(8, min(28, 300 // max(full_cols * kc, 1), 360 // max(rows_count * kr, 1)))
    else:
        cell = min(360 / (full_cols * kc), 360 / (rows_count * kr))
    numbers = cells and cell >= 20
    left = 58
    compact_w = max(per_group * kc * cell, 14)
    gap = 70 if groups > 1 else 0
    full_x = left + compact_w + gap
    full_w, full_h = full_cols * kc * cell, rows_count * kr * cell
    width = max(full_x + full_w + 20, 420) if groups > 1 else max(left + compact_w + 20, 420)
    top = canvas.paragraph(10, 2, title, 12, width - 20, bold=True)
    if groups > 1:
        top = canvas.paragraph(
            10,
            top,
            f"left: as stored, one row per {rows_name} channel; right: where each row acts "
            f"in the ({rows_name} × {cols_name} channels) matrix",
            11,
            width - 20,
            fill=MUTED,
        )
    else:
        top = canvas.paragraph(
            10,
            top,
            f"groups = 1: the stored weight is already the full ({rows_name} × {cols_name} channels) matrix",
            11,
            width - 20,
            fill=MUTED,
        )
    top += 22
    for r in range(rows_count) if cells else ():
        g = r // rows_per_group
        y = top + r * kr * cell
        if cells:
            canvas.text(left - 6, y + kr * cell / 2 + 4, f"{short_name} {r}", 10, "end")
        for j in range(per_group):
            kernel_values = weight[r, j].reshape(kr, kc) if kernel else weight[r, j].reshape(1, 1)
            for x0 in [left + j * kc * cell] + ([full_x + (g * per_group + j) * kc * cell] if groups > 1 else []):
                for p in range(kr):
                    for q in range(kc):
                        canvas.rect(x0 + q * cell, y + p * cell, cell, cell, tint(group_colour(g), 0.35), PAPER, 0.6)
                        if numbers:
                            text = format_number(kernel_values[p, q], case.dtype, DIGITS)
                            canvas.text(
                                x0 + (q + 0.5) * cell,
                                y + (p + 0.5) * cell + 4,
                                text,
                                10 if len(text) <= 4 else 8,
                                "middle",
                            )
                if kr > 1 or kc > 1:
                    canvas.rect(x0, y, kc * cell, kr * cell, "none", INK, 0.8)
        if groups > 1:  # stored row r moves to column block g: an arrow through the zeros never stored
            canvas.line(
                left + compact_w + 3,
                y + kr * cell / 2,
                full_x + g * per_group * kc * cell - 2,
                y + kr * cell / 2,
                group_colour(g),
                1.2,
                dashed=True,
                arrow=True,
            )
    for g in range(groups) if not cells else ():  # too many kernels to draw: one block per group
        y, block_h = top + g * rows_per_group * kr * cell, rows_per_group * kr * cell
        canvas.rect(left, y, compact_w, block_h, tint(group_colour(g), 0.6))
        if groups > 1:
            canvas.rect(
                full_x + g * per_group * kc * cell, y, per_group * kc * cell, block_h, tint(group_colour(g), 0.6)
            )
            if groups <= 16:
                canvas.line(
                    left + compact_w + 3,
                    y + block_h / 2,
                    full_x + g * per_group * kc * cell - 2,
                    y + block_h / 2,
                    group_colour(g),
                    1.2,
                    dashed=True,
                    arrow=True,
                )
    if not cells:
        canvas.text(left - 6, top + 10, f"{short_name} 0", 10, "end")
        canvas.text(left - 6, top + full_h, f"{short_name} {rows_count - 1}", 10, "end")
    if groups > 1:  # the block diagonal's frame and the zeros' outline
        canvas.rect(full_x, top, full_w, full_h, "none", FAINT, 1)
    if cells:
        for j in range(per_group):
            canvas.text(left + (j + 0.5) * kc * cell, top - 6, f"j={j}", 10, "middle", fill=MUTED)
        if groups > 1:
            for c in range(full_cols):
                canvas.text(full_x + (c + 0.5) * kc * cell, top - 6, str(c), 10, "middle", fill=MUTED)
    bottom = top + full_h + 14
    if groups > 1:
        bottom = canvas.paragraph(
            10,
            bottom - 8,
            f"row r, column j of the stored weight acts on {cols_name} channel "
            f"g·{per_group} + j, where g = r // {rows_per_group} is its group.",
            11,
            width - 20,
        )
    bottom = _legend(canvas, groups, 10, bottom + 6, width - 20)
    return Picture("weights", _weights_caption(conv, weight.shape), canvas.render(width, bottom + 6, title))


def _weights_caption(conv, shape: Sequence[int]) -> str:
    if conv.groups == 1:
        return f"The weight {tuple(shape)}: with groups=1 every kernel row covers every input channel."
    return (
        f"The weight as stored, {tuple(shape)}, and where each of its rows acts: the block-diagonal matrix "
        f"(white: places a groups=1 layer would fill and this one never stores)."
    )


# ---------------------------------------------------------------------------------------------
# one output element


def default_picture_element(case: Case, tensors: CaseTensors) -> tuple[int, int, int, int]:
    """The element drawn when none is chosen: the first output channel of the *last* group (so the
    channel offset g·C_in/G shows), at the centre of the output."""
    geo = geometry_of(case, tensors)
    return (0, (geo.groups - 1) * geo.out_channels_per_group, geo.output_size[0] // 2, geo.output_size[1] // 2)


def _padded_input(case: Case, tensors: CaseTensors, n: int) -> np.ndarray:
    from reference_impl import pad_input

    geo = geometry_of(case, tensors)
    x = np.asarray(tensors.input, dtype=np.float64).reshape(geo.batch, geo.in_channels, geo.height, geo.width)
    return pad_input(x[n : n + 1], geo.pads, geo.padding_mode)[0]  # (C_in, H_pad, W_pad)


def _shown_channels(total: int, group_channels: range) -> list[int | None]:
    """All channels when few; else the group's (up to 8) and one neighbour each side; None = '…'."""
    if total <= MAX_ELEMENT_CHANNELS:
        return list(range(total))
    inside = list(group_channels)[:6]
    shown: list[int | None] = []
    if group_channels[0] > 0:
        shown += ([None] if group_channels[0] > 1 else []) + [group_channels[0] - 1]
    shown += inside + ([None] if len(group_channels) > len(inside) else [])
    after = group_channels[-1] + 1
    if after < total:
        shown += [after] + ([None] if after < total - 1 else [])
    return shown


def element_picture(case: Case, tensors: CaseTensors, element: Sequence[int] | None = None) -> Picture:
    """Output element y[n, o, h, w]: its window over every input channel, unread channels greyed."""
    geo = geometry_of(case, tensors)
    index = tuple(int(i) for i in element) if element is not None else default_picture_element(case, tensors)
    explained = element_sum(case, tensors, index)
    n, o, h, w = explained.index
    g = explained.group
    colour = group_colour(g)
    padded = _padded_input(case, tensors, n)
    top_pad, _, left_pad, _ = geo.pads
    span_h, span_w = geo.effective_kernel
    row0, col0 = h * geo.stride[0], w * geo.stride[1]  # the window's top-left, padded coordinates
    whole = padded.shape[1] <= 8 and padded.shape[2] <= 8
    r_lo, r_hi = (0, padded.shape[1]) if whole else (max(row0 - 1, 0), min(row0 + span_h + 1, padded.shape[1]))
    c_lo, c_hi = (0, padded.shape[2]) if whole else (max(col0 - 1, 0), min(col0 + span_w + 1, padded.shape[2]))
    r_hi, c_hi = min(r_hi, r_lo + MAX_ELEMENT_SPAN), min(c_hi, c_lo + MAX_ELEMENT_SPAN)  # the sum below has every tap
    group_channels = geo.input_channels_of_group(g)
    shown = _shown_channels(geo.in_channels, group_channels)
    cell = 46 if max(r_hi - r_lo, c_hi - c_lo) <= 4 else 34
    products = cell >= 46  # room for "×w" and "=p" under the value
    panel_w, panel_h = max((c_hi - c_lo) * cell, 104), (r_hi - r_lo) * cell + 48
    per_row = max(1, min(len(shown), 4, 560 // (panel_w + 14)))
    taps = {(t.input_channel, t.tap): t for t in explained.terms}
    canvas = Canvas()
    first, last = group_channels[0], group_channels[-1]
    reads = f"input channel {first}" if first == last else f"input channels {first}-{last}"
    title = f"y[{n},{o},{h},{w}]: output channel {o} is in group {g}, so it reads {reads}"
    width = max(10 + per_row * (panel_w + 14), 420)
    top = canvas.paragraph(10, 2, title, 13, width - 20, bold=True)
    note = (
        "groups = 1: one group, so every input channel is read"
        if geo.groups == 1
        else f"its group's first input channel is g·in_channels/groups = {g}·{geo.in_channels_per_group} = {first}; "
        "the other channels are not read (grey)"
    )
    top = canvas.paragraph(10, top, note, 11, width - 20, fill=MUTED) + 8
    for slot, channel in enumerate(shown):
        row, column = divmod(slot, per_row)
        x0, y0 = 10 + column * (panel_w + 14), top + row * (panel_h + 14)
        if channel is None:
            canvas.text(x0 + panel_w / 2, y0 + panel_h / 2, "…", 20, "middle", fill=MUTED)
            continue
        read = channel in group_channels
        channel_group = channel // geo.in_channels_per_group
        canvas.text(x0, y0 + 12, f"input channel {channel}", 11, fill=INK if read else MUTED, bold=read)
        canvas.text(
            x0,
            y0 + 26,
            f"× kernel W[{o},{channel - first}]" if read else f"not read (group {channel_group})",
            11,
            fill="#a11" if read else MUTED,
        )
        for r in range(r_lo, r_hi):
            for c in range(c_lo, c_hi):
                x, y = x0 + (c - c_lo) * cell, y0 + 34 + (r - r_lo) * cell
                inside = top_pad <= r < top_pad + geo.height and left_pad <= c < left_pad + geo.width
                p, dp = divmod(r - row0, geo.dilation[0])
                q, dq = divmod(c - col0, geo.dilation[1])
                in_window = dp == 0 and dq == 0 and 0 <= p < geo.kernel[0] and 0 <= q < geo.kernel[1]
                if not read:
                    canvas.rect(x, y, cell, cell, "#eeeeee", PAPER, 1, dashed=not inside)
                    canvas.text(
                        x + cell / 2,
                        y + cell / 2 + 4,
                        format_number(padded[channel, r, c], case.dtype, DIGITS),
                        10,
                        "middle",
                        fill=FAINT,
                    )
                    continue
                fill = tint(colour, 0.35) if in_window else (PAPER if inside else "#f2f2f2")
                canvas.rect(
                    x,
                    y,
                    cell,
                    cell,
                    fill,
                    INK if in_window else FAINT,
                    1.4 if in_window else 0.7,
                    dashed=not inside and not in_window,
                )
                value = format_number(padded[channel, r, c], case.dtype, DIGITS)
                if in_window and products:
                    term = taps[(channel, (p, q))]
                    canvas.text(x + cell / 2, y + 14, value, 11, "middle")
                    canvas.text(
                        x + cell / 2,
                        y + 27,
                        f"×{format_number(term.weight, case.dtype, DIGITS)}",
                        10,
                        "middle",
                        fill="#a11",
                    )
                    canvas.text(
                        x + cell / 2,
                        y + 40,
                        f"={format_number(term.product, case.dtype, DIGITS)}",
                        10,
                        "middle",
                        fill=MUTED,
                    )
                else:
                    canvas.text(
                        x + cell / 2,
                        y + cell / 2 + 4,
                        value,
                        11,
                        "middle",
                        fill=INK if inside else MUTED,
                        bold=in_window,
                    )
    rows_of_panels = -(-len(shown) // per_row)
    y = top + rows_of_panels * (panel_h + 14) + 6
    lines = []
    for channel in list(group_channels)[:MAX_ELEMENT_CHANNELS]:
        terms = [t for t in explained.terms if t.input_channel == channel]
        partial = sum(t.product for t in terms)
        digits = DIGITS + 3  # the factors of a written product: more digits than a grid's numbers
        written = " + ".join(
            f"{format_factor(t.weight, case.dtype, digits)}×{format_factor(t.value, case.dtype, digits)}"
            for t in terms[:4]
        )
        written += " + …" if len(terms) > 4 else ""
        lines.append(f"in {channel}: {written} = {format_number(partial, case.dtype, DIGITS + 3)}")
    if len(group_channels) > MAX_ELEMENT_CHANNELS:
        lines.append(f"… ({len(group_channels) - MAX_ELEMENT_CHANNELS} more input channels)")
    if explained.bias is not None:
        lines.append(f"bias: {format_number(explained.bias, case.dtype)}")
    for text in lines:
        canvas.text(10, y + 12, text, 12)
        y += 18
    canvas.text(10, y + 14, f"y[{n},{o},{h},{w}] = {format_number(explained.total, case.dtype)}", 13, bold=True)
    caption = (
        f"Output element y[{n},{o},{h},{w}] (group {g}): the window over every input channel; only its "
        f"group's channels are read (each cell: input, ×weight, =product), the others are greyed."
    )
    return Picture("element", caption, canvas.render(width, y + 24, title))


# ---------------------------------------------------------------------------------------------
# the filmstrip


def filmstrip_applies(case: Case, tensors: CaseTensors) -> bool:
    """A small 2-d convolution with more than one output position: few frames, small grids."""
    conv = case.conv
    if conv.transposed or conv.spatial_dims != 2 or not conv.is_divisible:
        return False
    geo = geometry_of(case, tensors)
    positions = geo.output_size[0] * geo.output_size[1]
    return 1 < positions <= MAX_FRAMES and max(geo.padded_size) <= MAX_FILM_INPUT


def filmstrip_picture(case: Case, tensors: CaseTensors, output_channel: int | None = None) -> Picture:
    """Numbered frames: the window (its taps, spaced by the dilation) stepping by the stride over one
    padded input channel, and the output element each position makes."""
    geo = geometry_of(case, tensors)
    o = (geo.groups - 1) * geo.out_channels_per_group if output_channel is None else output_channel
    g = geo.group_of_output_channel(o)
    channel = geo.input_channels_of_group(g)[0]
    padded = _padded_input(case, tensors, 0)[channel]  # (H_pad, W_pad)
    top_pad, _, left_pad, _ = geo.pads
    h_out, w_out = geo.output_size
    colour = group_colour(g)
    cell, out_cell = 22, 16
    numbers = max(padded.shape) <= 6  # values in every frame only for a small input: they repeat in each frame
    grid_w, grid_h = padded.shape[1] * cell, padded.shape[0] * cell
    frame_w = max(grid_w + 14 + w_out * out_cell, 120)
    frame_h = grid_h + 26
    fit = max(1, 800 // (frame_w + 16))
    per_row = w_out if w_out <= fit else fit  # one row of frames per output row, when it fits
    canvas = Canvas()
    title = (
        f"the {geo.kernel[0]}×{geo.kernel[1]} window over input channel {channel} ({geo.height}×{geo.width}, "
        f"padded to {padded.shape[0]}×{padded.shape[1]}): stride {geo.stride}, dilation {geo.dilation}"
    )
    width = max(10 + per_row * (frame_w + 16), 420)
    top = canvas.paragraph(10, 2, title, 12, width - 20, bold=True)
    top = (
        canvas.paragraph(
            10,
            top,
            f"frame k makes output element k of channel {o} (the small grid); dashed cells "
            f"are padding ({geo.padding_mode})",
            11,
            width - 20,
            fill=MUTED,
        )
        + 6
    )
    for frame, (h, w) in enumerate(np.ndindex(h_out, w_out)):
        row, column = divmod(frame, per_row)
        x0, y0 = 10 + column * (frame_w + 16), top + row * (frame_h + 12)
        canvas.text(x0, y0 + 12, f"{frame + 1}: y[0,{o},{h},{w}]", 11, bold=True)
        window = {
            (h * geo.stride[0] + p * geo.dilation[0], w * geo.stride[1] + q * geo.dilation[1])
            for p in range(geo.kernel[0])
            for q in range(geo.kernel[1])
        }
        for r in range(padded.shape[0]):
            for c in range(padded.shape[1]):
                inside = top_pad <= r < top_pad + geo.height and left_pad <= c < left_pad + geo.width
                tap = (r, c) in window
                canvas.rect(
                    x0 + c * cell,
                    y0 + 18 + r * cell,
                    cell,
                    cell,
                    tint(colour, 0.45) if tap else (PAPER if inside else "#f2f2f2"),
                    INK if tap else FAINT,
                    1.3 if tap else 0.7,
                    dashed=not inside and not tap,
                )
                if numbers:
                    canvas.text(
                        x0 + (c + 0.5) * cell,
                        y0 + 18 + (r + 0.68) * cell,
                        format_number(padded[r, c], case.dtype, 2),
                        8,
                        "middle",
                        fill=INK if inside else MUTED,
                    )
        ox = x0 + grid_w + 14
        for r in range(h_out):
            for c in range(w_out):
                current = (r, c) == (h, w)
                canvas.rect(
                    ox + c * out_cell,
                    y0 + 18 + r * out_cell,
                    out_cell,
                    out_cell,
                    colour if current else PAPER,
                    INK if current else FAINT,
                    0.8,
                )
    rows = -(-h_out * w_out // per_row)
    caption = (
        f"A conv_arithmetic-style filmstrip: {h_out * w_out} frames, one per output position of channel {o} "
        f"(group {g}), reading input channel {channel}."
    )
    return Picture("filmstrip", caption, canvas.render(width, top + rows * (frame_h + 12) + 4, title))


# ---------------------------------------------------------------------------------------------
# all of a case's pictures


def case_pictures(case: Case, tensors: CaseTensors, element: Sequence[int] | None = None) -> list[Picture]:
    """The pictures that apply to ``case``: connectivity and weights for every valid layer; the
    element and (for a small one) the filmstrip for a 2-d, non-transposed convolution.

    Raises ValueError for an invalid layer (channels not divisible by groups): nothing to draw.
    """
    conv = case.conv
    if not conv.is_divisible:
        raise ValueError(
            f"groups = {conv.groups} does not divide in_channels = {conv.in_channels} and "
            f"out_channels = {conv.out_channels}: there is no grouping to draw"
        )
    permutation = channel_permutation(case, tensors)
    if permutation is not None:  # a shuffle: its dense-looking weight would tell the wrong story
        return [shuffle_picture(case, tensors, permutation)]
    pictures = [connectivity_picture(case, tensors), weights_picture(case, tensors)]
    if not conv.transposed and conv.spatial_dims == 2 and tensors.input.ndim in (3, 4):
        pictures.append(element_picture(case, tensors, element))
        if filmstrip_applies(case, tensors):
            pictures.append(filmstrip_picture(case, tensors, None if element is None else int(element[1])))
    return pictures


def draw_case_pictures(
    case: Case,
    tensors: CaseTensors,
    directory: Path | str,
    *,
    element: Sequence[int] | None = None,
    stem: str = "",
    formats: Sequence[str] = ("svg",),
) -> list[Path]:
    """Write the case's pictures into ``directory`` as ``{stem}{name}.svg``; returns the paths.

    Only SVG is written (a browser, an editor or GitHub shows it; no plotting library needed).
    Raises ValueError for another format or an invalid layer.
    """
    unknown = [fmt for fmt in formats if fmt != "svg"]
    if unknown:
        raise ValueError(f"pictures are written as SVG only, not {', '.join(map(repr, unknown))}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for picture in case_pictures(case, tensors, element):
        path = directory / f"{stem}{picture.name}.svg"
        path.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + picture.svg + "\n", encoding="utf-8")
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# the documentation's pictures

ROOT = Path(__file__).resolve().parents[2]
# (case file, case name or None for the file's only case, file stem, pictures): what README.md and
# docs/ show. `python -m conformance.teaching.pictures docs` redraws them; a test keeps them current.
DOCS_PICTURES = (
    ("cases/seed/groups3.yaml", None, "seed_groups3_", ("connectivity", "weights", "element")),
    ("cases/tutorial/03_grouped_kernel.yaml", None, "tutorial_grouped_kernel_", ("weights", "element")),
    (
        "cases/regressions/pytorch_50042_depthwise24_stride2.yaml",
        "regressions/pytorch_50042_depthwise24_stride2",
        "depthwise_stride2_",
        ("filmstrip",),
    ),
)


def write_docs_pictures(directory: Path | str) -> list[Path]:
    """Draw the documentation's pictures (DOCS_PICTURES) into ``directory``; returns the paths."""
    from conformance.cases.case_tensors import make_tensors
    from conformance.cases.loader import load_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for file, name, stem, names in DOCS_PICTURES:
        cases = [case for case in load_file(ROOT / file) if name is None or getattr(case, "name", None) == name]
        case = cases[0]
        assert isinstance(case, Case), case  # the docs' pictures come from valid library cases
        for picture in case_pictures(case, make_tensors(case)):
            if picture.name in names:
                path = directory / f"{stem}{picture.name}.svg"
                path.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + picture.svg + "\n", encoding="utf-8")
                paths.append(path)
    return paths


if __name__ == "__main__":
    import sys

    for written in write_docs_pictures(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs"):
        print(written)
