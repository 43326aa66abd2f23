"""Find case files and load every case in them; a broken case never hides the others."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from conformance.cases.errors import CaseError, Problem
from conformance.cases.schema import Case, default_case_name, parse_case
from conformance.cases.sweep import expand_sweep
from conformance.cases.yaml_loader import load_documents

CASE_SUFFIXES = (".yaml", ".yml")
LoadResult = Case | CaseError

# Seconds each loaded case cost to load: its file's parse time shared equally among the file's
# cases, keyed by (file, case name) (a Case is unhashable). Read by the runner for the "load" stage.
_LOAD_SECONDS: dict[tuple[str, str], float] = {}


def load_seconds(case: Case) -> float:
    """This case's share of the time its file took to load (0.0 for a case built in code)."""
    return _LOAD_SECONDS.get((str(case.file), case.name), 0.0)


def find_case_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` file under ``paths`` (files are taken as given), sorted.

    Raises ``FileNotFoundError`` for a path that does not exist.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in CASE_SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such case file or folder: {path}")
    return files


def load_file(file: Path) -> list[LoadResult]:
    """All cases of one file, in order; each broken document becomes a CaseError in its place."""
    start = time.perf_counter()
    results = _parse_file(file)
    share = (time.perf_counter() - start) / max(1, len(results))
    for item in results:
        if isinstance(item, Case):
            _LOAD_SECONDS[(str(item.file), item.name)] = share
    return results


def _parse_file(file: Path) -> list[LoadResult]:
    base = default_case_name(file)
    documents = list(load_documents(file))
    several = len(documents) > 1
    results: list[LoadResult] = []
    for item in documents:
        if isinstance(item, CaseError):
            item.case_name = item.case_name or base
            results.append(item)
            continue
        default_name = f"{base}#{item.index}" if several else base
        try:
            expansions = expand_sweep(item, file, default_name)  # a document without `sweep:` is one case
        except CaseError as exc:
            results.append(exc)
            continue
        for document, name in expansions:
            try:
                results.append(parse_case(document, file, name))
            except CaseError as exc:
                exc.case_name = exc.case_name or name
                results.append(exc)
    if not documents:
        results.append(CaseError(file, [Problem((), "the file holds no case")], case_name=base))
    return results


def load_cases(paths: Iterable[str | Path]) -> list[LoadResult]:
    """Every case under ``paths``; a name used twice is an error on the second use."""
    seen: dict[str, Case] = {}
    results: list[LoadResult] = []
    for file in find_case_files(paths):
        for item in load_file(file):
            if isinstance(item, Case):
                if item.name in seen:
                    first = seen[item.name]
                    item = CaseError(
                        file,
                        [
                            Problem(
                                ("name",),
                                f"duplicate case name {item.name!r}: first defined at {first.location}",
                                item.line,
                            )
                        ],
                        case_name=item.name,
                    )
                else:
                    seen[item.name] = item
            results.append(item)
    return results
