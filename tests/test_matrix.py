"""The conformance matrix (conformance/tools/matrix.py, conformance/commands/matrix.py) with fake
plug-ins: counts per folder and tag, per-case verdicts, xfail files, uninstalled and unloadable
columns, a crashing plug-in in a worker process, and the JSON/HTML/JUnit outputs."""

from __future__ import annotations

import html
import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.cases.loader import load_cases
from conformance.cli import main
from conformance.frameworks import Availability
from conformance.running.implementations import load_implementation
from conformance.tools.matrix import Matrix, run_matrix, safe_file_name

ROOT = Path(__file__).resolve().parents[1]

PLUGINS = textwrap.dedent("""
    import os
    import numpy as np
    from reference_impl import conv2d as _reference

    def correct(input, weight, bias=None, **kw):
        return _reference(input, weight, bias, **kw)

    def interleaved(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kw):
        # the classic bug: group g reads every groups-th channel instead of a contiguous block
        if groups > 1 and input.ndim == 4:
            order = np.concatenate([np.arange(g, input.shape[1], groups) for g in range(groups)])
            input = input[:, order]
        return _reference(input, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups, **kw)

    def zeros_only(input, weight, bias=None, padding_mode="zeros", **kw):
        if padding_mode != "zeros":
            raise NotImplementedError(f"no {padding_mode} padding")
        return _reference(input, weight, bias, **kw)

    def aborts_on_groups3(input, weight, bias=None, groups=1, **kw):
        if groups == 3:
            os.abort()
        return _reference(input, weight, bias, groups=groups, **kw)
""")


@pytest.fixture(scope="module")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("matrix") / "matrix_plugins.py"
    path.write_text(PLUGINS)
    return path


@pytest.fixture(scope="module")
def cases() -> list:
    return load_cases([*CONV2D_SEEDS, str(ROOT / "cases" / "semantics" / "padding_modes.yaml")])


# The seed experiment's three Conv2d files (cases/seed/ also holds the other ops' seeds, which a
# conv2d-only plug-in skips).
CONV2D_SEEDS = [str(ROOT / "cases" / "seed" / f"{name}.yaml") for name in ("groups2", "groups3", "out18_groups2")]


def in_process(spec: str, timeout: float = 0) -> object:
    return load_implementation(spec)


def test_counts_per_folder_and_tag_and_verdicts_per_case(plugins: Path, cases: list) -> None:
    correct, interleaved = f"{plugins}:correct", f"{plugins}:interleaved"
    matrix = run_matrix(cases, [correct, interleaved], loader=in_process)
    table = matrix.table()
    assert table["seed"][correct] == {"passed": 3}
    assert table["seed"][interleaved].get("wrong_values", 0) >= 2  # groups2/groups3 mix channels across groups
    for row in matrix.rows:
        assert row.results[correct].status == "passed", (row.name, row.results[correct].message)
    wrong = [row.name for row in matrix.rows if row.results[interleaved].kind == "wrong_values"]
    assert "seed/groups3" in wrong
    tags = [group for group in matrix.groups() if group.startswith("#")]
    assert tags, "tags are rows of the table too"
    assert set(matrix.changes()) == {f"{interleaved}: {name}: failed [wrong_values]" for name in wrong}


def test_xfail_file_turns_listed_failures_into_xfailed_and_passes_into_xpassed(
    plugins: Path, cases: list, tmp_path: Path
) -> None:
    spec = f"{plugins}:zeros_only"
    unsupported = run_matrix(cases, [spec], loader=in_process)
    failing = sorted(row.name for row in unsupported.rows if row.results[spec].kind == "unsupported")
    assert failing and all(row.file.endswith("padding_modes.yaml") for row in unsupported.rows if row.name in failing)
    xfail_dir = tmp_path / "xfail"
    xfail_dir.mkdir()
    listed = failing + ["seed/groups2"]  # one that passes: must come out xpassed
    (xfail_dir / f"{safe_file_name(spec)}.yaml").write_text(
        "".join(f"- case: {name}\n  reason: zeros padding only\n" for name in listed)
    )
    matrix = run_matrix(cases, [spec], loader=in_process, xfail_dir=xfail_dir)
    statuses = {row.name: row.results[spec].status for row in matrix.rows}
    assert all(statuses[name] == "xfailed" for name in failing)
    assert statuses["seed/groups2"] == "xpassed"
    assert matrix.changes() == [f"{spec}: seed/groups2: xpassed"]


