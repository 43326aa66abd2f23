"""``conformance matrix``: the case library through several implementations, one column each
(default: every built-in framework; an uninstalled one is a column saying how to install it)."""

from __future__ import annotations

import argparse
import html
import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conformance.commands import add_paths_argument, ensure_parent, guarded, select_cases
from conformance.judging.json_numbers import json_text
from conformance.judging.outcomes import ERROR, FAILED, PASSED, SKIPPED, XFAILED, XPASSED
from conformance.tools.matrix import (
    Cell,
    Column,
    Matrix,
    default_implementations,
    exit_status,
    run_matrix,
    safe_file_name,
    write_xfail_file,
    xfail_entries,
)

ABBREVIATIONS = {
    PASSED: "ok",
    "wrong_values": "values",
    "wrong_shape": "shape",
    "wrong_dtype": "dtype",
    "crashed": "CRASH",
    "accepted_invalid": "accepts",
    "refused_valid": "refuses",
    "unsupported": "unsup",
    "adapter_error": "ADAPTER",
    SKIPPED: "skip",
    ERROR: "error",
    XPASSED: "XPASS",
    FAILED: "failed",
}
DEFAULT_XFAIL_DIR = "xfail"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "matrix",
        help="run cases through several implementations (frameworks) side by side",
        description="Every case through each --impl (default: every built-in framework), each in its own worker "
        "process. Exit 0 only if every installed column matches its xfail file "
        "(no unlisted failure, no xpass).",
    )
    add_paths_argument(parser)
    parser.add_argument(
        "--impl",
        action="append",
        metavar="NAME",
        dest="impls",
        help="a built-in name (jax, onnxruntime, ...) or any --impl spec; repeatable (default: every built-in)",
    )
    parser.add_argument("-k", dest="keyword", metavar="SUBSTRING", help="only cases whose name contains SUBSTRING")
    parser.add_argument("--json", metavar="FILE", help="write the matrix as JSON")
    parser.add_argument(
        "--html", metavar="DIR", help="write DIR/index.html: the whole matrix on one page (see --column-reports)"
    )
    parser.add_argument(
        "--column-reports",
        action="store_true",
        help="with --html: also write each implementation's full report (DIR/<impl>/index.html, with "
        "explanations; large for the whole library), and link every cell to its case there",
    )
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML, one testsuite per implementation")
    parser.add_argument(
        "--repro",
        metavar="DIR",
        help="write a repro script per failing cell into DIR/<impl>/ (for a built-in: framework-only, "
        "needing just that framework and NumPy)",
    )
    parser.add_argument(
        "--xfail-dir",
        metavar="DIR",
        default=None,
        help=f"read DIR/<impl>.yaml as each column's xfail file (default: {DEFAULT_XFAIL_DIR}/ when it exists)",
    )
    parser.add_argument(
        "--update-xfail",
        action="store_true",
        help="rewrite each installed column's xfail file (in --xfail-dir) to list exactly its "
        "current failures, keeping the reasons and links of entries still failing",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="seconds one call may take before the worker counts as hung (default 300)",
    )
    parser.add_argument(
        "--extra-checks",
        action="store_true",
        help="also run the extra checks (torch variants, metamorphic relations, wiring probe) "
        "through every implementation: slow for exporters and compilers",
    )
    parser.add_argument("--device", default="cpu", help="where torch, the oracle, runs (default: cpu)")
    parser.add_argument(
        "--show-expected",
        action="store_true",
        help="also print the expected failures (listed in the xfail files) case by case",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--durations",
        type=int,
        metavar="N",
        help="after each column, its N slowest cases (0: all) and its seconds per stage",
    )
    parser.add_argument(
        "--shard",
        metavar="K/N",
        help="run only the K-th of every N columns (a CI job each; join their --json files with --merge)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="run nothing: join the --json files of several --shard runs into one matrix (table, --json); "
        "exit 1 if any shard differed from its xfail files",
    )
    parser.set_defaults(handler=guarded(matrix_command))


