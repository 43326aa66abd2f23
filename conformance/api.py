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

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.cases.errors import CaseError
from conformance.cases.loader import LoadResult, load_cases
from conformance.judging.outcomes import FAILED, PASSED
from conformance.judging.xfail import XfailEntry, XfailList, load_xfail_files
from conformance.reporting.terminal import checked_nothing, format_failure, run_succeeded, summary_line
from conformance.running.implementations import Implementation, load_implementation
from conformance.running.runner import CaseResult, error_result, run_case


@dataclass
class Report:
    """The verdicts of one run: iterate it for the per-case results (``name``, ``status``,
    ``kind``, ``message``); ``passed`` says whether the gate is green; ``str()`` is the report."""

    results: list[CaseResult]
    implementation: Implementation
    unused_xfails: list[XfailEntry] = field(default_factory=list)
    library_version: str | None = None

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
        lines += [f"xfail entry matches no case: {entry.case!r} ({entry.location})" for entry in self.unused_xfails]
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
) -> Report:
    """Run the case library (or ``cases``: files or folders) through a convolution and torch.

    ``function_or_spec``: a conv2d function, a module object, or an ``--impl`` spec string
    ("mymod", "mymod:conv2d", "path/file.py:conv2d", a built-in name). ``arrays``: numpy, torch or
    jax (None: the module's ``ARRAYS``, else numpy); ``device``: where torch/jax arrays are put for it;
    ``xfail``: xfail files; ``strict_errors``: judge the wording of refusals too;
    ``refusal_types``: more deliberate-refusal exception types; ``keyword``: only cases whose
    name contains it; ``torch_device``: where the torch oracle runs.
    """
    implementation = load_implementation(
        function_or_spec, arrays=arrays, device=device, refusal_types=tuple(refusal_types)
    )
    paths = [cases] if isinstance(cases, (str, Path)) else list(cases or [])
    items = select(paths, keyword)
    xfails = (
        xfail
        if isinstance(xfail, XfailList)
        else load_xfail_files([xfail] if isinstance(xfail, (str, Path)) else list(xfail or []))
    )
    results = run_all(
        items,
        implementation,
        torch_device,
        strict_errors=strict_errors,
        allow_unsupported=allow_unsupported,
        xfails=xfails,
    )
    return Report(results, implementation, xfails.unused(results), library_version())


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
    results = []
    for item in items:
        if isinstance(item, CaseError):
            result = error_result(item)
        else:
            result = run_case(
                item, implementation, device, strict_errors=strict_errors, allow_unsupported=allow_unsupported
            )
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


def default_cases() -> str:
    """The bundled case library (conformance.cases.library), or cases/ where that module is absent."""
    try:
        from conformance.cases.library import bundled_cases_path
    except ImportError:
        return "cases"
    return str(bundled_cases_path())


def library_version() -> str | None:
    """The bundled case library's version, recorded in results; None where it is unknown."""
    try:
        from conformance.cases.library import library_version as version
    except ImportError:
        return None
    return version()


def describe_cases(paths: Sequence[str | Path]) -> str | None:
    """What the cases of a run are: the library's version when they are the bundled library (or an
    unmodified copy), else ``custom+cases.<hash>`` (conformance.cases.library); None where that is unknown."""
    try:
        from conformance.cases.library import describe_cases as describe
    except ImportError:
        return None
    return describe([Path(p) for p in paths] or [Path(default_cases())])