def test_an_uninstalled_builtin_is_a_column_with_its_install_command(
    cases: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    import conformance.frameworks as frameworks

    monkeypatch.setattr(
        frameworks,
        "status",
        lambda name: Availability(name, False, "not installed: no module jax", frameworks.install_command(name)),
    )
    matrix = run_matrix(cases[:2], ["jax"], loader=in_process)
    column = matrix.columns[0]
    assert not column.installed and "pip install -c constraints-frameworks.txt jax jaxlib" in column.install_command
    assert all(row.results["jax"].status == "skipped" for row in matrix.rows)
    assert matrix.changes() == []  # a column that could not run is not a change
    implementations = matrix.to_json()["implementations"]
    assert implementations[0]["installed"] is False and "no module jax" in implementations[0]["note"]


def test_an_implementation_that_cannot_load_is_a_column_saying_why(cases: list) -> None:
    matrix = run_matrix(cases[:1], ["no_such_module_xyz:conv2d"], loader=in_process)
    assert "could not load" in matrix.columns[0].note and "no_such_module_xyz" in matrix.columns[0].note
    assert matrix.rows[0].results["no_such_module_xyz:conv2d"].status == "error"
    # installed but broken (an import clash in CI, say) must fail the matrix, unlike "not installed"
    assert matrix.changes() and matrix.changes()[0].startswith("no_such_module_xyz:conv2d: could not load")


@pytest.mark.slow
def test_command_isolates_a_crash_and_writes_json_html_junit(
    plugins: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = f"{plugins}:aborts_on_groups3"
    out = tmp_path / "out"
    status = main(
        [
            "matrix",
            *CONV2D_SEEDS,
            "--impl",
            spec,
            "--impl",
            f"{plugins}:correct",
            "-q",
            "--json",
            str(out / "m.json"),
            "--html",
            str(out / "html"),
            "--column-reports",
            "--junit",
            str(out / "m.xml"),
            "--xfail-dir",
            str(tmp_path / "none"),
            "--durations",
            "1",
        ]
    )
    printed = capsys.readouterr()
    assert status == 1  # the crash is an unlisted failure
    data = json.loads((out / "m.json").read_text())
    assert [i["name"] for i in data["implementations"]] == [spec, f"{plugins}:correct"]
    cells = {case["name"]: case["results"] for case in data["cases"]}
    assert cells["seed/groups3"][spec]["kind"] == "crashed"
    assert "SIGABRT" in cells["seed/groups3"][spec]["message"]
    assert cells["seed/groups2"][spec]["status"] == "passed"  # the run went on after the abort, in a new worker
    assert data["implementations"][0]["worker_restarts"] == 1  # out18_groups2, after groups3's abort
    assert all(results[f"{plugins}:correct"]["status"] == "passed" for results in cells.values())
    assert set(data["cases"][0]["results"][spec]) == {"status", "kind", "message", "max_abs_error", "seconds"}
    # Where each column's time went: every cell's seconds, and per stage, within the column's total.
    for column in data["implementations"]:
        name, stages = column["name"], column["seconds_per_stage"]
        assert all(results[name]["seconds"] > 0 for results in cells.values())
        assert {"tensors", "implementation", "torch"} <= set(stages)
        assert 0 < sum(stages.values()) <= column["seconds"]
    assert printed.out.count(f"slowest 1 of {len(cells)} cases") == 2  # --durations: after each column
    assert data["settings"]["device"] == "cpu" and data["settings"]["oracle"].startswith("torch ")
    page = (out / "html" / "index.html").read_text()
    assert "#case-seed-groups3" in page and "crashed" in page
    suites = ET.parse(out / "m.xml").getroot().findall("testsuite")
    assert [suite.get("name") for suite in suites] == [spec, f"{plugins}:correct"]
    assert "seed/groups3" in printed.out and "CRASH" in printed.out


def test_a_pinned_failure_that_fails_another_way_is_a_change(plugins: Path, cases: list, tmp_path: Path) -> None:
    from conformance.tools.matrix import write_xfail_file, xfail_entries

    spec = f"{plugins}:zeros_only"
    entries = xfail_entries(run_matrix(cases, [spec], loader=in_process), spec, keep={})
    pinned_as_refusals = [
        dict(entry, reason="refused_valid: " + entry["reason"].split(": ", 1)[1]) for entry in entries
    ]
    write_xfail_file(tmp_path / f"{safe_file_name(spec)}.yaml", spec, pinned_as_refusals)
    matrix = run_matrix(cases, [spec], loader=in_process, xfail_dir=tmp_path)
    assert {row.results[spec].status for row in matrix.rows} == {"passed", "xfailed"}  # still listed, still failing
    changes = matrix.changes()
    assert len(changes) == len(entries) and all("xfailed as refused_valid, but now unsupported" in c for c in changes)
    # rewriting the pins gives the new kind, not the stale reason
    assert all(
        entry["reason"].startswith("unsupported: ")
        for entry in xfail_entries(matrix, spec, keep={entry["case"]: entry for entry in pinned_as_refusals})
    )


def test_rewriting_pins_after_a_subset_run_keeps_the_cases_it_did_not_run(plugins: Path, cases: list) -> None:
    from conformance.tools.matrix import xfail_entries

    spec = f"{plugins}:zeros_only"
    matrix = run_matrix(cases[:1], [spec], loader=in_process)  # seed/groups2 alone: it passes
    elsewhere = {"case": "networks/*", "reason": "wrong_values: pinned by an earlier full run"}
    assert xfail_entries(matrix, spec, keep={"networks/*": elsewhere}) == [elsewhere]


def test_rewriting_pins_keeps_hand_written_feature_entries(plugins: Path, cases: list, tmp_path: Path) -> None:
    import yaml

    from conformance.commands.matrix import update_xfail_files

    spec = f"{plugins}:zeros_only"
    by_feature = {"dtype": "float64", "when": {"cpu.avx2": "yes"}, "reason": "by hand: no float64 here"}
    path = tmp_path / f"{safe_file_name(spec)}.yaml"
    path.write_text(yaml.safe_dump([by_feature]))
    update_xfail_files(run_matrix(cases, [spec], loader=in_process), tmp_path)
    written = yaml.safe_load(path.read_text())
    assert written[0] == by_feature  # kept as written, first
    assert written[1:] and all("case" in entry for entry in written[1:])  # the failing cells, pinned per case


def test_pinning_the_current_failures_makes_the_matrix_unchanged(plugins: Path, cases: list, tmp_path: Path) -> None:
    from conformance.tools.matrix import write_xfail_file, xfail_entries

    spec = f"{plugins}:zeros_only"
    before = run_matrix(cases, [spec], loader=in_process)
    assert before.changes()
    entries = xfail_entries(before, spec, keep={})
    assert all(entry["reason"].startswith("unsupported: ") and "padding" in entry["reason"] for entry in entries)
    write_xfail_file(tmp_path / f"{safe_file_name(spec)}.yaml", spec, entries)
    after = run_matrix(cases, [spec], loader=in_process, xfail_dir=tmp_path)
    assert after.changes() == []
    assert {row.results[spec].status for row in after.rows} == {"passed", "xfailed"}
    # hand-written reasons survive a rewrite while the case still fails
    kept = xfail_entries(after, spec, keep={entries[0]["case"]: {"case": entries[0]["case"], "reason": "by hand"}})
    assert kept[0]["reason"] == "by hand" and kept[1:] == entries[1:]


def test_xfail_entries_matching_no_case_are_reported(plugins: Path, cases: list, tmp_path: Path) -> None:
    spec = f"{plugins}:correct"
    (tmp_path / f"{safe_file_name(spec)}.yaml").write_text("- case: seed/no_such_case\n  reason: a typo\n")
    matrix = run_matrix(cases, [spec], loader=in_process, xfail_dir=tmp_path)
    assert matrix.columns[0].unused_xfail == ["seed/no_such_case"]
    assert matrix.changes() == []  # informational: a run of a subset leaves entries unused


def _one_cell_matrix(columns: list[str], status: str, kind: str | None, case_file: str) -> Matrix:
    from conformance.tools.matrix import Cell, Column, Row

    row = Row("frameworks/input_2d_aborts", case_file)
    for name in columns:
        row.results[name] = Cell(status, kind, f"{name} {kind}: its message")
    return Matrix([Column(name) for name in columns], [row])


def test_a_tracker_link_is_pinned_only_for_the_column_it_was_found_in(tmp_path: Path) -> None:
    from conformance.tools.matrix import xfail_entries

    case_file = tmp_path / "frameworks" / "input_2d_aborts.yaml"
    case_file.parent.mkdir()
    case_file.write_text("# Tracker: tensorflow/tensorflow#111453 (abort on a 2-D input)\nname: x\n")
    matrix = _one_cell_matrix(["tensorflow", "jax"], "failed", "crashed", str(case_file))
    assert xfail_entries(matrix, "tensorflow")[0]["link"] == "https://github.com/tensorflow/tensorflow/issues/111453"
    assert "link" not in xfail_entries(matrix, "jax")[0]  # a TensorFlow issue is no JAX finding
    # a link kept from an old entry that points at another framework's tracker is dropped too
    stale = {
        "frameworks/input_2d_aborts": {
            "case": "frameworks/input_2d_aborts",
            "reason": "crashed: x",
            "link": "https://github.com/tensorflow/tensorflow/issues/111453",
        }
    }
    assert "link" not in xfail_entries(matrix, "jax", keep=stale)[0]


def test_an_adapter_error_is_never_pinned_as_a_finding(tmp_path: Path) -> None:
    from conformance.tools.matrix import xfail_entries

    matrix = _one_cell_matrix(["openvino"], "failed", "adapter_error", str(tmp_path / "c.yaml"))
    assert xfail_entries(matrix, "openvino") == []
    assert matrix.changes() == ["openvino: frameworks/input_2d_aborts: failed [adapter_error]"]


def test_the_page_has_a_legend_facts_hover_messages_and_calls_an_xpass_fixed_upstream(tmp_path: Path) -> None:
    from conformance.commands.matrix import LEGEND, write_html
    from conformance.tools.matrix import Cell, Column, Row

    columns = [Column("tensorflow", environment={"tensorflow.onednn": "on"}), Column("tensorflow-no-onednn")]
    rows = []
    for index in range(300):  # messages that repeat are stored once
        row = Row(f"semantics/case_{index}", "c.yaml")
        row.results["tensorflow"] = Cell(
            "xpassed" if index == 0 else "xfailed", None if index == 0 else "wrong_shape", "wrong_shape: shapes differ"
        )
        row.results["tensorflow-no-onednn"] = Cell("passed")
        rows.append(row)
    matrix = Matrix(columns, rows, {"cpu.avx512f": "no"})
    page = write_html(matrix, tmp_path).read_text()
    assert all(html.escape(label) in page for label, _, _ in LEGEND)
    assert "fixed upstream?" in page and "<td class='u' data-m=" in page  # not a failure's colour
    assert "cpu.avx512f" in page and "tensorflow.onednn=on" in page
    assert page.count("wrong_shape: shapes differ") == 1
    # tensorflow and its counterpart disagree on every case but the fixed one: processor-dependent pins
    assert len(matrix.processor_dependent()) == 299 and "Pins that depend on the processor" in page
