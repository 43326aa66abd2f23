"""Crash isolation (conformance/running/isolation.py): fake plug-ins that abort, segfault, hang, raise
exceptions that do not pickle, and refuse; the worker reports each and the run goes on."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conformance.cases.loader import load_cases
from conformance.judging.outcomes import ImplementationCrashed, Unsupported
from conformance.running.implementations import ImplementationLoadError
from conformance.running.isolation import IsolatedImplementation, describe_exit, rebuild_exception
from conformance.running.runner import FAILED, PASSED, make_tensors, run_case

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = textwrap.dedent("""
    import ctypes, os, signal, sys, time
    from reference_impl import conv2d as _reference

    class NoPickle(Exception):
        def __init__(self, code, detail):  # two required arguments: unpickling calls cls(*args) with one
            super().__init__(f"code {code}: {detail}")

    def correct(input, weight, bias=None, **kw):
        return _reference(input, weight, bias, **kw)

    def aborts(input, weight, bias=None, **kw):
        print("fatal: CHECK failed: groups > 0", file=sys.stderr, flush=True)
        os.abort()

    def segfaults(input, weight, bias=None, **kw):
        ctypes.string_at(0)

    def exits(input, weight, bias=None, **kw):
        os._exit(3)

    def hangs(input, weight, bias=None, **kw):
        time.sleep(600)

    def unpicklable(input, weight, bias=None, **kw):
        raise NoPickle(7, "from an extension")

    def refuses(input, weight, bias=None, **kw):
        raise ValueError("mylib refuses this layer")

    def unsupported(input, weight, bias=None, **kw):
        raise NotImplementedError("no dilation yet")

    def crash_once(input, weight, bias=None, **kw):
        marker = os.environ["ISOLATION_MARKER"]
        if not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGSEGV)
        return _reference(input, weight, bias, **kw)
