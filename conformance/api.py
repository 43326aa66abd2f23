"""The Python API: gate a convolution from any test framework.

>>> from conformance import check
>>> report = check("reference_impl:conv2d", cases=["cases/seed/groups2.yaml", "cases/seed/groups3.yaml"])
>>> report.passed, len(report)
(True, 2)
>>> [(r.name, r.status, r.kind) for r in report][0]
('seed/groups2', 'passed', None)

``assert report.passed, report`` prints the failures' domain reports and the summary line.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from conformance.cases import library
from conformance.cases.errors import CaseError
from conformance.cases.library import default_cases, library_version
from conformance.cases.loader import LoadResult, load_cases
from conformance.judging.outcomes import FAILED, PASSED
from conformance.judging.xfail import XfailEntry, XfailList, load_xfail_files
from conformance.reporting.terminal import checked_nothing, format_failure, run_succeeded, summary_line
from conformance.running.implementations import Implementation, load_implementation
from conformance.running.isolation import DEFAULT_TIMEOUT
from conformance.running.runner import CaseResult, CaseRunner, error_result


@dataclass
class Report:
    """The verdicts of one run: iterate it for the per-case results (``name``, ``status``,
    ``kind``, ``message``); ``passed`` says whether the gate is green; ``str()`` is the report."""

    results: list[CaseResult]
    implementation: Implementation
    unused_xfails: list[XfailEntry] = field(default_factory=list)
    library_version: str | None = None
    environment: dict[str, str] = field(default_factory=dict)  # the facts the verdicts were reached under
    isolated: bool = False  # whether the implementation ran in a crash-isolating worker process

    @property
    def passed(self) -> bool:
        """True when nothing failed (xfailed and skipped cases allowed) and at least one case was
        checked: a report of only skipped cases (a plug-in lacking every op selected) is not a pass."""
        return not checked_nothing(self.results) and bool(self.results) and run_succeeded(self.results)

    @property
    def failures(self) -> list[CaseResult]:
        return [result for result in self.results if result.status not in (PASSED, "skipped", "xfailed")]

    def __iter__(self) -> Iterator[CaseResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __str__(self) -> str:
        if not self.results:
            return f"no case selected: nothing was checked for {self.implementation.name}"
        lines = [format_failure(result) for result in self.failures]
        lines += [f"xfail entry matches no case: {entry.label!r} ({entry.location})" for entry in self.unused_xfails]
        lines.append(f"{self.implementation.name}: {summary_line(self.results)}")
        return "\n".join(lines)


def check(
    function_or_spec: str | Callable[..., Any] | Any,
    *,
    arrays: str | None = None,
    device: str = "cpu",
    cases: str | Path | Sequence[str | Path] | None = None,
    xfail: str | Path | Sequence[str | Path] | None = None,
    strict_errors: bool = False,
    refusal_types: Sequence[str | type] = (),
    allow_unsupported: bool = False,
    keyword: str | None = None,
    torch_device: str = "cpu",
    isolate: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Report:
    """Run the case library (or ``cases``: files or folders) through a convolution and torch.

    ``function_or_spec``: a conv2d function, a module object, or an ``--impl`` spec string
    ("mymod", "mymod:conv2d", "path/file.py:conv2d", a built-in name). ``arrays``: numpy, torch or
    jax (None: the module's ``ARRAYS``, else numpy); ``device``: where torch/jax arrays are put for it;
    ``xfail``: xfail files; ``strict_errors``: judge the wording of refusals too;
    ``refusal_types``: more deliberate-refusal exception types; ``keyword``: only cases whose
    name contains it; ``torch_device``: where the torch oracle runs.

    ``isolate`` (default True): the implementation runs in a worker process
    (conformance/running/isolation.py), as in ``conformance run``, so a signal, an exit or a hang
    (longer than ``timeout`` seconds) in one case is that case ``crashed`` and the run goes on. A
    function or module the worker cannot import again by name (defined in ``__main__`` or inside a
    function) runs in this process, with a warning saying so; ``isolate=False`` always does (a
    debugger works). The reference always runs here.
    """
    paths = [cases] if isinstance(cases, (str, Path)) else list(cases or [])
    items = select(paths, keyword)  # first: a wrong path fails before a worker is started
    xfails = (
        xfail
        if isinstance(xfail, XfailList)
        else load_xfail_files([xfail] if isinstance(xfail, (str, Path)) else list(xfail or []))
    )
    options: dict[str, Any] = dict(arrays=arrays, device=device, refusal_types=tuple(refusal_types))
    spec = importable_spec(function_or_spec) if isolate and function_or_spec is not None else None
    implementation: Any
    if spec is not None:
        from conformance.running.isolation import IsolatedImplementation

        implementation = IsolatedImplementation(spec, timeout=timeout, **options)
    else:
        if isolate and function_or_spec is not None:
            warnings.warn(
                f"check(): {function_or_spec!r} cannot be imported again by name in a worker process, so it "
                "runs in this process: a crash in it ends the run (define it in an importable module to isolate it)",
                stacklevel=2,
            )
        implementation = load_implementation(function_or_spec, **options)
    try:
        from conformance.judging.environment import environment_facts

        xfails.facts = environment = environment_facts(implementation)
        results = run_all(
            items,
            implementation,
            torch_device,
            strict_errors=strict_errors,
            allow_unsupported=allow_unsupported,
            xfails=xfails,
        )
    finally:
        close = getattr(implementation, "close", None) if spec is not None else None
        if close is not None:
            close()
    unused = xfails.unused(results, whole_library=not paths and not keyword, keyword=keyword)
    return Report(results, implementation, unused, library_version(), environment, isolated=spec is not None)


def importable_spec(function_or_spec: Any) -> str | None:
    """An ``--impl`` spec a worker process can load ``function_or_spec`` from, or None when there is
    none: a spec string as it is; a module by its name (or its file); a function by
    ``module:qualified.name``. Code in ``__main__`` has none (a worker importing a script would run
    it again), nor has a function defined inside another.

    >>> import reference_impl
    >>> importable_spec(reference_impl.conv2d), importable_spec(reference_impl), importable_spec(lambda: 0)
    ('reference_impl.vectorized:conv2d', 'reference_impl', None)
    """
    if isinstance(function_or_spec, str):
        return function_or_spec
    if isinstance(function_or_spec, ModuleType):
        return _module_spec(function_or_spec)
    module = sys.modules.get(getattr(function_or_spec, "__module__", None) or "")
    qualified = getattr(function_or_spec, "__qualname__", "")
    if module is None or not qualified or "<" in qualified:  # <lambda>, <locals>
        return None
    module_spec = _module_spec(module)
    if module_spec is None:
        return None
    found: Any = module
    for part in qualified.split("."):
        found = getattr(found, part, None)
    return f"{module_spec}:{qualified}" if found is function_or_spec else None


def _module_spec(module: ModuleType) -> str | None:
    name = module.__name__
    if name == "__main__":
        return None
    if name.startswith("conformance_plugin_") and getattr(module, "__file__", None):
        return str(module.__file__)  # loaded from a file by --impl path.py: load it from the file again
    return name if name in sys.modules and getattr(module, "__spec__", None) is not None else None


def select(paths: Sequence[str | Path], keyword: str | None = None) -> list[LoadResult]:
    """The cases under ``paths`` (default: the bundled library) whose name contains ``keyword``."""
    items = load_cases([str(p) for p in paths] or [default_cases()])
    if keyword:
        needle = keyword.lower()
        items = [item for item in items if needle in _name(item).lower()]
    return items


def run_all(
    items: Iterable[LoadResult],
    implementation: Implementation,
    device: str = "cpu",
    *,
    strict_errors: bool = False,
    allow_unsupported: bool = False,
    xfails: XfailList | None = None,
    repro_dir: str | Path | None = None,
    rerun_options: Sequence[str] = (),
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Run every item (a broken case file becomes an error result), apply the xfail list, write a
    repro for each failure into ``repro_dir``; ``on_result`` sees each result as it is settled."""
    if xfails and xfails.facts is None:  # `when:` is judged with the implementation's own settings too
        from conformance.judging.environment import environment_facts

        xfails.facts = environment_facts(implementation)
    results = []
    runner = CaseRunner(implementation, device, strict_errors=strict_errors, allow_unsupported=allow_unsupported)
    for item in items:
        result = error_result(item) if isinstance(item, CaseError) else runner.run(item)
        if xfails:
            xfails.apply(result)
        if repro_dir is not None and result.status == FAILED:
            from conformance.reporting.repro import write_repro  # only when asked for

            write_repro(result, implementation, Path(repro_dir), rerun_options)
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results


def _name(item: LoadResult) -> str:
    return (item.case_name or str(item.file)) if isinstance(item, CaseError) else item.name


def describe_cases(paths: Sequence[str | Path]) -> str:
    """What the cases of a run are: the library's version when they are the bundled library (or an
    unmodified copy), else ``custom+cases.<hash>`` (conformance.cases.library)."""
    return library.describe_cases([Path(p) for p in paths] or [Path(default_cases())])
