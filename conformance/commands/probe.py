"""``conformance probe CASE_FILE [--case NAME]``: print which output channels each input channel reaches.

Exit status 0 when every probed case is wired block-diagonally, 1 when one is not (or the
implementation fails on the probe), 2 for a bad command line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from conformance.cases.errors import CaseError
from conformance.cases.loader import load_file
from conformance.commands import UsageError, add_implementation_arguments, guarded, implementation_from
from conformance.running.checks.wiring import (
    NothingToProbe,
    describe_differences,
    format_connectivity,
    measure_connectivity,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="measure a case's channel connectivity with one-hot inputs",
        description="Feed one one-hot input per input channel (all of them as one batch) through the "
        "implementation with an all-ones weight, and print which output channels each input "
        "channel reaches next to the block-diagonal pattern groups demands.",
    )
    parser.add_argument("case_file", metavar="CASE_FILE", help="a YAML case file")
    parser.add_argument("--case", metavar="NAME", help="the case to probe (default: every case in the file)")
    add_implementation_arguments(parser)
    parser.set_defaults(handler=guarded(probe_command))


def probe_command(args: argparse.Namespace) -> int:
    implementation = implementation_from(args)
    if not Path(args.case_file).is_file():
        raise UsageError(f"no such case file: {args.case_file}")
    items = load_file(Path(args.case_file))
    if args.case:
        names = [item.case_name if isinstance(item, CaseError) else item.name for item in items]
        if args.case not in names:
            raise UsageError(f"{args.case_file} has no case named {args.case!r}; it has: {', '.join(map(str, names))}")
        items = [item for item, name in zip(items, names, strict=False) if name == args.case]
    status = 0
    for item in items:
        if isinstance(item, CaseError):
            print(item.format(snippets=True))
            status = 1
            continue
        print(
            f"case {item.name} ({item.location}): {item.conv.in_channels} -> {item.conv.out_channels} channels, "
            f"groups={item.conv.groups}; implementation {implementation.name}"
        )
        if item.expect_error is not None or not item.conv.is_divisible:
            print("  skipped: an invalid layer (expect_error) has no wiring to probe")
            continue
        try:
            connectivity = measure_connectivity(implementation, item)
        except NothingToProbe as reason:
            print(f"  skipped: nothing to measure: {reason}")
            continue
        except Exception as exc:  # the implementation's failure is the verdict
            print(f"  FAIL the implementation failed on the probe: {type(exc).__name__}: {exc}")
            status = 1
            continue
        print(
            f"  probe input {list(connectivity.probe_shape)}: sample c has input channel c all ones, "
            "the rest zero; weight all ones, no bias"
        )
        for line in format_connectivity(connectivity):
            print("  " + line)
        if connectivity.matches:
            print("  ok   block-diagonal as groups demands")
        else:
            for line in describe_differences(connectivity):
                print("  FAIL " + line)
            status = 1
    return status
