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


def _seed_case():
    from conformance.cases.loader import load_cases

    (case,) = load_cases([str(ROOT / "cases" / "seed" / "groups3.yaml")])
    return case


def _jitting_conv2d(jit_on_call: int, one_time_seconds: float, calls: list[int]):
    """A conv2d whose call number ``jit_on_call`` (1-based) first makes numba compile a fresh function
    and pays ``one_time_seconds``, as the reference does on a kernel's first call in a process."""
    import time

    import reference_impl

    def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        calls.append(len(calls) + 1)
        if len(calls) == jit_on_call:
            import numba

            numba.njit(lambda value: value + 1)(1)  # a new function: a real compile
            time.sleep(one_time_seconds)
        return reference_impl.conv2d(x, weight, bias, stride, padding, dilation, groups)

    return conv2d


def test_a_reference_call_that_compiles_is_timed_again_and_the_compile_counted_as_warm_up() -> None:
    """The reference is warmed up once per op and dtype, but a later case can take a kernel not yet
    loaded: its first call (here the timed one, call 2) compiles; the case's implementation time is
    a second call's, and the one-time cost shows under warm_up. Its values are still judged."""
    pytest.importorskip("numba")
    from conformance.running.implementations import Implementation
    from conformance.running.runner import CaseRunner

    calls: list[int] = []
    reference_like = Implementation("jitting-reference", _jitting_conv2d(2, 0.3, calls), computes_in_float64=True)
    result = CaseRunner(reference_like, checks=()).run(_seed_case())
    assert result.status == "passed", result.message
    assert calls == [1, 2, 3]  # the warm-up, the timed call that compiled, the call timed again
    assert result.durations["implementation"] < 0.2
    assert result.durations["warm_up"] >= 0.3


def test_a_plugin_that_compiles_is_called_once_and_timed_as_it_ran() -> None:
    """A plug-in sees exactly the calls the checks make: no warm-up, no second call, even when its
    call compiles; its time is what it took."""
    pytest.importorskip("numba")
    from conformance.running.implementations import Implementation
    from conformance.running.runner import CaseRunner

    calls: list[int] = []
    plugin = Implementation("jitting-plugin", _jitting_conv2d(1, 0.3, calls))
    result = CaseRunner(plugin, checks=()).run(_seed_case())
    assert result.status == "passed", result.message
    assert calls == [1]
    assert result.durations["implementation"] >= 0.3


def test_the_jit_watch_sees_a_compile_and_not_a_compiled_call() -> None:
    numba = pytest.importorskip("numba")
    from conformance.running.jit_watch import JitWatch

    double = numba.njit(lambda value: 2 * value)
    with JitWatch() as watch:
        assert double(3) == 6  # first call: compiles
    assert watch.fired
    with JitWatch() as watch:
        assert double(4) == 8  # compiled already
    assert not watch.fired


def test_timed_calls_run_with_the_garbage_collector_paused_and_restore_it() -> None:
    """A collection due during a timed call would be that case's time: the implementation and torch
    are called with the collector paused (as timeit does), and it runs again afterwards."""
    import gc

    import reference_impl
    from conformance.running.implementations import Implementation
    from conformance.running.runner import CaseRunner

    seen: list[bool] = []

    def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        seen.append(gc.isenabled())
        return reference_impl.conv2d(x, weight, bias, stride, padding, dilation, groups)

    assert gc.isenabled()
    result = CaseRunner(Implementation("watched", conv2d), checks=()).run(_seed_case())
    assert result.status == "passed", result.message
    assert seen == [False]
    assert gc.isenabled()


def test_the_jit_watch_counts_numbas_first_import_as_one_time_work() -> None:
    """The reference imports numba on its first compiled call: that import (~0.5 s) is one-time work
    too. A fresh interpreter, since this one has numba imported already."""
    import subprocess
    import sys

    pytest.importorskip("numba")
    script = (
        "import sys\n"
        "from conformance.running.jit_watch import JitWatch\n"
        "assert 'numba' not in sys.modules\n"
        "with JitWatch() as watch:\n"
        "    import numba\n"
        "print(watch.fired)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
