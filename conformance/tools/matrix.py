"""The conformance matrix: every case through several implementations, one column each.

Each implementation runs in its own worker process (conformance/running/isolation.py), so a framework
that aborts, segfaults or hangs on one case gives that cell kind ``crashed`` and the run goes on.
A built-in that is not installed is a column that says so, with its install command; an
implementation that cannot be loaded is a column saying why. Each column's verdicts are judged
against its xfail file (``xfail/<name>.yaml`` when present): a listed failure is ``xfailed``, a
listed pass ``xpassed``. The matrix has *changed* — and ``conformance matrix`` exits 1 — when any
installed column has a failure not listed (a new failure), an xpass (upstream fixed something), or
a broken case.

JSON (``Matrix.to_json``)::

    {"implementations": [{"name", "version", "environment": {"<fact>": "<value>"}, "installed", "note", ...}],
     "cases": [{"name", "file", "results": {"<impl>": {"status", "kind", "message", "max_abs_error"}}}],
     "settings": {..., "cpu.vendor", "cpu.avx2", "cpu.avx512f", ...},
     "table": {"<folder or #tag>": {"<impl>": {"<outcome>": count}}},
     "changes": [...], "processor_dependent": [{"column", "counterpart", "case", "outcome", ...}]}

Each column's ``environment`` holds what its adapter pinned and resolved (``tensorflow.onednn``,
``openvino.inference_precision``); ``settings`` the machine's facts. A built-in with a
``counterpart`` (the same op on the other code path: oneDNN off, f32) shows which verdicts would
depend on the processor if the path were left to its default (:meth:`Matrix.processor_dependent`).
"""

from __future__ import annotations

import fnmatch
import platform
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.cases.errors import CaseError
from conformance.judging.environment import cpu_facts
from conformance.judging.json_numbers import json_float
from conformance.judging.outcomes import (
    ADAPTER_ERROR,
    ERROR,
    FAILED,
    PASSED,
    SKIPPED,
    UNSUPPORTED,
    XFAILED,
    XPASSED,
)
from conformance.judging.verdict import stage_totals


@dataclass
class Column:
    """One implementation of the matrix: a built-in name or any ``--impl`` spec."""

    name: str
    installed: bool = True
    version: str = ""
    note: str = ""  # why it did not run, or its settings (precision, device)
    install_command: str = ""
    xfail_file: str = ""
    restarts: int = 0  # workers restarted after a crash or hang
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # where the cases' time went, per stage
    unused_xfail: list[str] = field(default_factory=list)  # entries of its xfail file matching no case run
    load_error: str = ""  # installed, but its adapter failed to load: a change, never "not installed"
    environment: dict[str, str] = field(default_factory=dict)  # its pinned settings and resolved facts

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "environment": self.environment,
            "installed": self.installed,
            "note": self.note,
            "install_command": self.install_command,
            "xfail_file": self.xfail_file or None,
            "worker_restarts": self.restarts,
            "seconds": round(self.seconds, 3),
            "seconds_per_stage": {stage: round(value, 3) for stage, value in self.stage_seconds.items()},
            "unused_xfail_entries": self.unused_xfail,
        }


@dataclass
class Cell:
    """One case through one implementation."""

    status: str
    kind: str | None = None
    message: str = ""
    max_abs_error: float | None = None
    pinned_kind: str | None = None  # xfailed: the kind its xfail entry pins (None: the entry names none)
    seconds: float | None = None  # the case's run through this column (None: it did not run)

    @property
    def kind_changed(self) -> bool:
        """An expected failure that now fails another way (a refusal turned crash, say)."""
        return self.status == XFAILED and self.pinned_kind is not None and self.pinned_kind != self.kind

    @property
    def outcome(self) -> str:
        """What the table counts: the failure's kind, 'xfail:<kind>' for an expected one, else the status."""
        if self.status == FAILED:
            return self.kind or FAILED
        if self.status == XFAILED:
            return f"xfail:{self.kind or 'failed'}"
        return self.status

    def to_json(self) -> dict[str, Any]:
        error = self.max_abs_error
        return {
            "status": self.status,
            "kind": self.kind,
            "message": self.message,
            "max_abs_error": json_float(error),
            "seconds": json_float(None if self.seconds is None else round(self.seconds, 4)),
        }


