"""Subcommands of the ``conformance`` command line, one module each."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..errors import CaseError
from ..implementations import ImplementationLoadError, Implementation, load_implementation
from ..loader import LoadResult, load_cases

DEFAULT_CASES = "cases"


class UsageError(Exception):
    """A problem with the command line itself (exit status 2)."""


def add_paths_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help=f"case files or folders (default: {DEFAULT_CASES}/)")


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    add_paths_argument(parser)
    parser.add_argument("--impl", metavar="MODULE:FUNCTION",
                        help="the convolution to check instead of the reference (F.conv2d signature over NumPy arrays)")
    parser.add_argument("-k", dest="keyword", metavar="SUBSTRING", help="only cases whose name contains SUBSTRING")


def select_cases(paths: Sequence[str], keyword: str | None = None) -> list[LoadResult]:
    """Load the cases under ``paths`` (default cases/), keeping those whose name contains ``keyword``."""
    paths = list(paths) or [DEFAULT_CASES]
    try:
        items = load_cases(paths)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if keyword:
        needle = keyword.lower()
        items = [item for item in items if needle in _name(item).lower()]
    return items


def _name(item: LoadResult) -> str:
    return (item.case_name or str(item.file)) if isinstance(item, CaseError) else item.name


def implementation_from(args: argparse.Namespace) -> Implementation:
    try:
        return load_implementation(getattr(args, "impl", None))
    except ImplementationLoadError as exc:
        raise UsageError(str(exc)) from None


def guarded(handler):
    """Turn UsageError into a message and exit status 2."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except UsageError as exc:
            print(f"conformance: error: {exc}", file=sys.stderr)
            return 2

    wrapper.__doc__ = handler.__doc__
    return wrapper


def ensure_parent(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
