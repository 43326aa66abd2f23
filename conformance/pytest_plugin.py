"""pytest integration: conformance cases as test items, in this project and in anyone's repo.

Registered through the ``pytest11`` entry point as ``conformance.pytest_plugin``, the name conftest
files use, so a ``conftest.py`` that also lists it in ``pytest_plugins`` does not register it twice.
pytest loads it in every session of everyone who has the package installed, so importing it must
stay cheap: ``import conformance`` loads its public names only on first use (no torch, no NumPy),
and this module imports the harness only once asked. It does nothing, and imports nothing heavy,
unless asked in one of two ways:

* **Gate mode**, for people checking their own convolution from their own repo::

      pytest --conv-impl mylib.conv:conv2d [--conv-arrays torch] [--conv-impl-device cuda]
             [--conv-xfail known.yaml] [--conv-cases PATH] [--conv-strict-errors] ...

  adds every case of the bundled library (or of ``--conv-cases``) as one test item each, wherever
  those files are (site-packages included), judged exactly as ``conformance run`` judges it
  (``conformance.running.runner.run_case`` with the same options, then the xfail list's verdict). Listed
  cases that fail are pytest ``xfailed``; listed cases that pass fail as ``[XPASS(strict)]``. The
  implementation runs in a crash-isolating worker process by default, as in ``conformance run``
  (``--conv-no-isolate`` calls it in-process), so a signal, exit or hang is that case ``crashed``
  and the session, its report and its JUnit file go on.
  Collecting no case at all is a usage error, so a typo in a path can never make the gate pass
  vacuously.

* **The project's own suite** (``make test``): the ini option ``conformance_cases`` (set in this
  project's pyproject.toml; without it, ``cases/`` when a conftest.py lists
  ``pytest_plugins = ["conformance.pytest_plugin"]``) names the folders whose YAML files are
  cases; they run through the reference (or ``--conv-impl``) like any other test file, so
  ``pytest cases/seed`` and ``-k`` work as usual, and ``pytest benchmarks/... --conv-impl X``
  adds no case items.

A broken case file becomes a failing item of its own, with the file, line and snippet; it never
breaks collection. Failures print the domain report instead of a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the harness (torch, NumPy) is imported only once the plugin is asked for
    from _pytest._code.code import TerminalRepr

    from conformance.cases.schema import Case
    from conformance.running.implementations import Implementation
    from conformance.running.runner import CaseResult

__all__ = [
    "ARRAY_KINDS",
    "CASE_MARK",
    "DEFAULT_PROJECT_CASES",
    "DEFAULT_TIMEOUT",
    "DEVICE_KEY",
    "GATE_OPTIONS",
    "IMPLEMENTATION_KEY",
    "ORACLE_DEVICES",
    "OUTSIDE_ROOTDIR_PREFIX",
    "PLUGIN_NAME",
    "STATE_KEY",
    "THREADS_KEY",
    "BrokenCaseItem",
    "CaseFile",
    "CaseItem",
    "ConformanceFailure",
    "GateState",
    "case_roots",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_report_header",
    "pytest_sessionstart",
    "pytest_terminal_summary",
    "pytest_unconfigure",
]

ORACLE_DEVICES = ("cpu", "cuda")
ARRAY_KINDS = ("numpy", "torch", "jax")
# Every case item carries this mark: `-m conv_case` runs only the cases, `-m "not conv_case"` none of them.
CASE_MARK = "conv_case"
# Where cases from outside the rootdir (the bundled library in site-packages) appear in node ids.
OUTSIDE_ROOTDIR_PREFIX = "conv-cases"


@dataclass
class GateState:
    """Everything the items need, built once in pytest_configure."""

    implementation: Implementation
    device: str  # where torch, the oracle, runs
    roots: list[Path]  # case folders or files
    # Roots collected even where pytest's own walk does not reach them (--conv-cases, the bundled
    # library in site-packages); the ini option's roots are collected only where the walk goes, like
    # any test file, so `pytest benchmarks/...` in this project does not add the cases.
    ensured_roots: list[Path]
    judgment: dict[str, Any] = field(default_factory=dict)  # run_case keyword options
    xfails: Any = None  # conformance.judging.xfail's list, when --conv-xfail was given
    walked: set[Path] = field(default_factory=set)  # case files pytest's walk collected
    case_names: list[str] = field(default_factory=list)
    collected: list[Any] = field(default_factory=list)  # every collected case (a Case, or a name for a broken one)
    whole_library: bool = True  # no --conv-cases: the bundled library (for reporting stale xfail entries)
    environment: dict[str, str] = field(default_factory=dict)  # conformance.judging.environment's facts
    runner: Any = None  # conformance.running.runner.CaseRunner, made on the first case

    def owns(self, file_path: Path) -> bool:
        from conformance.cases.loader import CASE_SUFFIXES

        if file_path.suffix not in CASE_SUFFIXES:
            return False
        resolved = file_path.resolve()
        return any(root == resolved or root in resolved.parents for root in self.roots)

    def run(self, case: Case) -> CaseResult:
        """The case's verdict, as `conformance run` gives it with the same options."""
        if self.runner is None:  # one runner for the session: torch's one-time costs are paid once
            from conformance.running.runner import CaseRunner

            self.runner = CaseRunner(self.implementation, self.device, **self.judgment)
        result = self.runner.run(case)
        return self.xfails.apply(result) if self.xfails is not None else result