@dataclass
class Row:
    name: str
    file: str
    tags: tuple[str, ...] = ()
    results: dict[str, Cell] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        return self.name.split("/", 1)[0] if "/" in self.name else "(top)"


@dataclass
class Matrix:
    columns: list[Column]
    rows: list[Row]
    settings: dict[str, Any] = field(default_factory=dict)

    def groups(self) -> list[str]:
        """The table's rows: each case folder, then each tag as '#tag'."""
        folders = sorted({row.folder for row in self.rows})
        tags = sorted({f"#{tag}" for row in self.rows for tag in row.tags})
        return folders + tags

    def table(self) -> dict[str, dict[str, dict[str, int]]]:
        """{group: {implementation: {outcome: count}}}."""
        table: dict[str, dict[str, Counter]] = {
            group: {c.name: Counter() for c in self.columns} for group in self.groups()
        }
        for row in self.rows:
            for column in self.columns:
                cell = row.results.get(column.name)
                if cell is None:
                    continue
                table[row.folder][column.name][cell.outcome] += 1
                for tag in row.tags:
                    table[f"#{tag}"][column.name][cell.outcome] += 1
        return {
            group: {name: dict(sorted(counts.items())) for name, counts in by_impl.items()}
            for group, by_impl in table.items()
        }

    def changes(self) -> list[str]:
        """What makes the matrix differ from its xfail files: 'impl: case: status/kind' per cell."""
        found = []
        for column in self.columns:
            if column.load_error:  # an installed framework that no longer loads is the biggest change of all
                found.append(f"{column.name}: {column.load_error}")
            if not column.installed:
                continue
            for row in self.rows:
                cell = row.results.get(column.name)
                if cell is not None and cell.status in (FAILED, ERROR, XPASSED):
                    found.append(f"{column.name}: {row.name}: {cell.status}" + (f" [{cell.kind}]" if cell.kind else ""))
                elif cell is not None and cell.kind_changed:
                    found.append(f"{column.name}: {row.name}: xfailed as {cell.pinned_kind}, but now {cell.kind}")
        return found

    def processor_dependent(self) -> list[dict[str, str]]:
        """The verdicts that depend on the processor: cases whose outcome differs between a built-in
        and its counterpart (the same op on the code path another processor picks by default:
        oneDNN on/off, bf16/f32), both run here. Each: column, counterpart, case, and both outcomes."""
        from conformance.frameworks import BUILTINS, builtin

        ran = {column.name for column in self.columns if column.installed}
        found = []
        for name in [column.name for column in self.columns]:
            other = builtin(name).counterpart if name in BUILTINS else ""
            if not other or name not in ran or other not in ran:
                continue
            for row in self.rows:
                mine, theirs = row.results.get(name), row.results.get(other)
                if mine is None or theirs is None:
                    continue
                if _verdict(mine) != _verdict(theirs):
                    found.append(
                        {
                            "column": name,
                            "counterpart": other,
                            "case": row.name,
                            "outcome": _verdict(mine),
                            "counterpart_outcome": _verdict(theirs),
                        }
                    )
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "implementations": [column.to_json() for column in self.columns],
            "cases": [
                {
                    "name": row.name,
                    "file": row.file,
                    "tags": list(row.tags),
                    "results": {name: cell.to_json() for name, cell in row.results.items()},
                }
                for row in self.rows
            ],
            "settings": self.settings,
            "table": self.table(),
            "changes": self.changes(),
            "processor_dependent": self.processor_dependent(),
        }


def _verdict(cell: Cell) -> str:
    """A cell's outcome with the xfail bookkeeping left out: passed, or the failure's kind."""
    if cell.status in (PASSED, XPASSED):
        return PASSED
    return cell.kind or cell.status


# -- running it --------------------------------------------------------------------------------------
Loader = Callable[..., Any]  # (spec, **options) -> an implementation (isolated or not)


def default_implementations() -> list[str]:
    """Every built-in, installed or not (an uninstalled one is a column that says so)."""
    from conformance.frameworks import BUILTINS

    return list(BUILTINS)


def column_for(name: str, xfail_dir: Path | None) -> Column:
    """The column of ``name`` before it runs: installed? which xfail file?"""
    from conformance.frameworks import BUILTINS, builtin, status

    column = Column(name)
    if name in BUILTINS:
        available = status(name)
        column.installed, column.install_command = available.installed, available.install_command
        column.note = builtin(name).summary if available.installed else available.reason
    if xfail_dir is not None:
        candidate = xfail_dir / f"{safe_file_name(name)}.yaml"
        if candidate.is_file():
            column.xfail_file = str(candidate)
    return column


