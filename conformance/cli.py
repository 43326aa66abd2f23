"""``conformance`` — the command line. Each subcommand lives in ``conformance/commands/``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand modules; each defines `register(subparsers)`, which adds its parser and sets `handler`.
COMMAND_MODULES = (
    "run",
    "validate",
    "cases",
    "schema",
    "explain",
    "learn",
    "probe",
    "bench",
    "coverage",
    "fuzz",
    "matrix",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or of ``command`` only (what `main` does: importing every command
    module, the fuzzer's hypothesis among them, cost ~0.2-0.6 s of each run's start)."""
    parser = argparse.ArgumentParser(
        prog="conformance",
        description=(
            "Learn and check grouped convolutions (Conv1d/2d/3d, ConvTranspose1d/2d/3d) against torch, with YAML cases."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES if command not in COMMAND_MODULES else (command,):
        importlib.import_module(f"conformance.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # First, before any command loads NumPy: importing reference_impl sets OpenBLAS's thread
    # timeout, which OpenBLAS reads only when it loads (reference_impl.OPENBLAS_THREAD_TIMEOUT).
    import reference_impl  # noqa: F401

    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(words[0] if words else None).parse_args(words)
    try:
        return int(args.handler(args) or 0)
    except BrokenPipeError:  # `conformance run | head`
        return 1


if __name__ == "__main__":
    sys.exit(main())
