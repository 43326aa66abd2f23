"""Where a run's time goes: per-case durations in JSON and JUnit, and `conformance run --durations N`."""

from __future__ import annotations

import contextlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.running.runner import DURATION_STAGES

ROOT = Path(__file__).resolve().parent.parent
CASES = [
    str(ROOT / "cases" / "seed" / "groups3.yaml"),
    str(ROOT / "cases" / "semantics" / "depthwise.yaml"),
    str(ROOT / "cases" / "gradients" / "depthwise24_stride2_ones.yaml"),
]
FORWARD_STAGES = {"load", "tensors", "warm_up", "implementation", "torch", "checks"}


@pytest.fixture(scope="module")
def timed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, ET.Element, str]:
    folder = tmp_path_factory.mktemp("durations")
    json_file, junit_file = folder / "results.json", folder / "results.xml"
    capture = folder / "stdout.txt"
    with capture.open("w") as out, contextlib.redirect_stdout(out):
        code = main(["run", *CASES, "-q", "--json", str(json_file), "--junit", str(junit_file), "--durations", "2"])
    assert code == 0
    return json.loads(json_file.read_text()), ET.parse(junit_file).getroot(), capture.read_text()


def test_json_records_every_stage_of_every_case(timed_run) -> None:
    document, _, _ = timed_run
    cases = document["cases"]
    assert len(cases) >= 3
    for case in cases:
        stages = case["durations"]
        assert FORWARD_STAGES <= set(stages) <= set(DURATION_STAGES), case["name"]
        assert all(value >= 0 for value in stages.values())
        # The stages after loading are disjoint parts of the case's run: they cannot add up to more.
        inside = sum(value for stage, value in stages.items() if stage != "load")
        assert inside <= case["seconds"] + 1e-5, case["name"]
        assert stages["load"] > 0  # every case here came from a file
    backward = {case["name"] for case in cases if "backward" in case["durations"]}
    assert backward == {case["name"] for case in cases if case["name"].startswith("gradients/")}
    assert len(backward) >= 1


def test_junit_testcases_carry_the_same_durations_as_properties(timed_run) -> None:
    document, root, _ = timed_run
    by_name = {case["name"]: case for case in document["cases"]}
    testcases = list(root.iter("testcase"))
    assert len(testcases) == len(by_name)
    for testcase in testcases:
        properties = {p.get("name"): float(p.get("value")) for p in testcase.iter("property")}
        expected = by_name[testcase.get("name")]["durations"]
        assert set(properties) == {f"duration.{stage}" for stage in expected}
        for stage, seconds in expected.items():
            assert properties[f"duration.{stage}"] == pytest.approx(seconds, abs=2e-6)


def test_durations_prints_the_slowest_cases_in_order_with_their_stages(timed_run) -> None:
    document, _, printed = timed_run
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("slowest 2 of"))
    assert lines[start] == f"slowest 2 of {len(document['cases'])} cases (seconds; load not included in the total):"
    shown = lines[start + 1 : start + 3]
    slowest = sorted(document["cases"], key=lambda case: -case["seconds"])[:2]
    for line, case in zip(shown, slowest, strict=True):
        assert line.split()[1] == case["name"]
        assert "implementation" in line or "checks" in line  # the breakdown names the stages
    assert lines[start + 3].startswith("time per stage (s): load ")


@pytest.mark.parametrize("value", ["-1", "ten"])
def test_durations_wants_a_whole_number(value: str, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["run", CASES[0], "--durations", value])
    assert "--durations: expected a whole number" in capsys.readouterr().err


def test_a_command_imports_only_its_own_module() -> None:
    """`conformance run` does not pay for importing the other commands (the fuzzer's hypothesis
    among them); `conformance --help` still lists every command."""
    import subprocess
    import sys

    script = (
        "import sys, contextlib, io\n"
        "from conformance.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['run', '--help'])\n"
        "    except SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('conformance.commands.')))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    assert loaded.stdout.strip() == "['conformance.commands.run']"
    listing = subprocess.run(
        [sys.executable, "-m", "conformance", "--help"], capture_output=True, text=True, cwd=ROOT, check=True
    )
    from conformance.cli import COMMAND_MODULES

    listed = {line.split()[0] for line in listing.stdout.splitlines() if line.startswith("    ") and line.split()}
    assert set(COMMAND_MODULES) <= listed
