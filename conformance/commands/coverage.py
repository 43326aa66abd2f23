"""``conformance coverage``: which features the case library exercises, cell by cell."""

from __future__ import annotations

import argparse

from conformance.commands import add_paths_argument, ensure_parent, guarded, select_cases
from conformance.judging.json_numbers import json_text
from conformance.tools.coverage import coverage_grid, format_coverage


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "coverage",
        help="show which features the cases exercise",
        description="Count the cases in each cell of the feature grid (groups kinds, "
        "stride, padding, dilation, padding modes, bias, batch, kernel "
        "shapes, dtypes, backward, error kinds) and list the empty cells.",
    )
    add_paths_argument(parser)
    parser.add_argument("--json", metavar="FILE", help="also write the grid as JSON")
    parser.set_defaults(handler=guarded(coverage_command))


def coverage_command(args: argparse.Namespace) -> int:
    grid = coverage_grid(select_cases(args.paths))
    print(format_coverage(grid))
    if args.json:
        ensure_parent(args.json).write_text(json_text(grid.to_dict(), indent=2) + "\n", encoding="utf-8")
    return 0
