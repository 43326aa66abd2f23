"""``conformance validate``: check case files without running them."""

from __future__ import annotations

import argparse

from conformance.cases.errors import CaseError
from conformance.commands import add_paths_argument, guarded, select_cases


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check case files without running them",
        description="Check case files; exit 1 with one message per problem.",
    )
    add_paths_argument(parser)
    parser.set_defaults(handler=guarded(validate_command))


def validate_command(args: argparse.Namespace) -> int:
    items = select_cases(args.paths)
    broken = [item for item in items if isinstance(item, CaseError)]
    for error in broken:
        print(error.format(snippets=True))
    files = {str(item.file) for item in items}
    valid = len(items) - len(broken)
    print(
        f"{valid} valid case{'' if valid == 1 else 's'}, {len(broken)} invalid, "
        f"in {len(files)} file{'' if len(files) == 1 else 's'}"
    )
    return 1 if broken else 0
