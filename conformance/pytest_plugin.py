"""pytest integration: every YAML case under the cases folder becomes one test item.

Loaded from the project's ``conftest.py`` (``pytest_plugins = ["conformance.pytest_plugin"]``).
A broken case file becomes a failing item of its own, with the file, line and snippet; it never
breaks collection. Failures print the domain report instead of a traceback.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from .devices import DEVICES, DeviceError, configure_device
from .errors import CaseError
from .implementations import ImplementationLoadError, Implementation, load_implementation
from .loader import CASE_SUFFIXES, load_file
from .report import format_failure
from .runner import PASSED, SKIPPED, CaseResult, error_result, run_case
from .schema import Case

IMPLEMENTATION_KEY = pytest.StashKey[Implementation]()
DEVICE_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "grouped-convolution conformance cases")
    group.addoption("--impl", metavar="MODULE:FUNCTION", default=None,
                    help="check this convolution instead of the reference (F.conv2d signature over NumPy arrays)")
    group.addoption("--device", choices=DEVICES, default="cpu", help="where torch runs for the cases (default: cpu)")
    group.addoption("--allow-tf32", action="store_true", help="on cuda, leave TF32 on (off by default)")
    parser.addini("conformance_cases", "folders whose YAML files are conformance cases", type="paths",
                  default=["cases"])


def pytest_configure(config: pytest.Config) -> None:
    try:
        config.stash[IMPLEMENTATION_KEY] = load_implementation(config.getoption("--impl"))
        config.stash[DEVICE_KEY] = config.getoption("--device")
        configure_device(config.stash[DEVICE_KEY], config.getoption("--allow-tf32"))
    except (ImplementationLoadError, DeviceError) as exc:
        raise pytest.UsageError(str(exc)) from None


def case_roots(config: pytest.Config) -> list[Path]:
    """The configured case folders (ini option ``conformance_cases``), relative to the rootdir."""
    return [(config.rootpath / Path(p)).resolve() for p in config.getini("conformance_cases")]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in CASE_SUFFIXES:
        return None
    resolved = file_path.resolve()
    if any(root == resolved or root in resolved.parents for root in case_roots(parent.config)):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    """One YAML file: one item per case (per YAML document)."""

    def collect(self) -> Iterator[pytest.Item]:
        for entry in load_file(self.path):
            if isinstance(entry, CaseError):
                yield BrokenCaseItem.from_parent(self, name=entry.case_name or self.path.name, error=entry)
                continue
            item = CaseItem.from_parent(self, name=entry.name, case=entry)
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
        self.result = run_case(self.case, self.config.stash[IMPLEMENTATION_KEY], self.config.stash[DEVICE_KEY])
        if self.result.status == SKIPPED:
            pytest.skip(self.result.message)
        if self.result.status != PASSED:
            raise ConformanceFailure(self.result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            return format_failure(excinfo.value.result)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"case {self.name}"


class BrokenCaseItem(pytest.Item):
    """A case file (or document) that could not be loaded: fails with the file, line and snippet."""

    def __init__(self, *, error: CaseError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseError):
            return format_failure(error_result(excinfo.value))
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        line = next((p.line for p in self.error.problems if p.line), 1)
        return self.path, line - 1, f"broken case {self.name}"