def matrix_command(args: argparse.Namespace) -> int:
    if args.merge:
        return merge_command(args)
    items = select_cases(args.paths, args.keyword)
    names = args.impls or default_implementations()
    if args.shard:
        from conformance.tools.matrix_shards import shard_columns

        names = shard_columns(names, args.shard)
    xfail_dir = (
        Path(args.xfail_dir)
        if args.xfail_dir
        else (Path(DEFAULT_XFAIL_DIR) if Path(DEFAULT_XFAIL_DIR).is_dir() else None)
    )
    suites: list[ET.Element] = []

    def on_cell(name: str, case: str, cell: Cell) -> None:
        if not args.quiet:  # one mark per case, so a long column shows progress: . passed, x otherwise
            print("." if cell.status in (PASSED, SKIPPED, XFAILED) else "x", end="", flush=True)

    def on_column(column: Column, results: list[Any]) -> None:
        if not args.quiet:
            print(
                f"\n{column.name}: {len(results)} cases in {column.seconds:.1f} s"
                + (f", {column.restarts} worker restarts" if column.restarts else ""),
                flush=True,
            )
        if args.durations is not None:
            from conformance.reporting.durations import slowest_lines, totals_line

            print("\n".join([*slowest_lines(results, args.durations), totals_line(results)]), flush=True)
        if args.junit:
            from conformance.reporting.junit import junit_tree

            root = junit_tree(
                results,
                suite_name=column.name,
                properties={"version": column.version, "note": column.note, **column.environment},
            ).getroot()
            assert root is not None  # (narrowing: junit_tree builds a root)
            suites.extend(root)
        if args.html and args.column_reports:
            from conformance.reporting.html import write_html_report

            write_html_report(
                results,
                Path(args.html) / safe_file_name(column.name),
                title=f"{column.name}: groups conformance",
                pictures=False,
            )

    if not args.quiet:
        print(f"matrix: {len(items)} cases x {len(names)} implementations", flush=True)
    matrix = run_matrix(
        items,
        names,
        device=args.device,
        timeout=args.timeout,
        xfail_dir=xfail_dir,
        extra_checks=args.extra_checks,
        on_cell=on_cell,
        on_column=on_column,
        on_failure=repro_writer(Path(args.repro)) if args.repro else None,
    )
    print(format_table(matrix))
    print(format_verdicts(matrix, show_expected=args.show_expected))
    if args.json:
        ensure_parent(args.json).write_text(json_text(matrix.to_json(), indent=1))
    if args.junit:
        root = ET.Element("testsuites")
        root.extend(suites)
        tree = ET.ElementTree(root)
        ET.indent(tree)
        tree.write(ensure_parent(args.junit), encoding="utf-8", xml_declaration=True)
    if args.html:
        print(f"HTML matrix: {write_html(matrix, Path(args.html), column_reports=args.column_reports)}")
    if args.update_xfail:
        update_xfail_files(matrix, xfail_dir or Path(DEFAULT_XFAIL_DIR))
        return 0
    changes = matrix.changes()
    if changes:
        print(
            f"{len(changes)} cells differ from the xfail files"
            + (f" in {xfail_dir}/" if xfail_dir else "")
            + " (a new failure or an xpass):",
            file=sys.stderr,
        )
        for line in changes:
            print(f"  {line}", file=sys.stderr)
    return exit_status(matrix)


def merge_command(args: argparse.Namespace) -> int:
    """``--merge``: the shards' JSON files as one matrix (docs/ci.md)."""
    from conformance.tools.matrix_shards import merge_matrix_files, merged_json

    try:
        matrix, changes = merge_matrix_files(args.merge)
    except ValueError as exc:
        print(f"conformance matrix --merge: {exc}", file=sys.stderr)
        return 2
    print(format_table(matrix))
    if args.json:
        ensure_parent(args.json).write_text(json.dumps(merged_json(matrix, changes), indent=1))
    if args.html:  # the merged page, as one run writes it
        print(f"HTML matrix: {write_html(matrix, Path(args.html))}")
    for line in changes:
        print(f"  {line}", file=sys.stderr)
    return 1 if changes else 0


def update_xfail_files(matrix: Matrix, directory: Path) -> None:
    import yaml

    from conformance.judging.xfail import load_xfail_files

    for column in matrix.columns:
        if not column.installed:
            continue
        path = directory / f"{safe_file_name(column.name)}.yaml"
        keep = {}
        by_feature: list[dict[str, Any]] = []
        if path.is_file():
            keep = {
                entry.case: {"case": entry.case, "reason": entry.reason, "link": entry.link}
                for entry in load_xfail_files([path]).entries
                if entry.case is not None
            }
            # A feature entry (op:, dtype:, when:, ...) is written by hand: it stays as written, first.
            by_feature = [
                entry for entry in yaml.safe_load(path.read_text(encoding="utf-8")) or [] if "case" not in entry
            ]
        entries = by_feature + xfail_entries(matrix, column.name, keep)
        write_xfail_file(path, column.name, entries)
        print(f"{path}: {len(entries)} expected failures")


