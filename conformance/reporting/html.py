"""A static, self-contained HTML report of a run: one ``index.html`` that is a learning page.

Everything is inline (styles, a few lines of script, the SVG pictures of
:mod:`conformance.teaching.pictures`): it opens from disk, offline, with nothing fetched from elsewhere. It
takes the :class:`~conformance.running.runner.CaseResult` list that ``conformance run`` produced and renders
each case from the explanation model of :mod:`conformance.teaching.explain` (never from terminal text):

* a summary table: status (and a failure's kind), the largest error against its allowance and the
  implementation's and torch's time;
* per case: its description, the layer, the groups as a table coloured by group, the input and the
  weight laid out per group, the output elements as sums of products, the notes (float rounding,
  digit carries), the cost against groups=1, the pictures; for a small 2-d case, hovering or
  tapping an output cell lights up the input window, the kernel taps and the input channels it reads;
* a failure's checks in full; the harness's other checks folded away in ``<details>``;
* any extra sections a caller passes in (``extra_sections``: e.g. the coverage map).

This is the checking view. The page for learners is the lesson (``conformance learn``,
:mod:`conformance.teaching.lesson_page`), not a mode of this report.

    >>> from pathlib import Path; import tempfile
    >>> from conformance.cases.loader import load_file
    >>> from conformance.running.implementations import load_implementation
    >>> from conformance.running.runner import run_case
    >>> case = load_file(Path(__file__).parents[2] / "cases" / "seed" / "groups3.yaml")[0]
    >>> page = write_html_report([run_case(case, load_implementation(None))], tempfile.mkdtemp()).read_text()
    >>> "650 = 5×10 + 6×100" in page and "<pre" not in page
    True
"""

from __future__ import annotations

import html
import inspect
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from conformance.judging.outcomes import ERROR, FAILED, PASSED, SKIPPED, XFAILED, XPASSED
from conformance.reporting.terminal import comparison_details, outputs_of, summary_line
from conformance.running.runner import CaseResult, Check
from conformance.teaching.explain import (
    ElementSum,
    Explanation,
    TensorLayout,
    build_explanation,
    channel_span,
    format_factor,
    format_number,
    is_extra_check,
    plural,
)
from conformance.teaching.pictures import PALETTE, Picture, case_pictures, tint
from conformance.tools.coverage import CoverageGrid

MAX_GRID_CELLS_WIDE = 10  # rows/columns of a tensor grid on the page (padding included): fits 420 px
MAX_GRID_CHARACTERS = 44  # columns × widest number: beyond this a grid would not fit a phone's width
MAX_INTERACTIVE_OUTPUTS = 64  # output elements (of sample 0) that get a hover/tap sum
MAX_SUM_CHANNELS = 8  # input channels written out in one element's sum before eliding
MAX_PRODUCTS = 27  # products written out for one input channel (a 3×3×3 kernel)
OPEN_CASES = 12  # reports up to this many cases show every case's explanation unfolded
PAGE_LAYOUT_LIMITS = (8, 8)  # groups, and channels per group, of the input/weight layout on the page

STATUS_CLASSES = {
    PASSED: "passed",
    FAILED: "failed",
    ERROR: "error",
    SKIPPED: "skipped",
    XFAILED: "xfailed",
    XPASSED: "xpassed",
}
STATUS_HELP = {
    XFAILED: "failed, as an xfail entry expects",
    XPASSED: "passed although an xfail entry expects a failure",
    SKIPPED: "nothing could be checked",
    ERROR: "the case could not be run",
}

