"""The command line, the --impl plug-in interface and the JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cases.loader import load_cases
from conformance.cli import main
from conformance.running.implementations import ImplementationLoadError, load_implementation
from conformance.running.runner import run_case
from tests.helpers import assert_is_case, write_case
from tests.plugins import wrong_convs

ROOT = Path(__file__).resolve().parent.parent
# The three Conv2d seed cases, by file: cases/seed also holds the other ops' seeds (issue 13).
SEED_CASES = [str(ROOT / "cases" / "seed" / name) for name in ("groups2.yaml", "groups3.yaml", "out18_groups2.yaml")]
GOOD = """
name: good/{name}
conv: {{in_channels: 4, out_channels: 6, kernel_size: [2, 3], groups: 2,
       stride: [2, 1], padding: [1, 0], dilation: [1, 2]}}
input: {{random: {{}}, shape: [2, 4, 6, 9]}}
"""


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_run_passes_the_seed_cases_and_prints_the_summary(capsys) -> None:
    code, out = run(capsys, "run", *SEED_CASES)
    assert code == 0
    assert out.strip().splitlines()[-1] == "3 passed, 0 failed"
    assert "PASS  seed/groups3" in out


def test_json_report(tmp_path: Path, capsys) -> None:
    write_case(tmp_path, GOOD.format(name="a"), "a.yaml")
    write_case(tmp_path, "conv: {in_channels: x}\n", "broken.yaml")
    report = tmp_path / "out" / "results.json"
    code, _ = run(capsys, "run", str(tmp_path / "cases"), "--json", str(report))
    data = json.loads(report.read_text())
    assert code == 1
    assert data["summary"] == {
        "passed": 1,
        "failed": 1,
        "errors": 1,
        "skipped": 0,
        "xfailed": 0,
        "xpassed": 0,
        "kinds": {},
    }
    by_name = {c["name"]: c for c in data["cases"]}
    assert by_name["good/a"]["status"] == "passed" and by_name["good/a"]["max_abs_error"] < 1e-5
    assert by_name["broken"]["status"] == "error" and "in_channels" in by_name["broken"]["message"]
    assert set(by_name["good/a"]) == {
        "name",
        "file",
        "status",
        "kind",
        "max_abs_error",
        "max_rel_error",
        "max_error_ratio",
        "message",
        "backend",
        "seconds",
        "durations",
    }
    assert by_name["good/a"]["kind"] is None and by_name["broken"]["kind"] is None  # a broken file is no failure kind
    assert 0 < by_name["good/a"]["max_error_ratio"] <= 1
    assert by_name["good/a"]["backend"]["device"] == "cpu"


def test_a_wrong_implementation_fails_with_exit_1(capsys) -> None:
    code, out = run(capsys, "run", *SEED_CASES, "--impl", "tests.plugins.wrong_convs:interleaved_groups")
    assert code == 1
    assert "FAILED: case seed/groups3 (" in out and "groups3.yaml:3) [wrong_values]" in out
    assert out.strip().endswith("0 passed, 3 failed (3 wrong_values)")


def test_an_implementation_that_never_refuses_fails_the_error_cases(capsys) -> None:
    code, out = run(
        capsys, "run", str(ROOT / "cases" / "errors"), "--impl", "tests.plugins.wrong_convs:accepts_anything"
    )
    assert code == 1 and "expected an error, but tests.plugins.wrong_convs:accepts_anything computed" in out
    assert ") [accepted_invalid]" in out


def test_wrong_dtype_is_a_failure(capsys) -> None:
    code, out = run(capsys, "run", *SEED_CASES, "-k", "groups3", "--impl", "tests.plugins.wrong_convs:returns_float64")
    assert code == 1 and "returned dtype float64, expected float32" in out
    assert "(1 wrong_dtype)" in out.strip().splitlines()[-1]


def test_plugin_gets_arguments_as_the_case_wrote_them(tmp_path: Path) -> None:
    write_case(
        tmp_path,
        """
        conv: {in_channels: 2, out_channels: 2, kernel_size: 3, stride: [2, 1], padding: same, groups: 2,
               padding_mode: circular}
        input: {random: {}, shape: [1, 2, 5, 6]}
    """.replace("padding: same", "padding: [1, 1]"),
        "a.yaml",
    )
    write_case(
        tmp_path,
        "conv: {in_channels: 2, out_channels: 2, kernel_size: 1, bias: false}\ninput: {fill: 1, shape: [1, 2, 1, 1]}\n",
        "b.yaml",
    )
    wrong_convs.calls.clear()
    implementation = load_implementation("tests.plugins.wrong_convs:recording")  # records its calls in this process
    for case in sorted(load_cases([tmp_path / "cases"]), key=lambda case: str(case.file)):
        # checks=(): only the forward call (the extra checks call the plug-in again)
        assert run_case(assert_is_case(case), implementation, checks=()).status == "passed"
    first, second = wrong_convs.calls
    assert first == dict(
        stride=(2, 1), padding=(1, 1), dilation=1, groups=2, bias=first["bias"], padding_mode="circular"
    )
    assert first["bias"].shape == (2,)
    assert "padding_mode" not in second and second["bias"] is None


def test_plugin_by_file_path(tmp_path: Path, capsys) -> None:
    plugin = tmp_path / "my_conv.py"
    plugin.write_text("from reference_impl import conv2d as mine\n")
    code, out = run(capsys, "run", *SEED_CASES, "--impl", f"{plugin}:mine")
    assert code == 0, out


@pytest.mark.parametrize(
    "spec,words",
    [
        ("no_such_module_xyz", "cannot import 'no_such_module_xyz'"),  # no colon: a module to look the ops up in
        ("tests.helpers", "defines none of conv1d, conv2d"),
        (":f", "expects MODULE:FUNCTION"),
        ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
        ("tests.plugins.wrong_convs:missing", "has no attribute 'missing'"),
        ("tests.plugins.wrong_convs:NOT_CALLABLE", "is a int, not a function"),
        ("/no/such/file.py:f", "no such file"),
    ],
)
def test_impl_errors_are_clear(spec: str, words: str, capsys) -> None:
    with pytest.raises(ImplementationLoadError, match=words):
        load_implementation(spec)
    code, out = run(capsys, "run", *SEED_CASES, "--impl", spec)
    assert code == 2 and words in out


def test_keyword_selects_cases(capsys) -> None:
    code, out = run(capsys, "run", *SEED_CASES, "-k", "OUT18")
    assert code == 0 and out.strip().splitlines()[-1] == "1 passed, 0 failed"


def test_missing_path_is_a_usage_error(capsys) -> None:
    code, out = run(capsys, "run", "/no/such/cases")
    assert code == 2 and "no such case file or folder" in out


def test_validate(tmp_path: Path, capsys) -> None:
    write_case(tmp_path, GOOD.format(name="a"), "a.yaml")
    assert run(capsys, "validate", str(tmp_path / "cases"))[0] == 0
    write_case(tmp_path, "conv: {in_channels: 1, out_channels: 1, kernel_size: 1, grops: 1}\ninput: [1]\n", "bad.yaml")
    code, out = run(capsys, "validate", str(tmp_path / "cases"))
    assert code == 1
    assert "bad.yaml:1: conv.grops: unknown key 'grops' (did you mean 'groups'?)" in out
    assert "1 valid case, 1 invalid, in 2 files" in out


@pytest.mark.slow
def test_console_script_and_module_entry_points() -> None:
    for command in ([sys.executable, "-m", "conformance"], [str(Path(sys.executable).parent / "conformance")]):
        done = subprocess.run([*command, "run", *SEED_CASES, "-q"], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "3 passed, 0 failed"


def test_the_cli_sets_openblas_thread_timeout_before_numpy_loads():
    """OpenBLAS reads OPENBLAS_THREAD_TIMEOUT once, when NumPy loads it: the CLI must import
    reference_impl (which sets it) before any command imports NumPy, and a value the user set wins."""
    probe = (  # what OPENBLAS_THREAD_TIMEOUT holds at the moment NumPy starts loading
        "import os, sys\n"
        "class Watch:\n"
        "    seen = 'numpy not imported'\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'numpy' and Watch.seen == 'numpy not imported':\n"
        "            Watch.seen = os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'unset')\n"
        "sys.meta_path.insert(0, Watch())\n"
        "from conformance.cli import main\n"
        "main(['schema'])\n"
        "print(Watch.seen)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "18"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**env, "OPENBLAS_THREAD_TIMEOUT": "9"},
    )
    assert done.stdout.splitlines()[-1] == "9", done.stderr
