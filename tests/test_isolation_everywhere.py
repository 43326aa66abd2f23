"""A plug-in that dies by SIGFPE on one invalid layer (issue 19 item 4): `conformance run`,
`pytest --conv-impl` and `check()` each isolate it by default, finish, report that case `crashed`
(pytest in its JUnit file too), and are green when the case is in an xfail file."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import reference_impl
from conformance import check
from conformance.cli import main
from tests.helpers import write_case

PLUGIN = "tests.plugins.dies_on_groups_zero"
PLUGIN_SOURCE = Path(__file__).resolve().parent / "plugins" / "dies_on_groups_zero.py"
CASES = """
name: crash/groups_zero
conv: {in_channels: 4, out_channels: 4, kernel_size: 3, groups: 0}
input: {fill: 1, shape: [1, 4, 5, 6]}
expect_error: {match: "groups must be a positive integer"}
---
name: crash/grouped_after_it
conv: {in_channels: 4, out_channels: 4, kernel_size: 3, groups: 2}
input: {random: {}, shape: [1, 4, 5, 6]}
"""
XFAIL = '- {case: crash/groups_zero, reason: "divides by groups: SIGFPE"}\n'

# pytester's in-process runs drop the modules first imported inside them, and numba (which the reference
# imports on its first depthwise call) cannot be imported twice in one process: load it for good now.
reference_impl.conv2d(np.ones((1, 3, 4, 5)), np.ones((3, 1, 3, 3)), groups=3, padding=1)


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    return write_case(tmp_path, CASES, "crash.yaml")


def test_conformance_run_finishes_and_reports_the_case_crashed(capsys, tmp_path: Path, cases: Path) -> None:
    report = tmp_path / "r.json"
    assert main(["run", "-q", str(cases), "--impl", PLUGIN, "--timeout", "120", "--json", str(report)]) == 1
    results = {case["name"]: case for case in json.loads(report.read_text())["cases"]}
    assert results["crash/groups_zero"]["kind"] == "crashed"
    assert "killed by signal SIGFPE" in results["crash/groups_zero"]["message"]
    assert results["crash/grouped_after_it"]["status"] == "passed"  # a fresh worker took over
    xfail = tmp_path / "known.yaml"
    xfail.write_text(XFAIL)
    capsys.readouterr()
    assert main(["run", "-q", str(cases), "--impl", PLUGIN, "--timeout", "120", "--xfail", str(xfail)]) == 0


def test_check_isolates_by_default_and_reports_the_case_crashed(tmp_path: Path, cases: Path) -> None:
    report = check(PLUGIN, cases=cases, timeout=120)
    assert report.isolated and not report.passed
    verdicts = {result.name: (result.status, result.kind) for result in report}
    assert verdicts == {"crash/groups_zero": ("failed", "crashed"), "crash/grouped_after_it": ("passed", None)}
    assert "SIGFPE" in str(report)
    xfail = tmp_path / "known.yaml"
    xfail.write_text(XFAIL)
    from tests.plugins import dies_on_groups_zero

    green = check(dies_on_groups_zero.conv2d, cases=cases, xfail=xfail, timeout=120)  # a function: by its name
    assert green.isolated and green.passed, green
    assert report.environment["torch.version"] and "cpu.avx2" in green.environment


def test_check_runs_what_a_worker_cannot_import_in_process_with_a_warning(cases: Path) -> None:
    import torch.nn.functional as F

    def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # defined here: no import name
        return F.conv2d(input, weight, bias, stride, padding, dilation, groups)

    with pytest.warns(UserWarning, match="runs in this process"):
        report = check(conv2d, arrays="torch", cases=cases, keyword="grouped")
    assert not report.isolated and report.passed


def test_pytest_conv_impl_finishes_writes_junit_and_is_green_when_listed(
    pytester: pytest.Pytester, tmp_path: Path, cases: Path
) -> None:
    pytester.makepyfile(my_conv=PLUGIN_SOURCE.read_text())  # the user's own module, in the user's repo
    pytester.syspathinsert()
    junit = tmp_path / "gate.xml"
    options = ["-p", "no:cacheprovider", "--conv-impl", "my_conv", "--conv-cases", str(cases), "--conv-timeout", "120"]
    result = pytester.runpytest(*options, f"--junitxml={junit}")
    result.assert_outcomes(passed=1, failed=1)  # the session outlived the SIGFPE
    assert "[crashed]" in result.stdout.str() and "SIGFPE" in result.stdout.str()
    root = ET.parse(junit).getroot()
    failures = [case.get("name") for case in root.iter("testcase") if case.find("failure") is not None]
    assert failures == ["crash/groups_zero"]
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties["conformance.isolated"] == "yes" and "conformance.env.cpu.avx2" in properties
    xfail = tmp_path / "known.yaml"
    xfail.write_text(XFAIL)
    green = pytester.runpytest(*options, "--conv-xfail", str(xfail))
    green.assert_outcomes(passed=1, xfailed=1)
    assert green.ret == 0