STYLE = """
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 72em;
       padding: 0.5em 1em 3em; color: #222; line-height: 1.45; overflow-wrap: anywhere; }
h1 { font-size: 1.6em; margin: 0.6em 0 0.3em; } h2 { font-size: 1.3em; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.9em;
       background: #f4f4f4; padding: 0 0.2em; border-radius: 3px; }
table { border-collapse: collapse; margin: 0.4em 0 1em; max-width: 100%; }
th, td { border: 1px solid #d5d5d5; padding: 0.25em 0.55em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; font-weight: 600; overflow-wrap: normal; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.status { font-weight: 600; } .status.passed { color: #1a7f37; } .status.failed, .status.error { color: #c62828; }
.status.xfailed { color: #8a6d00; } .status.xpassed { color: #7b1fa2; } .status.skipped { color: #666; }
.kind { color: #c62828; font-size: 0.85em; }
section.case { border-top: 2px solid #ddd; margin-top: 2em; padding-top: 0.3em; }
section.case > h2 { margin-bottom: 0.2em; }
.where { color: #666; font-size: 0.85em; margin: 0; }
.muted { color: #666; } .note { background: #fff8e1; border-left: 4px solid #f0c000; padding: 0.4em 0.7em; }
.failure { background: #fdecea; border-left: 4px solid #c62828; padding: 0.2em 0.8em; margin: 0.8em 0; }
.failure ul, .checks ul { margin: 0.2em 0 0.4em; padding-left: 1.2em; }
.predicted { margin: 0.3em 0; font-size: 1.05em; }
ul.features { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 0.2em 1.2em; }
ul.features .count { display: inline-block; min-width: 1.6em; padding: 0 0.3em; border-radius: 0.8em;
                     background: #e8eef7; text-align: center; font-variant-numeric: tabular-nums; }
.lines li { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85em; white-space: pre-wrap; }
details { margin: 0.6em 0; } summary { cursor: pointer; font-weight: 600; }
.chip { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 2px; margin-right: 0.3em;
        vertical-align: -0.05em; }
.tensors { display: flex; flex-wrap: wrap; gap: 0.6em; margin: 0.3em 0 0.8em; }
.group-box { border: 1px solid #ccc; border-left-width: 5px; border-radius: 4px; padding: 0.2em 0.5em 0.4em;
             max-width: 100%; }
.group-box > .label { font-size: 0.85em; font-weight: 600; margin: 0.1em 0 0.2em; }
.blocks { display: flex; flex-wrap: wrap; gap: 0.5em; }
figure.block { margin: 0; transition: opacity 0.15s; }
figure.block figcaption { font-size: 0.8em; color: #444; font-family: ui-monospace, Menlo, Consolas, monospace; }
table.grid { margin: 0; }
table.grid td { padding: 0.1em 0.3em; min-width: 1.9em; text-align: center; font-size: 0.8em;
                font-variant-numeric: tabular-nums; border-color: #ccc; background: #fff; }
table.grid td.pad { color: #999; background: #f4f4f4; border-style: dashed; }
table.grid td[data-o] { cursor: pointer; }
.readout { min-height: 1.6em; margin: 0.2em 0 0.6em; color: #666; }
.highlighting .readout { color: #111; font-weight: 600; }
.highlighting figure.block[data-channel]:not(.hl-channel),
.highlighting .weight-row:not(.hl-row) { opacity: 0.3; }
.weight-row > .label { font-size: 0.8em; color: #555; margin: 0.2em 0 0; }
.weight-row { transition: opacity 0.15s; }
.pictures { display: flex; flex-wrap: wrap; gap: 0 1.5em; align-items: flex-start; }
table.grid td.hl-window { outline: 2px solid #111; outline-offset: -2px; font-weight: 700; background: #ffe58a; }
table.grid td.hl-tap { outline: 2px solid #a11111; outline-offset: -2px; font-weight: 700; background: #ffd6d6; }
table.grid td.hl-out { outline: 3px solid #111; outline-offset: -3px; font-weight: 700; }
.sum { font-variant-numeric: tabular-nums; }
.sum .partials { font-size: 0.85em; color: #555; }
figure.picture { margin: 0.8em 0; max-width: 100%; }
figure.picture svg { max-width: 100%; height: auto; display: block; }
figure.picture figcaption { font-size: 0.85em; color: #555; max-width: 44em; }
nav ul { padding-left: 1.2em; }
@media (max-width: 640px) {
  body { padding: 0.3em 0.6em 2em; }
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; width: auto; }
  table.stack thead { display: none; }
  table.stack tr { border: 1px solid #d5d5d5; border-radius: 4px; margin: 0 0 0.5em; padding: 0.2em 0; }
  table.stack td { border: none; padding: 0.1em 0.5em; text-align: left; white-space: normal; }
  table.stack td[data-label]::before { content: attr(data-label) ": "; font-weight: 600; color: #555; }
  #summary td { display: inline-block; padding-right: 0.8em; }
  #summary td:first-child { display: block; }
  #summary td:first-child::before { content: none; }
}
""" + "".join(
    f".g{g} {{ border-left: 5px solid {colour}; }} .g{g}.tinted, .g{g} .tinted {{ background: "
    f"{tint(colour, 0.18)}; }} .chip.g{g} {{ background: {colour}; border: none; }}\n"
    for g, colour in enumerate(PALETTE)
)

# Hover, focus or tap an output cell: light up the input cells its window reads, the kernel taps of
# its weight row and its input channels (grey out the rest); the sum appears in the readout. The
# geometry (stride, dilation, kernel, channels, groups) is on the section; the cells carry their
# coordinates, input cells in padded coordinates.
SCRIPT = """
document.querySelectorAll('section.case[data-geometry]').forEach(function (section) {
  var geo = JSON.parse(section.dataset.geometry);
  var readout = section.querySelector('.readout');
  var names = ['hl-window', 'hl-tap', 'hl-channel', 'hl-row', 'hl-out'];
  function mark(selector, name) {
    section.querySelectorAll(selector).forEach(function (e) { e.classList.add(name); });
  }
  function light(cell) {
    names.forEach(function (name) {
      section.querySelectorAll('.' + name).forEach(function (e) { e.classList.remove(name); });
    });
    cell.classList.add('hl-out');
    if (cell.dataset.reads !== undefined) {  // the cell lists what its sum reads
      cell.dataset.reads.split(' ').forEach(function (key) {
        if (key) {
          mark('[data-' + key.charAt(0) + '="' + key.slice(2) + '"]', key.charAt(0) === 'x' ? 'hl-window' : 'hl-tap');
        }
      });
      cell.dataset.channels.split(' ').forEach(function (c) { mark('[data-channel="' + c + '"]', 'hl-channel'); });
      cell.dataset.rows.split(' ').forEach(function (r) { mark('[data-weight-row="' + r + '"]', 'hl-row'); });
      section.classList.add('highlighting');
      if (readout) { readout.textContent = cell.dataset.sum; }
      return;
    }
    var o = +cell.dataset.o, h = +cell.dataset.h, w = +cell.dataset.w;
    var inPerGroup = geo.in_channels / geo.groups, g = Math.floor(o / (geo.out_channels / geo.groups));
    mark('[data-weight-row="' + o + '"]', 'hl-row');
    for (var j = 0; j < inPerGroup; j++) {
      var c = g * inPerGroup + j;
      mark('[data-channel="' + c + '"]', 'hl-channel');
      for (var p = 0; p < geo.kernel[0]; p++) {
        for (var q = 0; q < geo.kernel[1]; q++) {
          var r = h * geo.stride[0] + p * geo.dilation[0], col = w * geo.stride[1] + q * geo.dilation[1];
          mark('[data-x="' + c + ',' + r + ',' + col + '"]', 'hl-window');
          mark('[data-w="' + o + ',' + j + ',' + p + ',' + q + '"]', 'hl-tap');
        }
      }
    }
    section.classList.add('highlighting');
    if (readout) { readout.textContent = cell.dataset.sum; }
  }
  section.querySelectorAll('td[data-o]').forEach(function (cell) {
    ['mouseover', 'focus', 'click'].forEach(function (event) {
      cell.addEventListener(event, function () { light(cell); });
    });
  });
});
"""


