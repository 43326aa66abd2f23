"""``conformance cases``: where the bundled case library is, what it holds; ``--export DIR`` copies it.

The library ships inside the package (conformance/cases/library.py), so after ``pip install`` a user
can run it without a checkout; exporting gives them a copy to read, extend or pin in their repo.
"""

from __future__ import annotations

import argparse
import shutil
from collections import Counter
from pathlib import Path

from conformance.cases.errors import CaseError
from conformance.cases.library import (
    VERSION_FILE,
    LibraryNotFoundError,
    bundled_cases_path,
    case_files,
    content_hash,
    library_version,
)
from conformance.cases.loader import load_cases
from conformance.commands import UsageError, guarded


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cases",
        help="show where the bundled case library is and what it holds; --export copies it",
        description="Print the bundled case library's location, version and size (cases and files per "
        "folder). With --export DIR, copy it to DIR (which must not exist or be empty).",
    )
    parser.add_argument("--export", metavar="DIR", help="copy the bundled case library into DIR")
    parser.set_defaults(handler=guarded(cases_command))


def cases_command(args: argparse.Namespace) -> int:
    try:
        library = bundled_cases_path()
    except LibraryNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if args.export:
        target = export_library(library, Path(args.export))
        print(f"exported the case library {library_version()} ({len(case_files(target))} case files) to {target}")
        return 0
    print(describe_library(library))
    return 0


def describe_library(library: Path) -> str:
    """Location, version, and the number of cases and files per top-level folder.

    >>> print(describe_library(bundled_cases_path()))  # doctest: +ELLIPSIS
    case library: .../cases
    version: ...+cases...
    ... cases in ... files
    ...
    """
    items = load_cases([library])
    files = case_files(library)
    broken = sum(isinstance(item, CaseError) for item in items)
    cases_per_folder = Counter(_folder(library, item.file) for item in items if not isinstance(item, CaseError))
    files_per_folder = Counter(_folder(library, file) for file in files)
    lines = [
        f"case library: {library}",
        f"version: {library_version()}",
        f"{len(items) - broken} cases in {len(files)} files" + (f" ({broken} broken)" if broken else ""),
    ]
    width = max((len(folder) for folder in files_per_folder), default=0)
    for folder in sorted(files_per_folder):
        lines.append(f"  {folder:<{width}}  {cases_per_folder[folder]:>4} cases  {files_per_folder[folder]:>3} files")
    lines.append("run it: conformance run --impl MODULE:FUNCTION   (no PATH: this library)")
    return "\n".join(lines)


def _folder(library: Path, file: Path) -> str:
    """The top-level folder of a case file inside the library ('.' for a file at its root)."""
    parts = Path(file).resolve().relative_to(library.resolve()).parts
    return parts[0] if len(parts) > 1 else "."


def export_library(library: Path, target: Path) -> Path:
    """Copy every file of the library into ``target`` and record the version it came from.

    ``target`` must not exist or be an empty folder: an export never overwrites anyone's cases.
    The copy's content hash equals the library's until someone edits it
    (conformance.cases.library.describe_cases tells the two apart).
    """
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"--export {target}: already exists and is not an empty folder; choose a new folder")
    shutil.copytree(
        library, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", VERSION_FILE)
    )
    (target / VERSION_FILE).write_text(
        f"{library_version()}\n"
        f"# Exported by `conformance cases --export`. The content hash of this folder's case files was "
        f"{content_hash([target])}\n# when exported; `conformance.cases.library.describe_cases` recomputes it.\n"
    )
    return target