PLUGIN_NAME = "conformance.pytest_plugin"  # the module, and the pytest11 entry point's name
# A conftest.py listing the plugin, without the ini option conformance_cases, collects this folder.
DEFAULT_PROJECT_CASES = "cases"
DEFAULT_TIMEOUT = 300.0  # seconds one isolated call may take (as `conformance run --timeout`)
# Options that mean nothing without --conv-impl (or this project's ini option), with their defaults:
# given alone, an error.
GATE_OPTIONS: dict[str, Any] = {
    "--conv-arrays": None,
    "--conv-impl-device": None,
    "--conv-cases": [],
    "--conv-xfail": [],
    "--conv-refusal-type": [],
    "--conv-strict-errors": False,
    "--conv-allow-unsupported": False,
    "--conv-threads": None,
    "--conv-device": "cpu",
    "--conv-allow-tf32": False,
    "--conv-isolate": False,
    "--conv-no-isolate": False,
    "--conv-timeout": DEFAULT_TIMEOUT,
}
STATE_KEY = pytest.StashKey[GateState]()
# Kept for benchmarks/test_case_benchmarks.py, which times the implementation under test.
IMPLEMENTATION_KEY = pytest.StashKey["Implementation"]()
DEVICE_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conv", "convolution conformance (groups-conformance); inert without --conv-impl")
    group.addoption(
        "--conv-impl",
        metavar="SPEC",
        default=None,
        help="the convolution to gate: MODULE:FUNCTION (a conv2d), path/file.py:FUNCTION, MODULE "
        "(its conv1d/conv2d/conv3d/conv_transpose*d functions) or a built-in adapter name; "
        "adds the case library's cases as test items",
    )
    group.addoption(
        "--conv-arrays",
        choices=ARRAY_KINDS,
        default=None,
        help="what the implementation takes and returns (default: the module's ARRAYS, else numpy)",
    )
    group.addoption(
        "--conv-impl-device",
        metavar="DEVICE",
        default=None,
        help="where the implementation's tensors live with --conv-arrays torch/jax (cpu, cuda, cuda:1, mps)",
    )
    group.addoption(
        "--conv-cases",
        metavar="PATH",
        action="append",
        default=[],
        help="case files or folders to gate with (repeatable; default: the ini option "
        "conformance_cases if set, else the case library bundled with the package)",
    )
    group.addoption(
        "--conv-xfail",
        metavar="FILE",
        action="append",
        default=[],
        help="YAML list of expected failures {case, reason, link?} (repeatable); strict: a listed "
        "case that passes fails",
    )
    group.addoption(
        "--conv-refusal-type",
        metavar="MODULE.TYPE",
        action="append",
        default=[],
        help="an exception type that counts as a deliberate refusal, besides ValueError and RuntimeError (repeatable)",
    )
    group.addoption(
        "--conv-strict-errors",
        action="store_true",
        help="also hold the implementation's error messages to the cases' match: patterns",
    )
    group.addoption(
        "--conv-allow-unsupported",
        action="store_true",
        help="an implementation raising NotImplementedError skips the case instead of failing it",
    )
    group.addoption(
        "--conv-threads",
        metavar="N",
        type=int,
        default=None,
        help="threads for torch, BLAS and the implementation (default: the machine's cores)",
    )
    group.addoption(
        "--conv-isolate",
        action="store_true",
        help="run the implementation in a worker process, so an abort, segfault or hang is a crashed "
        "case and the session goes on (the default for --conv-impl; the reference runs in-process)",
    )
    group.addoption(
        "--conv-no-isolate",
        action="store_true",
        help="call the implementation in the pytest process (a debugger works; a crash ends the session)",
    )
    group.addoption(
        "--conv-timeout",
        metavar="S",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds one isolated call may take before it counts as hung (default {DEFAULT_TIMEOUT:g})",
    )
    group.addoption(
        "--conv-device", choices=ORACLE_DEVICES, default="cpu", help="where torch, the oracle, runs (default: cpu)"
    )
    group.addoption("--conv-allow-tf32", action="store_true", help="on cuda, leave TF32 on (off by default)")
    parser.addini(
        "conformance_cases",
        "folders whose YAML files are conformance cases of this project's own "
        "suite (run through the reference unless --conv-impl is given)",
        type="paths",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    spec = config.getoption("conv_impl")
    project_roots = [Path(p).resolve() for p in config.getini("conformance_cases")]
    if not project_roots and _listed_by_a_conftest(config):
        project_roots = [(config.rootpath / DEFAULT_PROJECT_CASES).resolve()]
    if spec is None and not project_roots:
        given = [
            name
            for name, default in GATE_OPTIONS.items()
            if config.getoption(name.lstrip("-").replace("-", "_")) != default
        ]
        if given:
            raise pytest.UsageError(f"{', '.join(given)}: give --conv-impl SPEC too (the implementation to gate)")
        return  # inert: someone else's pytest session with this package installed
    try:
        state = _build_state(config, spec, project_roots)
    except _ConfigurationError as exc:
        raise pytest.UsageError(_pytest_option_names(str(exc))) from None
    config.stash[STATE_KEY] = state
    if config.getoption("conv_threads"):
        _set_threads(config, config.getoption("conv_threads"))
    if spec is not None:
        _record_environment(config, state)
    config.addinivalue_line("markers", f"{CASE_MARK}: a conformance case (conformance/pytest_plugin.py)")
    config.stash[IMPLEMENTATION_KEY] = state.implementation
    config.stash[DEVICE_KEY] = state.device


class _ConfigurationError(Exception):
    pass


def _listed_by_a_conftest(config: pytest.Config) -> bool:
    """Whether a conftest.py asks for this plugin by name (``pytest_plugins = [...]``): a project
    opting in to its own case folder, unlike the entry point, which loads it everywhere."""
    for plugin in config.pluginmanager.get_plugins():
        if Path(getattr(plugin, "__file__", None) or "").name != "conftest.py":
            continue
        listed = getattr(plugin, "pytest_plugins", ())
        if PLUGIN_NAME in ([listed] if isinstance(listed, str) else list(listed)):
            return True
    return False


def _pytest_option_names(message: str) -> str:
    """The shared loaders name the command line's options; here they are spelled --conv-...

    >>> _pytest_option_names("--impl-device cuda: NumPy arrays live on the cpu; use --arrays torch")
    '--conv-impl-device cuda: NumPy arrays live on the cpu; use --conv-arrays torch'
    """
    return re.sub(r"(?<![\w-])--(impl-device|impl|arrays|refusal-type|xfail|device)\b", r"--conv-\1", message)


THREADS_KEY = pytest.StashKey[Any]()


def _set_threads(config: pytest.Config, threads: int) -> None:
    """torch and NumPy's BLAS (and so the implementation) at ``threads`` for the session, as
    ``conformance run --threads`` sets them; restored in pytest_unconfigure."""
    from conformance.tools.machine import same_threads

    if threads < 1:
        raise pytest.UsageError(f"--conv-threads: expected a positive integer, got {threads}")
    context = same_threads(threads)
    config.stash[THREADS_KEY] = (context, context.__enter__())


def _record_environment(config: pytest.Config, state: GateState) -> None:
    """The environment facts (conformance.judging.environment), read once the threads are set: what
    ``when:`` in the xfail files is matched against, and (pytest_sessionstart) JUnit properties
    ``conformance.env.<fact>`` with ``--junitxml``, beside the implementation and the cases' version."""
    from conformance.judging.environment import environment_facts

    state.environment = environment_facts(state.implementation)
    if state.xfails is not None:
        state.xfails.facts = state.environment


def pytest_sessionstart(session: pytest.Session) -> None:
    """The JUnit file's properties, once pytest's junitxml plugin (configured after this one) is set up."""
    config = session.config
    state = config.stash.get(STATE_KEY, None)
    if state is None or config.getoption("conv_impl") is None:
        return
    from conformance.cases.library import describe_cases

    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # a pytest without it: the facts still judge `when:`
        return
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    xml.add_global_property("conformance.implementation", str(state.implementation.name))
    xml.add_global_property("conformance.isolated", "yes" if hasattr(state.implementation, "close") else "no")
    xml.add_global_property("conformance.cases", describe_cases(state.roots))
    for fact, value in state.environment.items():
        xml.add_global_property(f"conformance.env.{fact}", value)


def pytest_unconfigure(config: pytest.Config) -> None:
    entered = config.stash.get(THREADS_KEY, None)
    if entered is not None:
        entered[0].__exit__(None, None, None)
    state = config.stash.get(STATE_KEY, None)
    close = getattr(state.implementation, "close", None) if state is not None else None
    if callable(close):  # an isolated implementation's worker process
        close()


def _build_state(config: pytest.Config, spec: str | None, project_roots: list[Path]) -> GateState:
    from conformance.cases.library import LibraryNotFoundError, bundled_cases_path
    from conformance.running.devices import DeviceError, configure_device
    from conformance.running.implementations import ImplementationLoadError, load_implementation

    option = config.getoption
    # Only options the user set are passed on, so the defaults are the run command's own.
    implementation_options: dict[str, Any] = {
        name: value
        for name, value in (
            ("arrays", option("conv_arrays")),
            ("device", option("conv_impl_device")),
            ("refusal_types", tuple(option("conv_refusal_type"))),
        )
        if value
    }
    judgment = {
        name: True
        for name, value in (
            ("strict_errors", option("conv_strict_errors")),
            ("allow_unsupported", option("conv_allow_unsupported")),
        )
        if value
    }
    if option("conv_isolate") and option("conv_no_isolate"):
        raise _ConfigurationError("--conv-isolate and --conv-no-isolate: give one of them")
    try:
        # A plug-in runs in a worker by default, as in `conformance run`: a crash must not end the session
        # (and its JUnit file) for everyone. The reference, this project's own code, runs in-process.
        if option("conv_isolate") or (spec is not None and not option("conv_no_isolate")):
            implementation = _isolated(spec, option("conv_timeout"), implementation_options)
        else:
            implementation = load_implementation(spec, **implementation_options)
        configure_device(option("conv_device"), option("conv_allow_tf32"))
    except (ImplementationLoadError, DeviceError) as exc:
        raise _ConfigurationError(str(exc)) from None
    roots, ensured = project_roots, []
    if spec is not None and (option("conv_cases") or not project_roots):
        invocation_dir = config.invocation_params.dir
        try:
            roots = [(invocation_dir / p).resolve() for p in option("conv_cases")] or [bundled_cases_path()]
        except LibraryNotFoundError as exc:
            raise _ConfigurationError(str(exc)) from None
        missing = [str(root) for root in roots if not root.exists()]
        if missing:
            raise _ConfigurationError(f"--conv-cases: no such case file or folder: {', '.join(missing)}")
        ensured = roots
    xfails = None
    if option("conv_xfail"):
        from conformance.judging.xfail import XfailFileError, load_xfail_files

        try:
            xfails = load_xfail_files([(config.invocation_params.dir / p) for p in option("conv_xfail")])
        except (XfailFileError, FileNotFoundError) as exc:
            raise _ConfigurationError(str(exc)) from None
    return GateState(
        implementation,
        option("conv_device"),
        [root.resolve() for root in roots],
        [root.resolve() for root in ensured],
        judgment,
        xfails,
        whole_library=not option("conv_cases"),
    )


def _isolated(spec: str | None, timeout: float, options: dict[str, Any]) -> Any:
    """The implementation in a crash-isolating worker (conformance.running.isolation), as ``--isolate`` gives it."""
    try:
        from conformance.running.isolation import IsolatedImplementation
    except ImportError:
        raise _ConfigurationError(
            "--conv-impl: this installation has no conformance.running.isolation to run the implementation "
            "in (give --conv-no-isolate to run it in-process)"
        ) from None
    return IsolatedImplementation(spec, timeout=timeout, **options)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash.get(STATE_KEY, None)
    if state is None or config.getoption("conv_impl") is None:
        return []
    from conformance.cases.library import describe_cases

    entered = config.stash.get(THREADS_KEY, None)
    threads = f"; threads: torch {entered[1].torch}, BLAS {entered[1].blas}" if entered is not None else ""
    isolated = " (in a worker process)" if hasattr(state.implementation, "close") else ""
    return [
        f"conformance: gating {state.implementation.name}{isolated} against torch on {state.device}; "
        f"cases: {', '.join(map(str, state.roots))} ({describe_cases(state.roots)}){threads}"
    ]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    state = parent.config.stash.get(STATE_KEY, None)
    if state is None or not state.owns(file_path):
        return None
    state.walked.add(file_path.resolve())
    return CaseFile.from_parent(parent, path=file_path)


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect, so those select among the cases too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or config.getoption("conv_impl") is None:
        return
    from conformance.cases.library import case_files

    for root in state.ensured_roots:
        if any(root == walked or root in walked.parents for walked in state.walked):
            continue  # pytest's own walk reached this library (e.g. `pytest cases/seed` in a checkout)
        for file in case_files(root):
            collector = CaseFile.from_parent(session, path=file, nodeid=_node_id(config, root, file))
            items.extend(session.genitems(collector))
    cases = [item for item in items if isinstance(item, (CaseItem, BrokenCaseItem))]
    if not cases and state.ensured_roots:  # the ini's roots may rightly be out of this run's paths
        raise pytest.UsageError(
            f"--conv-impl {config.getoption('conv_impl')}: no conformance case collected from "
            f"{', '.join(map(str, state.roots))}; a gate that checks nothing would pass vacuously"
        )
    state.case_names = [item.name for item in cases]
    state.collected = [
        item.case if isinstance(item, CaseItem) else SimpleNamespace(name=item.name, case=None) for item in cases
    ]


def _node_id(config: pytest.Config, root: Path, file: Path) -> str:
    """The file's path relative to the rootdir, else ``conv-cases/<path inside the library>``."""
    try:
        return file.relative_to(config.rootpath).as_posix()
    except ValueError:
        inside = file.relative_to(root) if root.is_dir() else Path(file.name)
        return f"{OUTSIDE_ROOTDIR_PREFIX}/{inside.as_posix()}"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or state.xfails is None or not state.case_names:
        return
    # Matched against every collected case, so an entry for a case deselected with -k is not "unused";
    # with --conv-cases (part of a library), only entries reaching into those folders are judged.
    unused = state.xfails.unused(state.collected, whole_library=state.whole_library)
    if unused:
        terminalreporter.section("conformance: xfail entries matching no case")
        for entry in unused:  # worded as `conformance run` words it
            terminalreporter.line(
                f"xfail entry matches no case: {entry.label!r} ({entry.location}, reason: {entry.reason})"
            )


class CaseFile(pytest.File):
    """One YAML file: one item per case (per YAML document)."""

    def collect(self) -> Iterator[pytest.Item]:
        from conformance.cases.errors import CaseError
        from conformance.cases.loader import load_file

        for entry in load_file(self.path):
            if isinstance(entry, CaseError):
                broken = BrokenCaseItem.from_parent(self, name=entry.case_name or self.path.name, error=entry)
                broken.add_marker(CASE_MARK)
                yield broken
                continue
            item = CaseItem.from_parent(self, name=entry.name, case=entry)
            item.add_marker(CASE_MARK)
            for tag in entry.tags:
                self.config.addinivalue_line("markers", f"{tag}: cases tagged {tag!r}")
                item.add_marker(tag)
            yield item


class ConformanceFailure(Exception):
    """Raised by a case item that did not pass; carries the result for the report."""

    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.message)
        self.result = result


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.result: CaseResult | None = None

    def runtest(self) -> None:
        from conformance.running.runner import PASSED, SKIPPED, XFAILED

        self.result = self.config.stash[STATE_KEY].run(self.case)
        if self.result.status == SKIPPED:
            pytest.skip(self.result.message)
        if self.result.status == XFAILED:  # listed in an xfail file and failed: pytest's own xfailed
            pytest.xfail(self.result.message)
        if self.result.status != PASSED:
            raise ConformanceFailure(self.result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, ConformanceFailure):
            from conformance.reporting.terminal import format_failure
            from conformance.running.runner import XPASSED

            report = format_failure(excinfo.value.result)
            if excinfo.value.result.status == XPASSED:  # strict, as pytest reports a strict xfail that passed
                return f"[XPASS(strict)] {report}"
            return report
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"case {self.name}"


class BrokenCaseItem(pytest.Item):
    """A case file (or document) that could not be loaded: fails with the file, line and snippet."""

    def __init__(self, *, error: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        from conformance.cases.errors import CaseError

        if isinstance(excinfo.value, CaseError):
            from conformance.reporting.terminal import format_failure
            from conformance.running.runner import error_result

            return format_failure(error_result(excinfo.value))
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        line = next((p.line for p in self.error.problems if p.line), 1)
        return self.path, line - 1, f"broken case {self.name}"


def case_roots(config: pytest.Config) -> list[Path]:
    """The case folders this session runs: --conv-cases (or the bundled library) with --conv-impl,
    else the ini option ``conformance_cases``; empty when the plugin is inert."""
    state = config.stash.get(STATE_KEY, None)
    return list(state.roots) if state is not None else []