# -- text -----------------------------------------------------------------------------------------
def cell_counts_text(counts: dict[str, int]) -> str:
    """'12 ok 2 values 1 xf' from {outcome: count}.

    >>> cell_counts_text({"passed": 12, "wrong_values": 2, "xfail:crashed": 1})
    '12 ok 2 values 1 xf'
    """
    parts = []
    for outcome, count in sorted(
        counts.items(), key=lambda item: (item[0] != PASSED, item[0].startswith("xfail"), item[0])
    ):
        parts.append(f"{count} {'xf' if outcome.startswith('xfail') else ABBREVIATIONS.get(outcome, outcome)}")
    merged: dict[str, int] = {}
    for part in parts:  # several xfail kinds add up to one 'xf' count
        number, label = part.split(" ", 1)
        merged[label] = merged.get(label, 0) + int(number)
    return " ".join(f"{count} {label}" for label, count in merged.items()) or "-"


def format_table(matrix: Matrix) -> str:
    table = matrix.table()
    names = [column.name for column in matrix.columns]
    header = ["cases"] + names
    rows = [header]
    for group, by_impl in table.items():
        rows.append(
            [group]
            + [
                cell_counts_text(by_impl[name]) if column.installed else "not run"
                for name, column in zip(names, matrix.columns, strict=False)
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=False)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append("")
    lines.append(
        "ok=passed values/shape/dtype=wrong_* CRASH=crashed accepts=accepted_invalid refuses=refused_valid "
        "unsup=unsupported xf=expected failure (xfail file) XPASS=listed but passed"
    )
    for column in matrix.columns:
        install = f"; install: {column.install_command}" if column.install_command else ""
        state = (column.version or "-") if column.installed else f"NOT RUN ({column.note}){install}"
        lines.append(f"  {column.name}: {state}" + (f" [{column.note}]" if column.installed and column.note else ""))
        if column.unused_xfail:
            lines.append(
                f"    {len(column.unused_xfail)} entries of {column.xfail_file} matched no case of this run "
                f"(first: {column.unused_xfail[0]})"
            )
    return "\n".join(lines)


def format_verdicts(matrix: Matrix, *, show_expected: bool = False) -> str:
    """Every cell that is not a pass (an uninstalled column's cells left out), case by case; the
    expected failures (listed in an xfail file) only counted unless ``show_expected`` — the JSON
    and HTML outputs have every cell."""
    installed = {column.name for column in matrix.columns if column.installed}
    lines = ["", "per-case verdicts (not passed):"]
    expected = 0
    for row in matrix.rows:
        for name, cell in row.results.items():
            if name not in installed or cell.status in (PASSED, SKIPPED):
                continue
            if cell.status == XFAILED and not show_expected:
                expected += 1
                continue
            first = cell.message.splitlines()[0] if cell.message else ""
            lines.append(f"  {row.name} | {name}: {cell.status}{f' [{cell.kind}]' if cell.kind else ''} {first[:160]}")
    if expected:
        lines.append(
            f"  ... and {expected} expected failures, as listed in the xfail files (--show-expected, "
            "--json or --html show them)"
        )
    return "\n".join(lines)


# -- HTML -----------------------------------------------------------------------------------------
# What a cell shows, its colour class and what it means: the page's legend (one place for the words).
LEGEND = (
    ("ok", "p", "passed: agrees with torch within the error bound (or refuses a layer torch refuses)"),
    ("values / shape / dtype", "f", "wrong_values / wrong_shape / wrong_dtype: the output differs from torch's"),
    ("CRASH", "f", "crashed: died, hung, or raised from inside its numerics instead of refusing"),
    ("accepts", "f", "accepted_invalid: computed an output for a layer torch refuses"),
    ("refuses", "f", "refused_valid: deliberately refused a layer torch computes"),
    ("unsup", "f", "unsupported: the framework has no way to express this layer"),
    ("ADAPTER", "f", "adapter_error: the adapter's own translation code failed (our bug, not the framework's)"),
    ("xf:<kind>", "x", "expected failure: listed in the column's xfail file (a known finding), failing as listed"),
    ("fixed upstream?", "u", "xpassed: listed in the xfail file, but it passes now; unpin it after checking"),
    ("skip", "s", "skipped: the case needs an op or a check this implementation does not offer"),
    ("error", "f", "the case itself is broken (both sides refuse a layer not marked expect_error, ...)"),
)
_CLASS = {PASSED: "p", FAILED: "f", ERROR: "f", XFAILED: "x", XPASSED: "u", SKIPPED: "s"}
_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:110em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.2em .4em;font-size:.85em;vertical-align:top}th{background:#f3f3f3;text-align:left}
.p{background:#e6f4e6}.f{background:#fbe3e3}.x{background:#fff4d6}.u{background:#dde8fb}.s,.n{background:#eee;color:#666}
#cases td{cursor:help;white-space:nowrap}a{color:inherit}code{font-size:.95em}
#tip{position:sticky;bottom:0;background:#222;color:#fff;padding:.5em;font-size:.9em;white-space:pre-wrap;min-height:1.2em}"""
# Hover (or tap, on a phone) a cell: its one-line message, from the page's shared list, in the bar below.
_SCRIPT = """const M=JSON.parse(document.getElementById('messages').textContent);
const tip=document.getElementById('tip');
function show(e){const c=e.target.closest('td[data-m]');if(c){tip.textContent=M[+c.dataset.m];}}
document.getElementById('cases').addEventListener('mouseover',show);
document.getElementById('cases').addEventListener('click',show);"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def cell_label(cell: Cell) -> str:
    """What a cell of the cases table shows.

    >>> cell_label(Cell("xpassed")), cell_label(Cell("xfailed", "crashed")), cell_label(Cell("failed", "wrong_shape"))
    ('fixed upstream?', 'xf:CRASH', 'shape')
    """
    if cell.status == XPASSED:
        return "fixed upstream?"
    if cell.status == XFAILED:
        return "xf:" + ABBREVIATIONS.get(cell.kind or FAILED, cell.kind or FAILED)
    if cell.status == FAILED:
        return ABBREVIATIONS.get(cell.kind or FAILED, cell.kind or FAILED)
    return ABBREVIATIONS.get(cell.status, cell.status)


def write_html(matrix: Matrix, directory: Path, *, column_reports: bool = False) -> Path:
    """DIR/index.html, one self-contained page: the environment facts, a legend, the pins that depend
    on the processor, the counts, then every case's verdict per column (hover or tap a cell for its
    one-line message; messages that repeat are stored once). With ``column_reports``, each cell also
    links to that case's section in the implementation's own report (DIR/<impl>/index.html)."""
    from conformance.reporting.html import unique_slugs

    directory.mkdir(parents=True, exist_ok=True)
    installed = {column.name: column.installed for column in matrix.columns}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' "
        "content='width=device-width, initial-scale=1'><title>conformance matrix</title>"
        f"<style>{_STYLE}</style></head><body><h1>Conformance matrix</h1>"
    ]
    parts.append("<h2>Environment</h2><p>What the verdicts were measured with. Each column pins the settings that ")
    parts.append("change its framework's code path; its own facts are in its row below.</p><table>")
    parts.extend(f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>" for key, value in matrix.settings.items())
    # Facts every column shares (the process's: processor, versions, threads) are shown once, here;
    # a column's row keeps what is its own (its framework's pinned and resolved settings).
    environments = [column.environment for column in matrix.columns if column.installed]
    shared = dict(set.intersection(*(set(env.items()) for env in environments))) if len(environments) > 1 else {}
    parts.extend(
        f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>"
        for key, value in sorted(shared.items())
        if key not in matrix.settings
    )
    parts.append("</table><h2>Implementations</h2><table><tr><th>name</th><th>version</th><th>settings and facts</th>")
    parts.append("<th>note</th></tr>")
    for column in matrix.columns:
        note = (
            _e(column.note)
            if column.installed
            else f"{_e(column.note)}. Install: <code>{_e(column.install_command)}</code>"
        )
        facts = "<br>".join(
            f"{_e(key)}={_e(value)}" for key, value in column.environment.items() if shared.get(key) != value
        )
        parts.append(f"<tr><th>{_e(column.name)}</th><td>{_e(column.version)}</td><td>{facts}</td><td>{note}</td></tr>")
    parts.append("</table><h2>Legend</h2><table>")
    parts.extend(f"<tr><td class='{css}'>{_e(label)}</td><td>{_e(meaning)}</td></tr>" for label, css, meaning in LEGEND)
    parts.append("</table>")
    parts.append(_processor_dependent_html(matrix))
    parts.append(
        "<h2>Counts</h2><table><tr><th>cases</th>" + "".join(f"<th>{_e(c.name)}</th>" for c in matrix.columns) + "</tr>"
    )
    for group, by_impl in matrix.table().items():
        parts.append(
            f"<tr><th>{_e(group)}</th>"
            + "".join(
                f"<td>{_e(cell_counts_text(by_impl[c.name]))}</td>" if c.installed else "<td class='n'>not run</td>"
                for c in matrix.columns
            )
            + "</tr>"
        )
    parts.append(
        "</table><h2>Cases</h2><p>Hover or tap a cell for its message.</p><table id='cases'><tr><th>case</th>"
        + "".join(f"<th>{_e(c.name)}</th>" for c in matrix.columns)
        + "</tr>"
    )
    messages: dict[str, int] = {}
    for row, case_slug in zip(matrix.rows, unique_slugs(matrix.rows), strict=False):
        cells = []
        for column in matrix.columns:
            cell: Cell | None = row.results.get(column.name)
            if cell is None or not installed[column.name]:
                cells.append("<td class='n'></td>")
                continue
            first = cell.message.splitlines()[0] if cell.message else cell.status
            index = messages.setdefault(first, len(messages))
            label = _e(cell_label(cell))
            if column_reports:
                label = f"<a href='{_e(safe_file_name(column.name))}/index.html#case-{_e(case_slug)}'>{label}</a>"
            cells.append(f"<td class='{_CLASS.get(cell.status, 'f')}' data-m='{index}'>{label}</td>")
        parts.append(f"<tr><th id='row-{_e(case_slug)}'>{_e(row.name)}</th>{''.join(cells)}</tr>")
    parts.append("</table>")
    changes = matrix.changes()
    parts.append(
        f"<h2>Changes against the xfail files</h2><p>{len(changes)} cells</p><ul>"
        + "".join(f"<li>{_e(line)}</li>" for line in changes)
        + "</ul><div id='tip'></div>"
    )
    listed = json.dumps(list(messages), ensure_ascii=False).replace("</", "<\\/")
    parts.append(f"<script type='application/json' id='messages'>{listed}</script><script>{_SCRIPT}</script>")
    parts.append("</body></html>")
    path = directory / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _processor_dependent_html(matrix: Matrix) -> str:
    """The cases whose verdict differs between a column and its counterpart (oneDNN on/off, bf16/f32):
    the pins that would change if the processor's default picked the other path."""
    found = matrix.processor_dependent()
    head = (
        "<h2>Pins that depend on the processor</h2><p>These verdicts differ between a column and its "
        "counterpart on the other code path (each column pins its path, so the verdicts are the same on "
        "every machine; without the pin, the processor's default would pick one of them)."
    )
    if not found:
        return head + " None in this run (or no column ran with its counterpart).</p>"
    rows = "".join(
        f"<tr><td>{_e(item['column'])}</td><td>{_e(item['case'])}</td><td>{_e(item['outcome'])}</td>"
        f"<td>{_e(item['counterpart'])}: {_e(item['counterpart_outcome'])}</td></tr>"
        for item in found
    )
    return f"{head}</p><table><tr><th>column</th><th>case</th><th>here</th><th>counterpart</th></tr>{rows}</table>"


__all__ = ["register", "matrix_command", "format_table", "format_verdicts", "write_html"]


def repro_writer(directory: Path) -> Callable[[str, Any, Any], None]:
    """``--repro DIR``: a repro script per failing cell in ``DIR/<column>/`` (framework-only for a
    built-in: conformance/reporting/framework_repro.py). One that cannot be written is a note on the
    result; the run goes on."""
    from conformance.reporting.repro import write_repro

    def write(column: str, result: Any, implementation: Any) -> None:
        try:
            write_repro(
                result, implementation, directory / safe_file_name(column), ["--impl", str(implementation.spec)]
            )
        except Exception as exc:  # noqa: BLE001 - a repro is a convenience; the verdict stands without it
            result.notes.append(f"repro: not written ({type(exc).__name__}: {exc})")

    return write