@dataclass(frozen=True)
class ReportSection:
    """Extra content for the report (already HTML; the caller escapes what it puts in)."""

    title: str
    html: str
    anchor: str = ""


def slug(text: str) -> str:
    """A name usable as an HTML id and a file name.

    >>> slug("seed/groups3#2")
    'seed-groups3-2'
    """
    return re.sub(r"[^A-Za-z0-9_]+", "-", text).strip("-") or "case"


def unique_slugs(results: Sequence[Any]) -> list[str]:
    """One anchor name per item (anything with a ``.name``: results, matrix rows), numbered on a clash,
    so the matrix's links land on the report's sections."""
    seen: dict[str, int] = {}
    slugs = []
    for result in results:
        base = slug(result.name)
        count = seen.get(base, 0)
        seen[base] = count + 1
        slugs.append(base if count == 0 else f"{base}-{count + 1}")
    return slugs


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value * 1000:.2f} ms"


def write_html_report(
    results: Sequence[CaseResult],
    directory: Path | str,
    *,
    title: str | None = None,
    pictures: bool = True,
    extra_sections: Sequence[ReportSection] = (),
) -> Path:
    """Write ``directory/index.html``; returns its path.

    A case whose explanation or pictures cannot be made gets a note in its section instead; it
    never stops the others.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    title = title or "groups conformance report"
    slugs = unique_slugs(results)
    open_all = len(results) <= OPEN_CASES
    sections = [
        _case_section(result, case_slug, pictures, open_all) for result, case_slug in zip(results, slugs, strict=False)
    ]
    extras = [(section.anchor or f"extra-{slug(section.title)}", section) for section in extra_sections]

    implementations = sorted({r.run.implementation.name for r in results if r.run is not None})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(title)}</h1>",
        f'<p id="verdict">{_e(summary_line(results))}'
        + (f" — implementation under test: {_e(', '.join(implementations))}, oracle: torch" if implementations else "")
        + "</p>",
    ]
    if extras:
        parts.append(
            "<nav><ul>"
            + "".join(f'<li><a href="#{_e(anchor)}">{_e(s.title)}</a></li>' for anchor, s in extras)
            + "</ul></nav>"
        )
    parts.append(_summary_table(results, slugs))
    parts.extend(sections)
    for anchor, section in extras:
        parts.append(f'<section class="extra" id="{_e(anchor)}"><h2>{_e(section.title)}</h2>{section.html}</section>')
    parts += [f"<script>{SCRIPT}</script>", "</body>", "</html>", ""]
    index = directory / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index


# ---------------------------------------------------------------------------------------------
# the summary


def _status(result: CaseResult) -> str:
    css = STATUS_CLASSES.get(result.status, "")
    help_text = STATUS_HELP.get(result.status)
    title = f' title="{_e(help_text)}"' if help_text else ""
    kind = f' <span class="kind">({_e(result.kind.replace("_", " "))})</span>' if result.kind else ""
    return f'<span class="status {css}"{title}>{_e(result.status)}</span>{kind}'


def _error_text(result: CaseResult) -> str:
    error, ratio = result.max_abs_error, result.max_error_ratio
    if error is None:
        return ""
    text = f"{error:.3g}"
    if error == 0:
        return text
    if ratio is None or not np.isfinite(ratio) or ratio <= 0:
        return text
    return text + (f" ({ratio:.0%} of the allowed error)" if ratio >= 0.005 else " (under 1% of the allowed error)")


def _summary_table(results: Sequence[CaseResult], slugs: Sequence[str]) -> str:
    error_header = "max abs error"
    headers = ["case", "status", error_header, "implementation time", "torch time"]
    rows = [
        '<table id="summary" class="stack">',
        "<thead><tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr></thead>",
        "<tbody>",
    ]
    for result, case_slug in zip(results, slugs, strict=False):
        run = result.run
        cells = [
            f'<td data-label="case"><a href="#case-{case_slug}">{_e(result.name)}</a></td>',
            f'<td data-label="status">{_status(result)}</td>',
            f'<td data-label="{error_header}" class="number">{_e(_error_text(result))}</td>',
            f'<td data-label="implementation time" class="number">'
            f"{_e(_seconds(run.impl.seconds if run else None))}</td>",
            f'<td data-label="torch time" class="number">{_e(_seconds(run.torch.seconds if run else None))}</td>',
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rows += ["</tbody>", "</table>"]
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------
# one case


def _case_section(result: CaseResult, case_slug: str, pictures: bool, open_all: bool) -> str:
    case = result.case
    where = case.location if case is not None else result.file
    try:
        explanation = _explanation(result) if case is not None else None
        learn = _learning_part(result, explanation, case_slug, pictures) if explanation is not None else ""
    except Exception as exc:  # one case's problem must not hide the report
        explanation, learn = None, f"<p>(no explanation: {_e(type(exc).__name__)}: {_e(exc)})</p>"
    geometry = None
    if explanation is not None and "data-o=" in learn:  # the page draws hoverable output cells
        geometry = _interactive_geometry(result) or {"reads": "per cell"}
    parts = [
        f'<section class="case" id="case-{case_slug}" data-case="{_e(result.name)}" '
        f'data-status="{_e(result.status)}"'
        + (f" data-geometry='{_e(json.dumps(geometry))}'" if geometry else "")
        + ">",
        f"<h2>{_e(result.name)} {_status(result)}</h2>",
        f'<p class="where"><code>{_e(where)}</code></p>',
    ]
    if case is not None and case.description:
        parts.append(f'<p class="description">{_e(case.description)}</p>')
    parts.append(_failure_block(result, explanation))
    if learn:
        unfold = open_all or result.status not in (PASSED, SKIPPED, XFAILED)
        parts.append(
            f'<details class="learn"{" open" if unfold else ""}><summary>How it is computed</summary>{learn}</details>'
            if not open_all
            else learn
        )
    parts.append(_other_checks(result))
    parts.append("</section>")
    return "\n".join(part for part in parts if part)


def _explanation(result: CaseResult) -> Explanation:
    """The explanation model, laid out in full (PAGE_LAYOUT_LIMITS) where the model takes limits: the
    hover highlight needs every input channel and weight row of a small case on the page."""
    if "layout_limits" in inspect.signature(build_explanation).parameters:
        return build_explanation(result, layout_limits=PAGE_LAYOUT_LIMITS)
    return build_explanation(result)  # a model without layout limits: its own (terminal) defaults


def _failure_block(result: CaseResult, explanation: Explanation | None = None) -> str:
    """A failure's checks with their full details; a broken case file's problems; the result's
    extra notes (a reproducer's path, an xfail entry), when the runner sets them."""
    notes = "".join(f"<li>{_e(note)}</li>" for note in getattr(result, "notes", None) or ())
    notes = f'<ul class="lines">{notes}</ul>' if notes else ""
    if result.status == ERROR and result.case is None:
        text = result.load_error.format(snippets=False) if result.load_error else result.message
        return (
            '<div class="failure"><p><strong>This case could not be run:</strong></p><ul class="lines">'
            + "".join(f"<li>{_e(line)}</li>" for line in text.splitlines() if line.strip())
            + f"</ul>{notes}</div>"
        )
    failed = [check for check in result.checks if not check.passed]
    if not failed:
        if result.status == SKIPPED and result.message:
            return f'<p class="muted">Skipped: {_e(result.message)}{notes}</p>'
        if result.status == ERROR:
            return f'<div class="failure"><p><strong>{_e(result.message)}</strong></p>{notes}</div>'
        return f'<div class="muted">{notes}</div>' if notes else ""
    items = []
    predicted: set[tuple[int, ...]] = set()  # elements whose sum is already shown (torch and the implementation)
    # The output comparisons first, in full; the harness's extra checks (variants, metamorphic
    # relations, the wiring probe, gradients) after them, their details folded away.
    failed.sort(key=lambda check: is_extra_check(check.name))
    for check in failed:
        details = list(check.details)
        if check.comparison is not None:
            arrays = check.arrays if check.arrays is not None else outputs_of(result)
            details = comparison_details(result.case, check.comparison, arrays, check.tensor) + details
        lines = '<ul class="lines">' + "".join(f"<li>{_e(line.strip())}</li>" for line in details) + "</ul>"
        if details and is_extra_check(check.name):
            lines = f"<details><summary>details</summary>{lines}</details>"
        items.append(
            f"<li><strong>{_e(check.name)}</strong>: {_e(check.summary)}"
            + _predicted(check, explanation, predicted)
            + (lines if details else "")
            + "</li>"
        )
    heading = "Failed check" if len(failed) == 1 else f"{len(failed)} failed checks"
    if result.status == ERROR:  # the case's own expected output is wrong: its fault, not the implementation's
        heading = f"The case itself is wrong: {_e(result.message)}" if result.message else "The case itself is wrong"
    return f'<div class="failure"><p><strong>{heading}</strong></p><ul>{"".join(items)}</ul>{notes}</div>'


def _predicted(check: Check, explanation: Explanation | None, shown: set[tuple[int, ...]]) -> str:
    """Predict-then-check: where the case's ``expected`` (the learner's prediction) is off, the sum
    of that element beside the value written down."""
    comparison = check.comparison
    if explanation is None or comparison is None or comparison.expected_name != "expected" or check.tensor != "output":
        return ""
    reason = f"worst element of {comparison.actual_name} vs expected"
    for element in explanation.elements:
        expected = element.values.get("expected")
        if element.reason == reason and expected is not None and element.sum.index not in shown:
            shown.add(element.sum.index)
            index = ",".join(str(i) for i in element.sum.index)
            written = format_number(expected, explanation.dtype)
            return (
                f'<p class="predicted">y[{index}]: the case expects {_e(written)}, but the sum is '
                f"<strong>{_e(_sum_text(element.sum, explanation.dtype))}</strong></p>"
            )
    return ""


def _other_checks(result: CaseResult) -> str:
    """The passing checks, folded away: the failure block above already shows the failing ones."""
    passed = [check for check in result.checks if check.passed]
    if not passed:
        return ""
    rows = "".join(
        f'<tr><td data-label="check">{_e(check.name)}</td><td data-label="result">'
        f'{"skipped" if check.skipped else "ok"}</td><td data-label="summary">{_e(check.summary)}'
        + (
            '<ul class="lines">' + "".join(f"<li>{_e(line)}</li>" for line in check.details) + "</ul>"
            if check.details
            else ""
        )
        + "</td></tr>"
        for check in passed
    )
    return (
        f'<details class="checks"><summary>Harness checks: {plural(len(passed), "check")} passed</summary>'
        f'<table class="stack"><thead><tr><th>check</th><th>result</th><th>summary</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></details>"
    )


def _learning_part(result: CaseResult, e: Explanation, case_slug: str, pictures: bool) -> str:
    parts = [f"<p>The layer: <code>{_e(e.signature)}</code></p>"]
    if e.invalid:
        parts.append(f"<p>{_e(e.invalid)}</p>")
    if e.message:
        parts.append(f"<p>{_e(e.message)}</p>")
    if e.refusals:
        parts.append("<ul>" + "".join(f"<li>{_e(side)}: {_e(text)}</li>" for side, text in e.refusals) + "</ul>")
    if e.grouping is None or not e.elements:
        return "\n".join(parts)
    parts.append(_grouping_table(e))
    if e.input is not None and e.weight is not None:
        parts.append(_tensor_part(result, e, _hover_mode(result, e)))
    parts.append(_sums_table(e))
    parts.extend(f'<p class="note">{_e(note.text)}</p>' for note in e.notes)
    if e.cost is not None:
        parts.append(_cost_line(e))
    if pictures and result.case is not None and result.run is not None:
        parts.append(_pictures(result))
    return "\n".join(parts)


def _group_chip(group: int) -> str:
    return f'<span class="chip g{group % len(PALETTE)}"></span>'


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}–{last}"


