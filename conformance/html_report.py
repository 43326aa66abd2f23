"""A static, self-contained HTML report of a run: ``index.html`` plus its pictures in ``images/``.

No scripts, no fonts or styles from elsewhere: it opens from disk, offline. It takes only a list
of :class:`~conformance.runner.CaseResult` (what ``conformance run`` produced) and renders:

* a summary table: status, max error, implementation and torch time of every case;
* one section per case: description, every check (rendered generically from ``Check``), the
  failure report of :mod:`conformance.report` for a failure, the explanation of
  :mod:`conformance.explain` and the pictures of :mod:`conformance.pictures`;
* any extra sections a caller passes in (``extra_sections``: e.g. a coverage map).
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .coverage import CoverageGrid
from .explain import explain_result
from .report import format_failure, summary_line
from .runner import ERROR, FAILED, PASSED, CaseResult, Check

PICTURE_CAPTIONS = {
    "connectivity": "Which input channels each output channel reads, coloured by group.",
    "weights": "The weight as an (output × input) matrix of kernels: block-diagonal with groups, "
               "beside the dense matrix of groups=1.",
    "element": "One output element: the window of each input channel of its group, the kernel value over "
               "each cell (×w) and the product (=p), then their sum.",
}
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 78em;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: 0.7em; overflow-x: auto; font-size: 0.85em; }
.passed { color: #1a7f37; font-weight: 600; }
.failed, .error { color: #c62828; font-weight: 600; }
section.case { border-top: 2px solid #ddd; margin-top: 2em; padding-top: 0.5em; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; max-width: 100%; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; max-width: 40em; }
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


def _unique_slugs(results: Sequence[CaseResult]) -> list[str]:
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


def _error(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def write_html_report(results: Sequence[CaseResult], directory: Path | str, *, title: str = "groups conformance report",
                      pictures: bool = True, extra_sections: Sequence[ReportSection] = ()) -> Path:
    """Write ``directory/index.html`` (and ``directory/images/``); returns the index's path.

    A case whose explanation or pictures cannot be made gets a note in its section instead;
    it never stops the others.
    """
    directory = Path(directory)
    images = directory / "images"
    images.mkdir(parents=True, exist_ok=True)
    slugs = _unique_slugs(results)
    sections = [_case_section(result, case_slug, images, pictures) for result, case_slug in zip(results, slugs)]
    extras = [(section.anchor or f"extra-{slug(section.title)}", section) for section in extra_sections]

    implementations = sorted({r.run.implementation.name for r in results if r.run is not None})
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{_e(title)}</title>",
             f"<style>{STYLE}</style>", "</head>", "<body>", f"<h1>{_e(title)}</h1>",
             f'<p id="verdict">{_e(summary_line(results))}'
             + (f" — implementation under test: {_e(', '.join(implementations))}, oracle: torch" if implementations else "")
             + "</p>"]
    if extras:
        parts.append("<nav><ul>" + "".join(f'<li><a href="#{_e(anchor)}">{_e(s.title)}</a></li>' for anchor, s in extras)
                     + "</ul></nav>")
    parts.append(_summary_table(results, slugs))
    parts.extend(sections)
    for anchor, section in extras:
        parts.append(f'<section class="extra" id="{_e(anchor)}"><h2>{_e(section.title)}</h2>{section.html}</section>')
    parts += ["</body>", "</html>", ""]
    index = directory / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index


def _summary_table(results: Sequence[CaseResult], slugs: Sequence[str]) -> str:
    rows = ['<table id="summary">', "<thead><tr><th>case</th><th>status</th><th>max abs error</th>"
            "<th>max rel error</th><th>implementation time</th><th>torch time</th></tr></thead>", "<tbody>"]
    for result, case_slug in zip(results, slugs):
        run = result.run
        rows.append(f'<tr><td><a href="#case-{case_slug}">{_e(result.name)}</a></td>'
                    f'<td class="{_e(result.status)}">{_e(result.status)}</td>'
                    f'<td class="number">{_e(_error(result.max_abs_error))}</td>'
                    f'<td class="number">{_e(_error(result.max_rel_error))}</td>'
                    f'<td class="number">{_e(_seconds(run.impl.seconds if run else None))}</td>'
                    f'<td class="number">{_e(_seconds(run.torch.seconds if run else None))}</td></tr>')
    rows += ["</tbody>", "</table>"]
    return "\n".join(rows)


def _checks_table(checks: Sequence[Check]) -> str:
    rows = ['<table class="checks"><thead><tr><th>check</th><th>verdict</th><th>summary</th></tr></thead><tbody>']
    for check in checks:
        verdict, css = ("ok", PASSED) if check.passed else ("FAIL", FAILED)
        details = f"<pre>{_e(chr(10).join(check.details))}</pre>" if check.details else ""
        rows.append(f'<tr><td>{_e(check.name)}</td><td class="{css}">{verdict}</td>'
                    f"<td>{_e(check.summary)}{details}</td></tr>")
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _case_section(result: CaseResult, case_slug: str, images: Path, pictures: bool) -> str:
    case = result.case
    where = case.location if case is not None else result.file
    parts = [f'<section class="case" id="case-{case_slug}" data-case="{_e(result.name)}" '
             f'data-status="{_e(result.status)}">',
             f'<h2>{_e(result.name)} <span class="{_e(result.status)}">{_e(result.status)}</span></h2>',
             f"<p><code>{_e(where)}</code></p>"]
    if case is not None and case.description:
        parts.append(f'<p class="description">{_e(case.description)}</p>')
    if result.checks:
        parts.append(_checks_table(result.checks))
    if result.status in (FAILED, ERROR):
        parts.append("<h3>Failure report</h3>")
        parts.append(f'<pre class="failure">{_e(format_failure(result))}</pre>')
    if result.status != ERROR and case is not None:
        try:
            explanation = explain_result(result)
        except Exception as exc:  # noqa: BLE001 - one case's problem must not hide the report
            explanation = f"(no explanation: {type(exc).__name__}: {exc})"
        parts.append("<h3>Explanation</h3>")
        parts.append(f'<pre class="explanation">{_e(explanation)}</pre>')
        parts.append(_pictures(result, case_slug, images) if pictures else "")
    parts.append("</section>")
    return "\n".join(part for part in parts if part)


def _pictures(result: CaseResult, case_slug: str, images: Path) -> str:
    run = result.run
    if run is None or run.torch.output is None or result.case is None or not result.case.conv.is_divisible:
        return ""
    from .pictures import draw_case_pictures  # matplotlib only when pictures are wanted

    try:
        paths = draw_case_pictures(result.case, run.tensors, images, stem=f"{case_slug}-", formats=("png",))
    except Exception as exc:  # noqa: BLE001
        return f"<p>(no pictures: {_e(type(exc).__name__)}: {_e(exc)})</p>"
    figures = ["<h3>Pictures</h3>"]
    for path in paths:
        name = path.stem[len(case_slug) + 1:]
        caption = PICTURE_CAPTIONS.get(name, name)
        figures.append(f'<figure><img src="images/{_e(path.name)}" alt="{_e(result.name)}: {_e(name)}">'
                       f"<figcaption>{_e(caption)}</figcaption></figure>")
    return "\n".join(figures)


def coverage_section(grid: CoverageGrid) -> ReportSection:
    """The coverage map (conformance/coverage.py) as a report section: one table per feature axis,
    the count of cases per cell, empty cells marked."""
    parts = [f"<p>{grid.total_cases} cases ({grid.error_cases} expect an error); "
             f"{len(grid.empty_cells)} of {len(grid.cells)} cells empty.</p>"]
    for axis in grid.axes:
        rows = "".join(
            f"<tr class=\"{'empty' if not cell.count else ''}\"><td>{html.escape(cell.name)}</td>"
            f"<td>{cell.count}{' &larr; empty' if not cell.count else ''}</td></tr>"
            for cell in grid.cells_of(axis))
        parts.append(f"<h3>{html.escape(axis)}</h3><table><tr><th>feature</th><th>cases</th></tr>{rows}</table>")
    return ReportSection("Coverage of the case library", "\n".join(parts), "coverage")