""")


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("isolation") / "fake_plugins.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture(scope="module")
def case():
    return next(c for c in load_cases([str(ROOT / "cases" / "seed" / "groups2.yaml")]))


def forward(spec: str, case, **options):
    tensors = make_tensors(case)
    with IsolatedImplementation(spec, **options) as implementation:
        return implementation.forward(case, tensors.input, tensors.weight, tensors.bias)


@pytest.mark.slow
def test_correct_plugin_passes_through_the_worker_with_its_attributes(plugin: Path, case) -> None:
    with IsolatedImplementation(f"{plugin}:correct") as implementation:
        assert implementation.name == f"{plugin}:correct"
        assert implementation.computes_in_float64 is False
        result = run_case(case, implementation)
    assert result.status == PASSED, result.message


@pytest.mark.slow
@pytest.mark.parametrize(
    "function, expected",
    [
        ("aborts", ["killed by signal SIGABRT (6)", "CHECK failed: groups > 0"]),
        ("segfaults", ["killed by signal SIGSEGV (11)", "Fatal Python error: Segmentation fault"]),
        ("exits", ["exited with status 3"]),
    ],
)
def test_a_dying_worker_is_a_crash_with_signal_and_stderr(
    plugin: Path, case, function: str, expected: list[str]
) -> None:
    with pytest.raises(ImplementationCrashed) as raised:
        forward(f"{plugin}:{function}", case)
    for text in expected:
        assert text in str(raised.value)


@pytest.mark.slow
def test_a_hang_past_the_timeout_is_a_crash_and_the_worker_is_killed(plugin: Path, case) -> None:
    tensors = make_tensors(case)
    with IsolatedImplementation(f"{plugin}:hangs", timeout=1.5) as implementation:
        pid = implementation.pid
        with pytest.raises(ImplementationCrashed, match=r"hung: no answer within 1.5 s"):
            implementation.forward(case, tensors.input, tensors.weight, tensors.bias)
        assert implementation.pid is None  # no worker until the next call
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)


@pytest.mark.slow
def test_after_a_crash_the_next_call_gets_a_fresh_worker(
    plugin: Path, case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISOLATION_MARKER", str(tmp_path / "crashed-once"))
    tensors = make_tensors(case)
    with IsolatedImplementation(f"{plugin}:crash_once") as implementation:
        first_pid = implementation.pid
        with pytest.raises(ImplementationCrashed, match="SIGSEGV"):
            implementation.forward(case, tensors.input, tensors.weight, tensors.bias)
        output = implementation.forward(case, tensors.input, tensors.weight, tensors.bias)
        assert implementation.pid != first_pid and implementation.restarts == 1
    torch_output = __import__("conformance.running.torch_oracle", fromlist=["torch_forward"]).torch_forward(
        case, tensors.input, tensors.weight, tensors.bias, "cpu"
    )
    np.testing.assert_allclose(output, torch_output, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_exceptions_keep_their_verdict_across_the_boundary(plugin: Path, case) -> None:
    with pytest.raises(ValueError, match="mylib refuses this layer"):
        forward(f"{plugin}:refuses", case)
    with pytest.raises(NotImplementedError, match="no dilation yet"):
        forward(f"{plugin}:unsupported", case)
    with pytest.raises(Exception) as raised:
        forward(f"{plugin}:unpicklable", case)
    # does not pickle: rebuilt with its name and message, not a refusal type, the worker's traceback as a note
    assert type(raised.value).__name__ == "NoPickle"
    assert not isinstance(raised.value, (ValueError, RuntimeError, NotImplementedError))
    assert "code 7: from an extension" in str(raised.value)
    assert any("in the worker process" in note for note in raised.value.__notes__)


@pytest.mark.slow
def test_run_case_records_a_crash_and_the_run_goes_on(plugin: Path, case) -> None:
    with IsolatedImplementation(f"{plugin}:aborts") as implementation:
        crashed = run_case(case, implementation)
    assert crashed.status == FAILED
    assert "ImplementationCrashed" in crashed.message and "SIGABRT" in crashed.message


@pytest.mark.slow
def test_a_plugin_that_cannot_load_raises_the_loaders_error(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("")
    with pytest.raises(ImplementationLoadError, match="has no attribute"):
        IsolatedImplementation(f"{tmp_path / 'empty.py'}:conv2d")


def test_rebuilt_exceptions_keep_builtin_bases_and_names() -> None:
    unsupported = rebuild_exception(
        {
            "pickled": None,
            "type": "Unsupported",
            "module": "conformance.judging.outcomes",
            "message": "x",
            "bases": ["NotImplementedError", "RuntimeError", "Exception", "BaseException", "object"],
            "traceback": "",
        }
    )
    assert isinstance(unsupported, NotImplementedError)
    import pickle

    exact = rebuild_exception(
        {
            "pickled": pickle.dumps(Unsupported("no circular")),
            "type": "Unsupported",
            "module": "conformance.judging.outcomes",
            "message": "no circular",
            "bases": [],
            "traceback": "Traceback ...",
        }
    )
    assert type(exact) is Unsupported and str(exact) == "no circular"
    assert describe_exit(-11) == "killed by signal SIGSEGV (11)"


@pytest.mark.slow
def test_conformance_run_isolates_a_plugin_by_default_so_an_abort_is_one_crashed_case(
    plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from conformance.cli import main

    (tmp_path / "abort_on_groups3.py").write_text(
        textwrap.dedent("""
        import os
        from reference_impl import conv2d as _reference

        def conv2d(input, weight, bias=None, groups=1, **kw):
            if groups == 3:
                os.abort()
            return _reference(input, weight, bias, groups=groups, **kw)
    """)
    )
    # no --isolate: `conformance run` runs every plug-in in a worker unless told --no-isolate
    status = main(
        [
            "run",
            str(ROOT / "cases" / "seed"),
            "--impl",
            f"{tmp_path / 'abort_on_groups3.py'}:conv2d",
            "-q",
            "--json",
            str(tmp_path / "run.json"),
        ]
    )
    assert status == 1
    results = {case["name"]: case for case in json.loads((tmp_path / "run.json").read_text())["cases"]}
    assert results["seed/groups3"]["status"] == "failed" and results["seed/groups3"]["kind"] == "crashed"
    assert "SIGABRT" in results["seed/groups3"]["message"]
    assert results["seed/groups2"]["status"] == "passed" and results["seed/out18_groups2"]["status"] == "passed"


@pytest.mark.slow
def test_a_refusal_type_of_the_plugin_counts_when_the_plugin_runs_in_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from conformance.cli import main

    # A module this test process never imports: only the worker knows its ConvError class.
    (tmp_path / "worded_refusals.py").write_text(
        textwrap.dedent('''
        from reference_impl import conv2d as _reference

        class ConvError(Exception):
            """This library's refusal: not a ValueError or RuntimeError."""

        def conv2d(input, weight, bias=None, **kwargs):
            try:
                return _reference(input, weight, bias, **kwargs)
            except ValueError as exc:
                raise ConvError(f"layer rejected: {exc}") from None
    ''')
    )
    monkeypatch.chdir(tmp_path)
    errors = str(ROOT / "cases" / "errors" / "not_divisible.yaml")
    assert (
        main(["run", errors, "--impl", "worded_refusals:conv2d", "-q", "--refusal-type", "worded_refusals.ConvError"])
        == 0
    )
    assert "worded_refusals" not in sys.modules
    assert main(["run", errors, "--impl", "worded_refusals:conv2d", "-q"]) == 1  # undeclared: a crash
    assert "crashed" in capsys.readouterr().out