def _grouping_table(e: Explanation) -> str:
    grouping = e.grouping
    assert grouping is not None
    kind = {
        "dense": "groups = 1: the ordinary (dense) convolution, every output channel reads every input channel.",
        "depthwise": "groups = in_channels: a depthwise convolution, each input channel filtered on its own"
        + (f", with depth multiplier {grouping.depth_multiplier}." if grouping.depth_multiplier > 1 else "."),
    }.get(
        grouping.kind,
        f"groups = {grouping.groups}: the channels are split into {grouping.groups} groups; "
        "an output channel reads only the input channels of its own group.",
    )
    rows = []
    shown = list(range(grouping.groups)) if grouping.groups <= 8 else [0, 1, 2, grouping.groups - 1]
    for g in shown:
        if g == grouping.groups - 1 and len(shown) < grouping.groups:
            rows.append(f'<tr><td colspan="3" class="muted">… groups 3–{grouping.groups - 2} alike …</td></tr>')
        ins, outs = grouping.inputs_of_group(g), grouping.outputs_of_group(g)
        rows.append(
            f'<tr class="g{g % len(PALETTE)} tinted"><td data-label="group">{_group_chip(g)}{g}</td>'
            f'<td data-label="output channels">{_span(outs[0], outs[-1])}</td>'
            f'<td data-label="read input channels">{_span(ins[0], ins[-1])}</td></tr>'
        )
    per = (
        f"in_channels/groups = {grouping.in_channels}/{grouping.groups} = {grouping.in_per_group} input and "
        f"out_channels/groups = {grouping.out_channels}/{grouping.groups} = {grouping.out_per_group} output "
        f"{'channel' if grouping.out_per_group == 1 else 'channels'} per group"
    )
    return (
        f"<h3>The groups</h3><p>{_e(kind)} {_e(per)}.</p>"
        '<table class="groups stack"><thead><tr><th>group</th><th>output channels</th>'
        f"<th>read input channels</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


# ---------------------------------------------------------------------------------------------
# the tensors, per group


def _interactive_geometry(result: CaseResult) -> dict | None:
    """The geometry the page's script needs, for a small 2-d convolution; None when the case is too
    large (or not a plain Conv2d) for hover/tap highlighting."""
    case, run = result.case, result.run
    if case is None or run is None or run.torch.output is None or case.expect_error is not None:
        return None
    conv = case.conv
    if conv.transposed or conv.spatial_dims != 2 or not conv.is_divisible:
        return None
    from conformance.teaching.explain import geometry_of

    geo = geometry_of(case, run.tensors)
    if geo.out_channels * geo.output_size[0] * geo.output_size[1] > MAX_INTERACTIVE_OUTPUTS:
        return None
    if max(geo.padded_size) > MAX_GRID_CELLS_WIDE or max(geo.output_size) > MAX_GRID_CELLS_WIDE:
        return None
    return {
        "in_channels": geo.in_channels,
        "out_channels": geo.out_channels,
        "groups": geo.groups,
        "kernel": list(geo.kernel),
        "stride": list(geo.stride),
        "dilation": list(geo.dilation),
    }


def _hover_mode(result: CaseResult, e: Explanation) -> str | None:
    """How output cells light up what they read: "geometry" (a small Conv2d: the script computes the
    window from stride, dilation and kernel, over the padded input), "reads" (another small 1-d or
    2-d op: each cell lists the input cells and kernel taps of its sum, from the explanation model),
    or None (too large, or part of the layout hidden: the page would light up cells it does not show)."""
    case, run = result.case, result.run
    if case is None or run is None or run.torch.output is None or case.expect_error is not None:
        return None
    if (
        e.input is None
        or e.weight is None
        or len(e.output_shape) not in (3, 4)
        or any(layout.hidden_groups or any(g.hidden_blocks for g in layout.groups) for layout in (e.input, e.weight))
    ):
        return None
    spatial = e.output_shape[2:]
    if e.output_shape[1] * int(np.prod(spatial)) > MAX_INTERACTIVE_OUTPUTS or max(spatial) > MAX_GRID_CELLS_WIDE:
        return None
    return "geometry" if _interactive_geometry(result) is not None else "reads"


def _fits(values: np.ndarray, dtype: str) -> bool:
    if values.ndim > 2 or any(size > MAX_GRID_CELLS_WIDE for size in values.shape):
        return False
    widest = max((len(format_number(v, dtype, 4)) for v in values.ravel()), default=1)
    return (values.shape[-1] if values.ndim else 1) * (widest + 1) <= MAX_GRID_CHARACTERS


# A grid cell's data- attributes (row, column -> text), which the page's script reads to highlight.
def _no_attributes(row: int, col: int) -> str:
    return ""


def _input_attributes(channel: int) -> Callable[[int, int], str]:
    return lambda row, col: f' data-x="{channel},{row},{col}"'


def _weight_attributes(out_channel: int, in_channel: int) -> Callable[[int, int], str]:
    return lambda row, col: f' data-w="{out_channel},{in_channel},{row},{col}"'


def _grid(
    values: np.ndarray, dtype: str, cell_attrs: Callable[[int, int], str], pad_mask: np.ndarray | None = None
) -> str:
    """A small table of numbers; ``cell_attrs(r, c)`` -> extra attributes of a cell."""
    values = np.atleast_2d(values)
    rows = []
    for r in range(values.shape[0]):
        cells = []
        for c in range(values.shape[1]):
            pad = pad_mask is not None and pad_mask[r, c]
            css = ' class="pad"' if pad else ""
            cells.append(f"<td{css}{cell_attrs(r, c)}>{_e(format_number(values[r, c], dtype, 4))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="grid">{"".join(rows)}</table>'


def _tensor_part(result: CaseResult, e: Explanation, hover: str | None) -> str:
    """The input (padded, when the case pads and the hover computes windows) and the weight, per
    group; the output, when its cells can light up what they read."""
    case, run = result.case, result.run
    assert case is not None and run is not None and e.input is not None and e.weight is not None
    blocks = [b for layout in (e.input, e.weight) for g in layout.groups for b in g.blocks]
    if not all(_fits(np.asarray(b.values), e.dtype) for b in blocks):
        return (
            f"<h3>Input and weight</h3><p>{_e(_shape(e.input))}; {_e(_shape(e.weight))}: not printed here (too "
            "large for a phone's width, or more than 2-d); the sums below show the values each output element "
            "reads.</p>"
        )
    pads = None
    if hover == "geometry":
        from conformance.teaching.explain import geometry_of

        geo = geometry_of(case, run.tensors)
        pads, mode = geo.pads, geo.padding_mode
    parts = [
        f'<h3>The input, per group</h3><p class="muted">{_e(_shape(e.input))}'
        + (f"; sample 0 of {e.input.shape[0]}" if e.input.shape[0] > 1 else "")
        + ("; dashed cells are the padding" if pads and any(pads) else "")
        + "</p>",
        _layout_html(e.input, e.dtype, "input", pads, mode if pads else "zeros", keyed=hover is not None),
        f'<h3>The weight, per group</h3><p class="muted">{_e(_shape(e.weight))}: {_e(_weight_sentence(e))}</p>',
        _layout_html(e.weight, e.dtype, "weight"),
    ]
    if hover is not None:
        parts.append(_output_html(result, e, hover))
    return "\n".join(parts)


def _shape(layout: TensorLayout) -> str:
    return f"{layout.name} {tuple(layout.shape)} = ({', '.join(layout.axes)})"


def _weight_sentence(e: Explanation) -> str:
    grouping = e.grouping
    assert grouping is not None
    if grouping.transposed:
        return (
            f"row c is input channel c; its kernel j feeds output channel g·{grouping.out_per_group} + j of its group g"
        )
    if grouping.in_per_group == 1:
        return (
            f"row o is output channel o; its one kernel multiplies input channel g = o // {grouping.out_per_group}"
            f", the only input channel of its group, so the second axis has the single index 0"
        )
    return (
        f"row o is output channel o; its kernel j multiplies input channel g·{grouping.in_per_group} + j of its "
        f"group g = o // {grouping.out_per_group}, so the second axis counts 0…{grouping.in_per_group - 1} "
        "within the group" + ("" if grouping.groups == 1 else f", not 0…{grouping.in_channels - 1}")
    )


def _layout_html(
    layout: TensorLayout,
    dtype: str,
    role: str,
    pads: tuple[int, int, int, int] | None = None,
    mode: str = "zeros",
    keyed: bool = False,
) -> str:
    """The groups' blocks as small grids. ``keyed``: input cells carry ``data-x="c,row,col"`` (in
    padded coordinates when ``pads``; a 1-d signal is row 0); weight cells always carry
    ``data-w="row,j,p,q"``."""
    boxes = []
    for group_layout in layout.groups:
        g = group_layout.group
        ins, outs = group_layout.input_channels, group_layout.output_channels
        label = (
            f"group {g} · {channel_span('input', ins)}"
            if role == "input"
            else f"group {g} · {channel_span('output', outs)}, reading {channel_span('input', ins)}"
        )
        figures = []
        rows: dict[int, list[str]] = {}  # weight: the kernels of each stored row, in order
        for block in group_layout.blocks:
            values = np.asarray(block.values, dtype=np.float64)
            if role == "input":
                c = block.input_channel
                mask = None
                if pads is not None and values.ndim == 2:
                    values, mask = _padded(values, pads, mode)
                attrs = _input_attributes(c) if keyed else _no_attributes
                figures.append(
                    f'<figure class="block" data-channel="{c}"><figcaption>{_e(block.label)}</figcaption>'
                    f"{_grid(values, dtype, attrs, mask)}</figure>"
                )
            else:
                o, j = block.index[0], block.index[1]
                attrs = _weight_attributes(o, j) if values.ndim <= 2 else _no_attributes
                transposed = bool(layout.axes) and layout.axes[0].startswith("in")  # rows are input channels
                caption = (
                    f"{block.label} → out {block.output_channel}"
                    if transposed
                    else f"{block.label} → in {block.input_channel}"
                )
                rows.setdefault(o, []).append(
                    f'<figure class="block"><figcaption>{_e(caption)}</figcaption>'
                    f"{_grid(values, dtype, attrs)}</figure>"
                )
        row_name = "input" if bool(layout.axes) and layout.axes[0].startswith("in") else "output"
        figures += [
            f'<div class="weight-row" data-weight-row="{o}"><p class="label">row {o} ({row_name} channel {o})'
            f'</p><div class="blocks">{"".join(kernels)}</div></div>'
            for o, kernels in rows.items()
        ]
        if group_layout.hidden_blocks:
            figures.append(f'<p class="muted">… {plural(group_layout.hidden_blocks, "more channel")}</p>')
        boxes.append(
            f'<div class="group-box g{g % len(PALETTE)}"><p class="label">{_group_chip(g)}{_e(label)}</p>'
            f'<div class="blocks">{"".join(figures)}</div></div>'
        )
    if layout.hidden_groups:
        hidden = layout.hidden_groups
        boxes.append(
            f'<p class="muted">group {hidden[0]} is laid out alike (not shown)</p>'
            if len(hidden) == 1
            else f'<p class="muted">groups {_span(hidden[0], hidden[-1])} are laid out alike (not shown)</p>'
        )
    return f'<div class="tensors">{"".join(boxes)}</div>'


def _grid_key(position: Sequence[int]) -> str:
    """A tensor position as the grid's "row,col" (a 1-d position is row 0)."""
    return ",".join(str(int(i)) for i in ((0, *position) if len(position) == 1 else position))


def _reads(element: ElementSum) -> str:
    """An output cell's reads for the "reads" hover mode: input cells (sample 0; a tap on zero
    padding reads no cell), kernel taps, input channels and weight rows, as data attributes."""
    keys = [
        f"x:{p.input_channel},{_grid_key(p.input_index[2:])}"
        for p in element.terms
        if p.input_index is not None and p.input_index[0] == 0
    ]
    keys += [f"w:{p.weight_index[0]},{p.weight_index[1]},{_grid_key(p.weight_index[2:])}" for p in element.terms]
    channels = sorted({p.input_channel for p in element.terms})
    rows = sorted({p.weight_index[0] for p in element.terms})
    return (
        f' data-reads="{" ".join(dict.fromkeys(keys))}" data-channels="{" ".join(map(str, channels))}"'
        f' data-rows="{" ".join(map(str, rows))}"'
    )


def _padded(values: np.ndarray, pads: tuple[int, int, int, int], mode: str) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) -> the padded (H_pad, W_pad) values and a mask of the padding cells."""
    from reference_impl import pad_input

    top, bottom, left, right = pads
    padded = pad_input(values[None, None], pads, mode)[0, 0]
    mask = np.ones(padded.shape, dtype=bool)
    mask[top : top + values.shape[0], left : left + values.shape[1]] = False
    return padded, mask


def _output_html(result: CaseResult, e: Explanation, hover: str) -> str:
    """Sample 0's output, per group, each cell carrying its sum for the hover/tap readout (and, in
    "reads" mode, the keys of the input cells, kernel taps, input channels and weight rows it reads)."""
    case, run = result.case, result.run
    assert case is not None and run is not None and e.grouping is not None
    from conformance.teaching.explain import element_sum

    output = np.asarray(run.torch.output, dtype=np.float64).reshape(e.output_shape)  # (N, C_out, *spatial), 1-d or 2-d
    boxes = []
    for g in range(e.grouping.groups):
        figures = []
        for o in e.grouping.outputs_of_group(g):

            def attrs(r: int, c: int, o: int = o) -> str:
                index = (0, o, c) if len(e.output_shape) == 3 else (0, o, r, c)  # a 1-d output is one row
                element = element_sum(case, run.tensors, index)
                text = f"y[{','.join(map(str, index))}] = {_sum_text(element, e.dtype)}"
                where = f' data-h="{r}" data-w="{c}"' if hover == "geometry" else _reads(element)
                return f' data-o="{o}"{where} tabindex="0" data-sum="{_e(text)}"'

            figures.append(
                f'<figure class="block" data-out-channel="{o}"><figcaption>y[0,{o}]</figcaption>'
                f"{_grid(output[0, o], e.dtype, attrs)}</figure>"
            )
        ins = e.grouping.inputs_of_group(g)
        boxes.append(
            f'<div class="group-box g{g % len(PALETTE)}"><p class="label">{_group_chip(g)}group {g} · reads '
            f'{channel_span("input", ins)}</p><div class="blocks">{"".join(figures)}</div></div>'
        )
    return (
        "<h3>The output: hover over or tap a cell</h3>"
        f'<div class="tensors">{"".join(boxes)}</div>'
        '<p class="readout" aria-live="polite">Hover over or tap an output cell: its window, kernel taps and input '
        "channels light up, and its sum appears here.</p>"
    )


# ---------------------------------------------------------------------------------------------
# the sums


def _as_partials(element: ElementSum) -> bool:
    """Is the sum written as per-channel partial sums (several channels, some with several products)?"""
    channels = element.channels
    return not (len(channels) == 1 and len(channels[0].products) <= MAX_PRODUCTS) and not all(
        len(channel.products) == 1 for channel in channels
    )


def _sum_text(element: ElementSum, dtype: str) -> str:
    """``650 = 5×10 + 6×100`` (one product per channel) or ``330 = 30 + 300`` (per-channel partial sums)."""
    channels = list(element.channels)
    if _as_partials(element) and len(channels) == 1:  # one channel, too many products to write in a line
        terms = [f"the sum of its {len(channels[0].products)} products"]
    elif _as_partials(element):
        terms = [format_factor(ch.total, dtype) for ch in channels]
    else:  # every product: one channel's, or one per channel
        terms = [
            f"{format_factor(p.weight, dtype)}×{format_factor(p.value, dtype)}" for ch in channels for p in ch.products
        ]
    if len(channels) > MAX_SUM_CHANNELS:  # one term per channel here (a single channel is never cut)
        rest = sum(ch.total for ch in channels[MAX_SUM_CHANNELS:])
        terms = terms[:MAX_SUM_CHANNELS] + [
            f"… ({len(channels) - MAX_SUM_CHANNELS} more channels, together {format_number(rest, dtype)})"
        ]
    if element.bias is not None:
        terms.append(f"{format_factor(element.bias, dtype)} (bias)")
    return f"{format_number(element.total, dtype)} = " + (" + ".join(terms) or "0")


def _partials(element: ElementSum, dtype: str) -> str:
    """Per input channel, its products: ``in 0: 1×1 + 2×2 + 3×3 + 4×4 = 30``."""
    items = []
    for channel in list(element.channels)[:MAX_SUM_CHANNELS]:
        products = channel.products
        shown = " + ".join(
            f"{format_factor(p.weight, dtype)}×{format_factor(p.value, dtype)}" for p in products[:MAX_PRODUCTS]
        )
        if len(products) > MAX_PRODUCTS:
            shown += f" + … ({len(products) - MAX_PRODUCTS} more)"
        items.append(f"<li>in {channel.input_channel}: {_e(shown)} = {_e(format_number(channel.total, dtype))}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _sums_table(e: Explanation) -> str:
    rtol, atol = e.tolerance
    partial = [_as_partials(x.sum) for x in e.elements]
    headers = [
        "element",
        "sum of the input channels' partial sums"
        if all(partial)
        else "sum of weight × input"
        if not any(partial)
        else "sum of weight × input (or of partial sums)",
    ]
    headers += list(e.sides) + ["check"]
    rows = []
    for x, as_partials in zip(e.elements, partial, strict=False):
        s = x.sum
        index = ",".join(str(i) for i in s.index)
        reads = ", ".join(str(ch.input_channel) for ch in s.channels[:MAX_SUM_CHANNELS])
        reads += ", …" if len(s.channels) > MAX_SUM_CHANNELS else ""
        partials = f"<details><summary>products</summary>{_partials(s, e.dtype)}</details>" if as_partials else ""
        agrees = x.agrees(rtol, atol)
        verdict = (
            "agree" if all(agrees.values()) else "differ: " + ", ".join(side for side, ok in agrees.items() if not ok)
        )
        cells = [
            f'<td data-label="element">{_group_chip(s.group)}y[{index}]<br><span class="muted">group {s.group}'
            f"</span></td>",
            f'<td data-label="sum" class="sum">{_e(_sum_text(s, e.dtype))}<br><span class="partials">reads input '
            f"{'channel' if len(s.channels) == 1 else 'channels'} {_e(reads)}</span>{partials}</td>",
        ]
        cells += [
            f'<td data-label="{_e(side)}" class="number">'
            f"{'-' if (value := x.values.get(side)) is None else _e(format_number(value, e.dtype))}</td>"
            for side in e.sides
        ]
        cells.append(f'<td data-label="check">{_e(verdict)}</td>')
        rows.append(f'<tr class="g{s.group % len(PALETTE)} tinted">' + "".join(cells) + "</tr>")
    return (
        f'<h3>Output elements as sums</h3><p class="muted">{_e(e.formula)}</p>'
        if e.formula
        else "<h3>Output elements as sums</h3>"
    ) + (
        '<table class="sums stack"><thead><tr>'
        + "".join(f"<th>{_e(h)}</th>" for h in headers)
        + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _cost_line(e: Explanation) -> str:
    cost = e.cost
    assert cost is not None and e.grouping is not None
    if e.grouping.groups == 1:
        return (
            f"<p>Cost: {cost.weights} weights, {cost.multiply_adds} multiply-adds "
            f"({cost.outputs} outputs × {cost.products_per_output} products).</p>"
        )
    return (
        f"<p>Cost: {cost.weights} weights instead of {cost.dense_weights} with groups=1, and {cost.multiply_adds} "
        f"multiply-adds instead of {cost.dense_multiply_adds}: 1/{e.grouping.groups} of each.</p>"
    )


def _pictures(result: CaseResult) -> str:
    try:
        # No case or run fails here, into the note below.
        drawn: list[Picture] = case_pictures(result.case, result.run.tensors)  # type: ignore[arg-type]
    except Exception as exc:  # a picture that cannot be drawn is a note, not a broken report
        return f'<p class="muted">(no pictures: {_e(type(exc).__name__)}: {_e(exc)})</p>'
    figures = [
        f'<figure class="picture" data-picture="{_e(p.name)}">{p.svg}<figcaption>{_e(p.caption)}</figcaption></figure>'
        for p in drawn
    ]
    return '<h3>Pictures</h3><div class="pictures">' + "\n".join(figures) + "</div>"


# ---------------------------------------------------------------------------------------------
# the coverage map


def coverage_section(grid: CoverageGrid) -> ReportSection:
    """What the run's cases cover (conformance/tools/coverage.py): one row per feature axis, each feature
    with its number of cases. A feature no case reaches is information about this selection of
    cases, not a failure: it is listed in a note."""
    errors = f" ({grid.error_cases} of them expect an error)" if grid.error_cases else ""
    parts = [
        f"<p>These {plural(grid.total_cases, 'case')}{errors} exercise {len(grid.cells) - len(grid.empty_cells)} "
        f"of the {len(grid.cells)} features below; the number after each feature counts its cases.</p>"
    ]
    rows = []
    for axis in grid.axes:
        covered = [cell for cell in grid.cells_of(axis) if cell.count]
        items = (
            "".join(f'<li>{html.escape(cell.name)} <span class="count">{cell.count}</span></li>' for cell in covered)
            or '<li class="muted">none in this run</li>'
        )
        rows.append(
            f'<tr><td data-label="axis">{html.escape(axis)}</td><td data-label="features">'
            f'<ul class="features">{items}</ul></td></tr>'
        )
    parts.append(
        '<table class="coverage stack"><thead><tr><th>axis</th><th>features (cases)</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    if grid.empty_cells:
        parts.append(
            '<p class="note" id="coverage-not-exercised">For information: no case in this run exercises '
            + "; ".join(
                f"{html.escape(axis)}: "
                + ", ".join(html.escape(cell.name) for cell in grid.cells_of(axis) if not cell.count)
                for axis in grid.axes
                if any(not cell.count for cell in grid.cells_of(axis))
            )
            + ". A smaller selection of cases covers less; the whole case library (cases/) covers more.</p>"
        )
    return ReportSection("What these cases cover", "\n".join(parts), "coverage")
