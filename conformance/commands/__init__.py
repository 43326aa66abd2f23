"""Subcommands of the ``conformance`` command line, one module each."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from conformance.cases.errors import CaseError
from conformance.cases.library import (
    default_cases,
    library_version as library_version,  # for the commands
)
from conformance.cases.loader import LoadResult, load_cases
from conformance.running.arrays import ARRAY_KINDS
from conformance.running.implementations import Implementation, ImplementationLoadError, load_implementation

DEFAULT_CASES = "cases"  # in a checkout; an installed package has its own copy (conformance.cases.library)
EXIT_NO_CASES = 5  # as pytest's "no tests collected"


class UsageError(Exception):
    """A problem with the command line itself (exit status 2)."""


class NoCasesSelected(Exception):
    """The paths and -k selected no case at all (exit status 5): a typo must not pass as green."""


def positive_int(text: str) -> int:
    """An argparse ``type`` for counts: an integer of at least 1, else a usage error that says so.

    >>> positive_int("3")
    3
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_paths_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="case files or folders (default: the bundled case library)"
    )


def add_implementation_arguments(parser: argparse.ArgumentParser) -> None:
    """--impl and how it is called: --arrays, --impl-device, --refusal-type."""
    parser.add_argument(
        "--impl",
        metavar="SPEC",
        help="the convolution to check instead of the reference: MODULE (looked up: conv1d, conv2d, "
        "conv3d, conv_transpose1d/2d/3d), MODULE:FUNCTION (a conv2d), path/file.py[:FUNCTION], "
        "or a built-in name; torch.nn.functional signatures",
    )
    parser.add_argument(
        "--arrays",
        choices=ARRAY_KINDS,
        default=None,
        help="what the implementation takes and returns, in the case's real dtype: numpy "
        "(bfloat16 as ml_dtypes.bfloat16), torch tensors or jax arrays (default: the "
        "module's ARRAYS, else numpy)",
    )
    parser.add_argument(
        "--impl-device",
        metavar="DEVICE",
        default="cpu",
        help="where torch/jax arrays are put for the implementation: cpu, cuda, cuda:1, mps, ... "
        "(default: cpu); its result may be on any device",
    )
    parser.add_argument(
        "--refusal-type",
        metavar="MODULE.CLASS",
        action="append",
        default=[],
        help="an exception type that counts as a deliberate refusal of an invalid layer, "
        "besides ValueError and RuntimeError (repeatable)",
    )
    parser.add_argument(
        "--isolate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the implementation in a worker process: an abort, segfault or hang is a "
        "crashed case and the run goes on (default: on for a plug-in or built-in in "
        "`conformance run`, off elsewhere and for the reference)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="with --isolate: seconds one call may take before it counts as hung (default 300)",
    )


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    add_paths_argument(parser)
    add_implementation_arguments(parser)
    parser.add_argument("-k", dest="keyword", metavar="SUBSTRING", help="only cases whose name contains SUBSTRING")


def select_cases(paths: Sequence[str], keyword: str | None = None) -> list[LoadResult]:
    """Load the cases under ``paths`` (default: the bundled library), keeping those whose name
    contains ``keyword``."""
    paths = list(paths) or [default_cases()]
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


def implementation_options(args: argparse.Namespace) -> dict:
    """The load_implementation options the command line gave (all picklable, for a worker)."""
    return {
        "arrays": getattr(args, "arrays", None),
        "device": getattr(args, "impl_device", None) or "cpu",
        "refusal_types": tuple(getattr(args, "refusal_type", None) or ()),
    }


def wants_isolation(args: argparse.Namespace) -> bool:
    """--isolate / --no-isolate as given; else the command's default (``isolate_by_default``, set by
    `conformance run`: a crashing plug-in must never end the run) for anything but the reference,
    which is this project's own code and runs in-process."""
    if getattr(args, "isolate", None) is not None:
        return bool(args.isolate)
    return bool(getattr(args, "isolate_by_default", False)) and getattr(args, "impl", None) is not None


def implementation_from(args: argparse.Namespace) -> Implementation:
    try:
        if wants_isolation(args):
            from conformance.running.isolation import IsolatedImplementation  # only when asked for: it starts workers

            # An IsolatedImplementation offers Implementation's interface (a duck type, no common base).
            return IsolatedImplementation(  # type: ignore[return-value]
                getattr(args, "impl", None), timeout=args.timeout, **implementation_options(args)
            )
        return load_implementation(getattr(args, "impl", None), **implementation_options(args))
    except ImplementationLoadError as exc:
        raise UsageError(str(exc)) from None


def guarded(handler):
    """Turn UsageError into a message and exit status 2, NoCasesSelected into exit status 5."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except UsageError as exc:
            print(f"conformance: error: {exc}", file=sys.stderr)
            return 2
        except NoCasesSelected as exc:
            print(f"conformance: error: {exc}", file=sys.stderr)
            return EXIT_NO_CASES
        except OSError as exc:  # an output path that cannot be written (--json, --html, --plot, --output)
            where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            print(f"conformance: error: cannot write{where}: {exc.strerror or exc}", file=sys.stderr)
            return 2

    wrapper.__doc__ = handler.__doc__
    return wrapper


def ensure_parent(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
