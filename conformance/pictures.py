"""Pictures of a case's grouping, drawn with matplotlib (Agg: no display needed), as SVG and/or PNG.

* ``connectivity``: input channels on the left, output channels on the right, one edge per
  (output, input) pair that is read, coloured by group;
* ``weights``: the weight as a block-diagonal (output × input) matrix of kernels, beside the
  dense matrix the same layer would need with groups=1;
* ``element``: one output element: the input window of each channel of its group with the
  kernel values over it and the products, and their sum.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot: render to files only, never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from reference_impl import pad_input  # noqa: E402

from .explain import connectivity, element_sum, format_number, geometry_of  # noqa: E402
from .runner import CaseTensors  # noqa: E402
from .schema import Case  # noqa: E402

PICTURES = ("connectivity", "weights", "element")
MAX_LABELLED_CHANNELS = 48  # beyond this the channel names would overlap
DIGITS = 3  # significant digits written into pictures (the terminal explanation has the full numbers)
MAX_ELEMENT_CHANNELS = 6  # input channels drawn for one element (a group may hold many)


def group_colour(group: int) -> tuple[float, float, float, float]:
    """A distinct colour per group (tab10, cycling)."""
    return plt.get_cmap("tab10")(group % 10)


def _legend(ax, groups: int, **kwargs) -> None:
    shown = min(groups, 12)
    handles = [Patch(color=group_colour(g), label=f"group {g}") for g in range(shown)]
    if shown < groups:
        handles.append(Patch(color="white", label=f"… ({groups - shown} more)"))
    ax.legend(handles=handles, **kwargs)


def draw_connectivity(case: Case, tensors: CaseTensors | None = None):
    """Input channels (left) wired to output channels (right), edges coloured by group."""
    conv = case.conv
    matrix = connectivity(conv)  # (C_out, C_in)
    c_out, c_in = matrix.shape
    height = max(c_in, c_out)
    fig, ax = plt.subplots(figsize=(6.4, max(2.4, min(0.42 * height + 1.4, 14))))
    # Channel k of n sits at y = centre-aligned positions, channel 0 at the top.
    in_y = (c_in - 1) / 2 - np.arange(c_in) if c_in > 1 else np.zeros(1)
    out_y = (c_out - 1) / 2 - np.arange(c_out) if c_out > 1 else np.zeros(1)
    outs, ins = np.nonzero(matrix >= 0)
    edges = np.stack([np.stack([np.zeros(len(ins)), in_y[ins]], 1), np.stack([np.ones(len(outs)), out_y[outs]], 1)], 1)
    ax.add_collection(LineCollection(edges, colors=[group_colour(int(g)) for g in matrix[outs, ins]], linewidths=1.6,
                                     alpha=0.85))  # (edges, 2 ends, xy): one artist, however many edges
    in_group = np.arange(c_in) // (c_in // conv.groups)
    out_group = np.arange(c_out) // (c_out // conv.groups)
    ax.scatter(np.zeros(c_in), in_y, s=90, c=[group_colour(g) for g in in_group], zorder=3, edgecolors="black")
    ax.scatter(np.ones(c_out), out_y, s=90, c=[group_colour(g) for g in out_group], zorder=3, edgecolors="black")
    input_values = _single_values(tensors.input, case) if tensors is not None else None
    output_values = _single_outputs(case, tensors) if tensors is not None else None
    if max(c_in, c_out) <= MAX_LABELLED_CHANNELS:
        for c in range(c_in):
            text = f"in {c}" + (f" = {format_number(input_values[c], case.dtype)}" if input_values is not None else "")
            ax.text(-0.06, in_y[c], text, ha="right", va="center", fontsize=9)
        for o in range(c_out):
            text = f"out {o}" + (f" = {format_number(output_values[o], case.dtype)}" if output_values is not None else "")
            ax.text(1.06, out_y[o], text, ha="left", va="center", fontsize=9)
    ax.set_xlim(-0.75, 1.75)
    ax.set_ylim(-height / 2 - 0.2, height / 2 + 0.2)
    ax.axis("off")
    ax.set_title(f"groups = {conv.groups}: each output channel reads the {c_in // conv.groups} input channel(s) "
                 f"of its group", fontsize=10)
    _legend(ax, conv.groups, loc="lower center", bbox_to_anchor=(0.5, -0.02), ncol=min(conv.groups, 6),
            fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _single_values(x: np.ndarray, case: Case) -> np.ndarray | None:
    """The per-channel values of a one-pixel, one-sample input (the seed's 0.1 … 10000), else None."""
    channels = x.shape[-3]
    return x.reshape(channels).astype(np.float64) if x.size == channels else None


def _single_outputs(case: Case, tensors: CaseTensors) -> np.ndarray | None:
    geo = geometry_of(case, tensors)
    if geo.batch * geo.output_size[0] * geo.output_size[1] != 1 or geo.out_channels > MAX_LABELLED_CHANNELS:
        return None
    return np.array([element_sum(case, tensors, (0, o, 0, 0)).total for o in range(geo.out_channels)])


def draw_weights(case: Case, tensors: CaseTensors):
    """The weight laid out as an (out × in) matrix of kernels: block-diagonal with groups, dense without."""
    conv = case.conv
    k_h, k_w = conv.kernel_hw
    matrix = connectivity(conv)  # (C_out, C_in): group or -1
    c_out, c_in = matrix.shape
    in_per_group = c_in // conv.groups
    weight = tensors.weight.astype(np.float64)  # (C_out, C_in/G, kH, kW)
    rows, cols = c_out * k_h, c_in * k_w
    scale = 3.6 / max(rows, cols, 1)  # inches per weight cell
    panel = (max(2.9, cols * scale + 1.0), max(2.2, rows * scale + 1.0))
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * panel[0] + 0.6, panel[1] + 1.3))

    # One RGBA pixel per weight: the group's tint where output o reads input c, white elsewhere.
    tints = np.array([(*group_colour(g)[:3], 0.35) for g in range(conv.groups)] + [(1.0, 1.0, 1.0, 0.0)])
    cells = tints[np.where(matrix >= 0, matrix, conv.groups)]  # (C_out, C_in, 4)
    cells = np.repeat(np.repeat(cells, k_h, axis=0), k_w, axis=1)  # (C_out*kH, C_in*kW, 4)
    left.imshow(cells, extent=(0, cols, rows, 0), interpolation="nearest")
    right.imshow(np.broadcast_to(np.array([0.82, 0.82, 0.82, 1.0]), (rows, cols, 4)), extent=(0, cols, rows, 0),
                 interpolation="nearest")
    for ax in (left, right) if scale * min(k_h, k_w) >= 0.12 else ():  # white lines frame each kernel, if wide enough
        ax.vlines(np.arange(1, c_in) * k_w, 0, rows, colors="white", lw=1)
        ax.hlines(np.arange(1, c_out) * k_h, 0, cols, colors="white", lw=1)
    if scale >= 0.3:  # inches per cell: below that the numbers would overlap
        fontsize = 10 if scale >= 0.5 else 7
        for o, c in zip(*np.nonzero(matrix >= 0)):
            kernel = weight[o, c - matrix[o, c] * in_per_group]  # (kH, kW)
            for p in range(k_h):
                for q in range(k_w):
                    left.text(c * k_w + q + 0.5, o * k_h + p + 0.5, format_number(kernel[p, q], case.dtype, DIGITS),
                              ha="center", va="center", fontsize=fontsize)
    dense = c_out * c_in * k_h * k_w
    for ax, title in ((left, f"groups = {conv.groups}\nweight {tuple(weight.shape)}: {weight.size} numbers\n"
                             f"W[o, j] sits at input g·{in_per_group} + j"),
                      (right, f"groups = 1\nweight ({c_out}, {c_in}, {k_h}, {k_w}): {dense} numbers\n")):
        ax.set_xlim(0, cols)
        ax.set_ylim(rows, 0)  # output channel 0 at the top, like a printed matrix
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("input channel")
        ax.set_ylabel("output channel")
        step = -(-c_in // 8)  # at most 8 labelled channels per axis
        ax.set_xticks([c * k_w + k_w / 2 for c in range(0, c_in, step)], [str(c) for c in range(0, c_in, step)])
        step = -(-c_out // 16)
        ax.set_yticks([o * k_h + k_h / 2 for o in range(0, c_out, step)], [str(o) for o in range(0, c_out, step)])
        ax.tick_params(length=0, labelsize=8)
        for spine in ax.spines.values():
            spine.set_visible(False)
    _legend(fig, conv.groups, loc="lower center", ncol=min(conv.groups, 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))  # leave the bottom strip to the legend
    return fig


def default_picture_element(case: Case, tensors: CaseTensors) -> tuple[int, int, int, int]:
    """The element drawn when none is chosen: output channel 0 at the centre of the output."""
    geo = geometry_of(case, tensors)
    return (0, 0, geo.output_size[0] // 2, geo.output_size[1] // 2)


def draw_element(case: Case, tensors: CaseTensors, element: Sequence[int] | None = None):
    """One output element: each input channel of its group (padded, around the window) with the
    kernel's value over each window cell and the product, then the sum."""
    index = tuple(element) if element is not None else default_picture_element(case, tensors)
    geo = geometry_of(case, tensors)
    explained = element_sum(case, tensors, index)
    n, o, h, w = explained.index
    g = explained.group
    colour = group_colour(g)
    x = tensors.input.reshape(geo.batch, geo.in_channels, geo.height, geo.width).astype(np.float64)
    padded = pad_input(x[n:n + 1], geo.pads, geo.padding_mode)[0]  # (C_in, H_pad, W_pad)
    top, _, left_pad, _ = geo.pads
    span_h, span_w = geo.effective_kernel
    row0, col0 = h * geo.stride[0], w * geo.stride[1]  # window's top-left in padded coordinates
    # Show the window and one cell of context on each side (clipped to the padded input).
    r_lo, r_hi = max(row0 - 1, 0), min(row0 + span_h + 1, padded.shape[1])
    c_lo, c_hi = max(col0 - 1, 0), min(col0 + span_w + 1, padded.shape[2])
    channels = list(geo.input_channels_of_group(g))[:MAX_ELEMENT_CHANNELS]
    cell = 0.62 if max(r_hi - r_lo, c_hi - c_lo) <= 6 else 0.42
    width_in = max(2.0, (c_hi - c_lo) * cell + 0.4)
    fig, axes = plt.subplots(1, len(channels) + 1, figsize=(width_in * len(channels) + 3.2,
                                                           max(2.6, (r_hi - r_lo) * cell + 1.4)),
                             gridspec_kw={"width_ratios": [width_in] * len(channels) + [3.0]})
    taps = {(t.input_channel, t.tap): t for t in explained.terms}
    fontsize = 8 if cell > 0.5 else 6
    for ax, channel in zip(axes[:-1], channels):
        for r in range(r_lo, r_hi):
            for c in range(c_lo, c_hi):
                inside = top <= r < top + geo.height and left_pad <= c < left_pad + geo.width
                p, dp = divmod(r - row0, geo.dilation[0])
                q, dq = divmod(c - col0, geo.dilation[1])
                in_window = dp == 0 and dq == 0 and 0 <= p < geo.kernel[0] and 0 <= q < geo.kernel[1]
                face = (*colour[:3], 0.35) if in_window else ((1, 1, 1, 1) if inside else (0.9, 0.9, 0.9, 1))
                ax.add_patch(Rectangle((c, r), 1, 1, facecolor=face, edgecolor="black" if in_window else "0.7",
                                       lw=1.2 if in_window else 0.6))
                value = format_number(padded[channel, r, c], case.dtype, DIGITS)
                if in_window:
                    term = taps[(channel, (p, q))]
                    ax.text(c + 0.5, r + 0.3, value, ha="center", va="center", fontsize=fontsize)
                    ax.text(c + 0.5, r + 0.58, f"×{format_number(term.weight, case.dtype, DIGITS)}", ha="center",
                            va="center", fontsize=fontsize - 1, color="darkred")
                    ax.text(c + 0.5, r + 0.84, f"={format_number(term.product, case.dtype, DIGITS)}", ha="center",
                            va="center", fontsize=fontsize - 1, color="0.25")
                else:
                    ax.text(c + 0.5, r + 0.5, value, ha="center", va="center", fontsize=fontsize,
                            color="0.2" if inside else "0.55")
        ax.set_xlim(c_lo, c_hi)
        ax.set_ylim(r_hi, r_lo)
        ax.set_aspect("equal")
        ax.axis("off")
        j = channel - g * geo.in_channels_per_group
        ax.set_title(f"input channel {channel}\nkernel W[{o},{j}]", fontsize=9)
    summary = axes[-1]
    summary.axis("off")
    lines = [f"y[{n},{o},{h},{w}]  (group {g})", ""]
    for channel in list(geo.input_channels_of_group(g))[:12]:
        partial = sum(t.product for t in explained.terms if t.input_channel == channel)
        lines.append(f"in {channel}: {format_number(partial, case.dtype)}")
    hidden = geo.in_channels_per_group - min(geo.in_channels_per_group, 12)
    if hidden:
        lines.append(f"… ({hidden} more channels)")
    if explained.bias is not None:
        lines.append(f"bias: {format_number(explained.bias, case.dtype)}")
    lines += ["", f"sum = {format_number(explained.total, case.dtype)}"]
    summary.text(0.0, 0.95, "\n".join(lines), ha="left", va="top", fontsize=9, family="monospace",
                 transform=summary.transAxes)
    fig.suptitle(f"output channel {o} is in group {g}: it reads input channels "
                 f"{channels[0]}-{geo.input_channels_of_group(g)[-1]}" if geo.in_channels_per_group > 1 else
                 f"output channel {o} is in group {g}: it reads input channel {channels[0]} only", fontsize=10)
    fig.tight_layout()
    return fig


def draw_case_pictures(case: Case, tensors: CaseTensors, directory: Path | str, *,
                       element: Sequence[int] | None = None, stem: str = "",
                       formats: Sequence[str] = ("svg", "png"), dpi: int = 100) -> list[Path]:
    """Draw the three pictures into ``directory`` as ``{stem}{picture}.{format}``; returns the paths.

    Raises ValueError for an invalid layer (there is nothing to draw).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    figures = {"connectivity": lambda: draw_connectivity(case, tensors),
               "weights": lambda: draw_weights(case, tensors),
               "element": lambda: draw_element(case, tensors, element)}
    paths = []
    for name in PICTURES:
        fig = figures[name]()
        try:
            for fmt in formats:
                path = directory / f"{stem}{name}.{fmt}"
                fig.savefig(path, format=fmt, dpi=dpi, metadata=_stable_metadata(fmt))
                paths.append(path)
        finally:
            plt.close(fig)
    return paths


def _stable_metadata(fmt: str) -> dict:
    """No creation date or software version in the files, so committed pictures don't churn."""
    if fmt == "svg":
        return {"Date": None, "Creator": None}
    if fmt == "png":
        return {"Software": None}
    return {}
