"""Where the bundled case library is, and which version of it this is.

The case library is the top-level ``cases/`` folder of the repository. A built package (wheel)
carries a copy of it as ``conformance/case_library/`` (setup.py's build step puts it there), so
``pip install groups-conformance`` followed by ``conformance run --impl mylib:conv2d`` works from
any folder. In a checkout (editable install or plain ``PYTHONPATH``) the library is ``cases/``
itself, so edits to a case are seen at once.

The version ties a library to the harness that ships it: the package version plus a hash of the
case files' names and bytes. A copy exported with ``conformance cases --export`` and left alone
hashes the same; an edited copy does not, which is how results from a modified library can be
told apart from results over the harness's own::

    >>> bundled_cases_path().name in ("cases", "case_library")
    True
    >>> library_version().startswith(package_version() + "+cases.")
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from conformance.cases.loader import CASE_SUFFIXES

DISTRIBUTION = "groups-conformance"
# The packaged copy's folder inside the `conformance` package; setup.py writes the same name.
PACKAGED_FOLDER = "case_library"
# Written into an exported copy, so the copy says which library it came from.
VERSION_FILE = "LIBRARY_VERSION"
HASH_LENGTH = 12  # hex digits of sha256: plenty to tell two libraries apart, short enough to read

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the conformance package


class LibraryNotFoundError(FileNotFoundError):
    """Neither a packaged copy nor a checkout's cases/ folder exists (a broken install)."""


def bundled_cases_path() -> Path:
    """The case library that ships with this harness: the packaged copy, else the checkout's cases/.

    The packaged copy is looked for first: it exists only in a built (non-editable) install,
    where there is no checkout around it.
    """
    packaged = _PACKAGE_DIR / PACKAGED_FOLDER
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE_DIR.parent / "cases"
    if checkout.is_dir() and (_PACKAGE_DIR.parent / "pyproject.toml").is_file():
        return checkout
    raise LibraryNotFoundError(
        f"no case library: neither {packaged} (an installed package) nor {checkout} (a checkout) exists; "
        f"reinstall {DISTRIBUTION} or pass the cases folder explicitly"
    )


def default_cases() -> str:
    """The folder a run reads when given no paths: the bundled case library."""
    return str(bundled_cases_path())


def package_version() -> str:
    """The installed distribution's version; ``0+unknown`` when run from a checkout never installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def case_files(root: Path) -> list[Path]:
    """Every case file under ``root`` (a folder or a single file), sorted by relative path."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(
        (p for p in root.rglob("*") if p.suffix in CASE_SUFFIXES and p.is_file()),
        key=lambda p: p.relative_to(root).as_posix(),
    )


def content_hash(roots: Iterable[Path | str]) -> str:
    """A short sha256 over the case files' relative paths and bytes under each root.

    Renaming, adding, removing or editing a case file changes it; where the folder lives does not.
    """
    digest = hashlib.sha256()
    for root in map(Path, roots):
        base = root.parent if root.is_file() else root
        for file in case_files(root):
            digest.update(file.relative_to(base).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()[:HASH_LENGTH]


@lru_cache(maxsize=1)
def library_version() -> str:
    """The bundled library's version: ``<package version>+cases.<content hash>``."""
    return f"{package_version()}+cases.{content_hash([bundled_cases_path()])}"


def describe_cases(paths: Iterable[Path | str]) -> str:
    """What to record about the cases a run used: the library version when they are the bundled
    library (or an unmodified copy of it), else ``custom+cases.<hash>`` of the given paths.

    >>> describe_cases([bundled_cases_path()]) == library_version()
    True
    """
    folders = [Path(p) for p in paths]
    digest = content_hash(folders)
    if len(folders) == 1 and folders[0].is_dir() and digest == library_version().rpartition(".")[2]:
        return library_version()
    return f"custom+cases.{digest}"