def safe_file_name(name: str) -> str:
    """An implementation's name as a file name (a spec may hold '/' or ':').

    >>> safe_file_name("jax"), safe_file_name("mypkg.conv:conv2d")
    ('jax', 'mypkg.conv_conv2d')
    """
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def run_matrix(
    items: Sequence[Any],
    names: Sequence[str],
    *,
    device: str = "cpu",
    timeout: float = 300.0,
    xfail_dir: Path | None = None,
    loader: Loader | None = None,
    extra_checks: bool = False,
    on_cell: Callable[[str, str, Cell], None] | None = None,
    on_column: Callable[[Column, list[Any]], None] | None = None,
    on_failure: Callable[[str, Any, Any], None] | None = None,
) -> Matrix:
    """Run every case of ``items`` (cases, or CaseErrors for broken files) through each of ``names``.

    ``loader(spec, timeout=...)`` makes an implementation; default: an isolated worker per column.
    ``on_cell(impl, case, cell)`` after each case; ``on_column(column, case_results)`` after each
    column that ran, with its full CaseResults (for reports), which are not kept afterwards.
    ``extra_checks``: also run the registered extra checks (torch variants, metamorphic relations,
    the wiring probe); off by default: they call the implementation again up to once per group,
    which for an exporter means one export per call, and the matrix's question is the forward
    against torch. ``on_failure(impl, result, implementation)`` for each failing cell, expected or not
    (``conformance matrix --repro`` writes a repro script there)."""
    from conformance.running.checks import DEFAULT_CHECKS
    from conformance.running.runner import CaseRunner, error_result

    def run_case(case: Any, implementation: Any, device: str) -> Any:
        runner = runners.get(id(implementation))
        if runner is None:  # one runner per column: its warm-ups are paid once
            runner = runners[id(implementation)] = CaseRunner(
                implementation, device, checks=DEFAULT_CHECKS if extra_checks else ()
            )
        return runner.run(case)

    runners: dict[int, CaseRunner] = {}
    return _run_columns(
        items,
        names,
        device,
        timeout,
        xfail_dir,
        loader,
        on_cell,
        on_column,
        extra_checks,
        error_result,
        run_case,
        on_failure,
    )


def _run_columns(
    items: Sequence[Any],
    names: Sequence[str],
    device: str,
    timeout: float,
    xfail_dir: Path | None,
    loader: Loader | None,
    on_cell: Any,
    on_column: Any,
    extra_checks: bool,
    error_result: Any,
    run_case: Any,
    on_failure: Callable[[str, Any, Any], None] | None = None,
) -> Matrix:
    if loader is None:
        from conformance.running.isolation import IsolatedImplementation

        loader = IsolatedImplementation
    rows = [Row(_item_name(item), str(item.file), tuple(getattr(item, "tags", ()) or ())) for item in items]
    columns = []
    for name in names:
        column = column_for(name, xfail_dir)
        columns.append(column)
        if not column.installed:
            for row in rows:
                row.results[name] = Cell(SKIPPED, message=f"{column.note}; install: {column.install_command}")
            continue
        start = time.perf_counter()
        try:
            implementation = loader(name, timeout=timeout)
        except Exception as exc:  # a column that cannot load says why; the others run
            column.installed, column.note = False, f"could not load: {type(exc).__name__}: {exc}"
            column.load_error = column.note
            for row in rows:
                row.results[name] = Cell(ERROR, message=column.note)
            continue
        column.version = _version(implementation, name)
        column.environment = column_environment(implementation)
        xfails = _xfails(column.xfail_file)
        if xfails is not None:
            xfails.facts = column.environment  # when: conditions hold on this column's own facts
        results = []
        try:
            for item, row in zip(items, rows, strict=False):
                result = error_result(item) if isinstance(item, CaseError) else run_case(item, implementation, device)
                if xfails is not None:
                    xfails.apply(result)
                if on_failure is not None and result.status in (FAILED, XFAILED):
                    on_failure(name, result, implementation)
                results.append(result)
                pinned = xfails.matching(result.name)[0].pinned_kind if result.status == XFAILED and xfails else None
                message = _first_lines(result.message)
                cell = Cell(result.status, result.kind, message, result.max_abs_error, pinned, result.seconds)
                row.results[name] = cell
                if on_cell is not None:
                    on_cell(name, row.name, cell)
        finally:
            column.restarts = getattr(implementation, "restarts", 0)
            close = getattr(implementation, "close", None)
            if close is not None:
                close()
        column.seconds = time.perf_counter() - start
        column.stage_seconds = stage_totals(results)
        if xfails is not None:  # stale or mistyped entries show up (informational: a subset run leaves many)
            column.unused_xfail = [entry.label for entry in xfails.unused(results)]
        if on_column is not None:
            on_column(column, results)
    recorded = settings(device, timeout)
    recorded["checks"] = "forward, golden, refusal, backward" + (
        " + extra checks" if extra_checks else " (no extra checks)"
    )
    return Matrix(columns, rows, recorded)


