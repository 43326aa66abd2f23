"""Reports for CI: `conformance run --junit`, pytest's own --junitxml, and a parallel (xdist)
run that reports the same pass/fail set as a serial one."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.cli import main
from tests.helpers import write_case

ROOT = Path(__file__).resolve().parent.parent
INTERLEAVED = "tests.plugins.wrong_convs:interleaved_groups"


def outcomes(junit_file: Path) -> dict[str, str]:
    """{test name: "passed" | "failure" | "error" | "skipped"} from a JUnit XML file."""
    result = {}
    for testcase in ET.parse(junit_file).getroot().iter("testcase"):
        children = [child.tag for child in testcase if child.tag in ("failure", "error", "skipped")]
        result[testcase.get("name")] = children[0] if children else "passed"
    return result


def test_run_writes_one_junit_testcase_per_case_with_the_report(tmp_path: Path, capsys) -> None:
    write_case(tmp_path, "conv: {in_channels: x}\n", "broken.yaml")
    junit = tmp_path / "reports" / "conformance.xml"
    semantics = [
        str(ROOT / "cases" / "semantics" / name) for name in ("depthwise.yaml", "grouped_stride_padding_dilation.yaml")
    ]
    seeds = [str(ROOT / "cases" / "seed" / name) for name in ("groups2.yaml", "groups3.yaml", "out18_groups2.yaml")]
    code = main(["run", *seeds, *semantics, str(tmp_path / "cases"), "--impl", INTERLEAVED, "--junit", str(junit)])
    capsys.readouterr()
    assert code == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    by_name = {case.get("name"): case for case in suite.iter("testcase")}
    assert outcomes(junit) == {
        "seed/groups2": "failure",
        "seed/groups3": "failure",
        "seed/out18_groups2": "failure",
        "semantics/grouped_stride_padding_dilation": "failure",
        "semantics/depthwise_3x3": "passed",  # one output per group: interleaving cannot show
        "semantics/grouped_same_reflect": "passed",
        "broken": "error",
    }
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("7", "4", "1")
    failure = by_name["seed/groups3"].find("failure")
    assert failure is not None and failure.get("message") == failure.text
    assert "output channel 2 is in group 1 of 3, which reads input channels 2-3" in failure.text
    assert by_name["seed/groups3"].get("file", "").endswith("groups3.yaml")
    assert "in_channels" in by_name["broken"].find("error").text


CASE_FOLDERS = [str(ROOT / "cases" / name) for name in ("seed", "semantics", "errors")]
# The planted bug fails some cases and not others, so the pass/fail set has both in it.
RUN_OPTIONS = [
    "-p",
    "no:cacheprovider",
    f"--rootdir={ROOT}",
    "-c",
    str(ROOT / "pyproject.toml"),
    "--conv-impl",
    INTERLEAVED,
]


@pytest.mark.slow
def test_a_parallel_run_reports_the_same_pass_fail_set_as_a_serial_one(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist is installed by `make setup` (requirements.txt)")
    serial_xml, parallel_xml = tmp_path / "serial.xml", tmp_path / "parallel.xml"
    serial = pytester.runpytest_inprocess(*RUN_OPTIONS, "-p", "no:xdist", f"--junitxml={serial_xml}", *CASE_FOLDERS)
    assert serial.ret == pytest.ExitCode.TESTS_FAILED, serial.stdout.str()
    # xdist needs real processes: the controller and 2 workers, in a subprocess of their own.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *RUN_OPTIONS,
            "-n",
            "2",
            "--dist",
            "load",
            f"--junitxml={parallel_xml}",
            *CASE_FOLDERS,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr
    assert "2 workers" in done.stdout
    assert outcomes(parallel_xml) == outcomes(serial_xml)
    assert {"passed", "failure"} <= set(outcomes(serial_xml).values()) <= {"passed", "failure", "skipped"}
    # pytest's own --junitxml carries the domain report too.
    texts = [failure.text or "" for failure in ET.parse(parallel_xml).getroot().iter("failure")]
    assert any("interleaved_groups vs torch" in text and "which reads input" in text for text in texts)