def settings(device: str, timeout: float) -> dict[str, Any]:
    """What the matrix was measured with: the oracle, the device, precision, the machine."""
    import numpy
    import torch

    recorded: dict[str, Any] = {
        "oracle": f"torch {torch.__version__}",
        "device": device,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "timeout_s": timeout,
        "precision": "each case's dtype; openvino pins f32, openvino-bf16 pins bf16; tensorflow, "
        "tensorflow-depthwise and keras pin oneDNN on, tensorflow-no-onednn off; jax: x64 on, precision HIGHEST "
        "(each column's environment lists what it pinned and resolved)",
        **cpu_facts(),
    }
    try:
        from conformance.cases.library import library_version

        recorded["library_version"] = library_version()
    except Exception:  # older checkouts have no versioned library
        pass
    return recorded


def column_environment(implementation: Any) -> dict[str, str]:
    """The facts that change this column's answers: the process facts (processor, versions, threads)
    and its adapter's ``environment()`` (the settings it pinned, the ones it resolved)."""
    from conformance.judging.environment import environment_facts

    return environment_facts(implementation)


def _version(implementation: Any, name: str) -> str:
    from conformance.frameworks import BUILTINS

    module = BUILTINS.get(name)
    if module is None:
        return ""
    try:
        call = getattr(implementation, "call_function", None)
        if call is not None:
            return str(call(module, "version"))
        import importlib

        return str(importlib.import_module(module).version())
    except Exception as exc:  # noqa: BLE001 - a version we cannot read is recorded as such
        return f"unknown ({type(exc).__name__}: {exc})"


def _xfails(path: str) -> Any:
    if not path:
        return None
    from conformance.judging.xfail import load_xfail_files

    return load_xfail_files([path])


def _item_name(item: Any) -> str:
    if isinstance(item, CaseError):
        return item.case_name or str(item.file)
    return item.name


def _first_lines(message: str, limit: int = 6) -> str:
    lines = message.splitlines()
    return "\n".join(lines[:limit]) + ("\n..." if len(lines) > limit else "")


def exit_status(matrix: Matrix) -> int:
    """0 when every installed column matches its xfail file, else 1."""
    return 1 if matrix.changes() else 0


__all__ = [
    "Cell",
    "Column",
    "Matrix",
    "Row",
    "run_matrix",
    "exit_status",
    "default_implementations",
    "column_for",
    "PASSED",
]


# -- pinning the current state: xfail/<impl>.yaml -----------------------------------------------------
_TRACKER = re.compile(r"\b([\w.-]+/[\w.-]+)#(\d+)")


def tracker_link(case_file: str, repositories: Sequence[str] | None = None) -> str | None:
    """The first tracker ``owner/repo#N`` a framework case's file cites in its leading comment
    ('# Tracker: ...'), as a GitHub issue link; with ``repositories``, the first one in those
    repositories only (a column's trackers: a TensorFlow issue is no finding of JAX).

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "c.yaml")
    >>> _ = open(path, "w").write("# Tracker: microsoft/onnxruntime#20582 (and tensorflow/tensorflow#1)\\nname: x\\n")
    >>> tracker_link(path)
    'https://github.com/microsoft/onnxruntime/issues/20582'
    >>> tracker_link(path, ["tensorflow/tensorflow"]), tracker_link(path, ["jax-ml/jax"])
    ('https://github.com/tensorflow/tensorflow/issues/1', None)
    """
    try:
        text = Path(case_file).read_text(encoding="utf-8")
    except OSError:
        return None
    comment = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        comment.append(line)
    if not any("Tracker:" in line for line in comment):
        return None
    for owner_repo, number in _TRACKER.findall("\n".join(comment)):
        if repositories is None or owner_repo in repositories:
            return f"https://github.com/{owner_repo}/issues/{number}"
    return None


def column_trackers(name: str) -> tuple[str, ...] | None:
    """The repositories whose issues may be pinned for column ``name`` (a built-in's ``trackers``);
    None for a plug-in, whose trackers nobody declared: then no case's link is pinned for it."""
    from conformance.frameworks import BUILTINS, builtin

    return builtin(name).trackers if name in BUILTINS else None


def link_belongs(link: str, trackers: Sequence[str] | None) -> bool:
    """Whether ``link`` points into one of ``trackers`` (a hand-written link to elsewhere — a
    forum, a PR of another project — stays only on a plug-in's column, which declares none).

    >>> link_belongs("https://github.com/tensorflow/tensorflow/issues/57128", ("jax-ml/jax",))
    False
    """
    if trackers is None:
        return True
    found = re.match(r"https://github\.com/([\w.-]+/[\w.-]+)/", link)
    return found is not None and found.group(1) in trackers


def xfail_entries(
    matrix: Matrix, name: str, keep: dict[str, dict[str, str | None]] | None = None
) -> list[dict[str, str]]:
    """One entry per case that does not pass in column ``name``: the reason and link already in
    ``keep`` (case -> entry) when the case is still listed, else '<kind>: <the message's first line>'
    and the tracker its case file cites for this column's framework (never another framework's: a
    link belongs to the column it was found in; none on an ``unsupported`` cell). An
    ``adapter_error`` is the adapter's bug, never a framework finding: it is not pinned (it stays a
    change until the adapter is fixed)."""
    keep = keep or {}
    trackers = column_trackers(name)
    entries = []
    for row in matrix.rows:
        cell = row.results.get(name)
        if cell is None or cell.status not in (FAILED, XFAILED) or cell.kind == ADAPTER_ERROR:
            continue
        old = keep.get(row.name)
        if old is not None and not cell.kind_changed:
            entries.append(_kept(old, trackers if cell.kind != UNSUPPORTED else ()))
            continue
        first = cell.message.splitlines()[0] if cell.message else ""
        first = re.sub(r"^expected failure: .*?\]: ", "", first)  # an xfailed message quotes its old entry
        entry = {"case": row.name, "reason": f"{cell.kind or cell.status}: {first}"[:300]}
        # a case's tracker is about what the framework does with the layer: no link on a layer the
        # adapter cannot express at all (unsupported), where that behaviour never happened
        framework_case = "/frameworks/" in row.file.replace("\\", "/") and cell.kind != UNSUPPORTED
        link = tracker_link(row.file, trackers or ()) if framework_case else None
        if link:
            entry["link"] = link
        entries.append(entry)
    # A run over part of the library (a PATH, -k) says nothing about the cases it did not run: their
    # entries stay, so `--update-xfail` on a subset never unpins the rest.
    ran = [row.name for row in matrix.rows]
    for case, old in keep.items():
        if not any(row_name == case or fnmatch.fnmatchcase(row_name, case) for row_name in ran):
            entries.append(_kept(old, trackers))
    return entries


def _kept(old: dict[str, str | None], trackers: Sequence[str] | None) -> dict[str, str]:
    entry = {key: value for key, value in old.items() if key in ("case", "reason", "link") and value}
    if "link" in entry and not link_belongs(entry["link"], trackers):
        del entry["link"]
    return entry


def write_xfail_file(path: Path, name: str, entries: list[dict[str, Any]]) -> None:
    """Write ``entries`` as an xfail file (a YAML list), with a header saying what it pins."""
    import yaml

    header = (
        f"# Expected failures of `{name}` in the conformance matrix (docs/frameworks.md): each case that\n"
        f"# does not pass, with what the framework did. CI fails when this changes (a new failure, or an\n"
        f"# xpass when upstream fixes one). Rewrite it with `conformance matrix --impl {name} --update-xfail`\n"
        f"# and review the diff; reasons and links edited by hand are kept while the case still fails.\n"
    )
    body = yaml.safe_dump(entries, sort_keys=False, allow_unicode=True, width=120) if entries else "[]\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + body, encoding="utf-8")
