"""``conformance schema``: print the JSON Schema of the case format, for editors.

The schema is generated from the case model (conformance/cases/json_schema.py); a copy ships
inside the package (``conformance/case_schema.json``, equal to the generated one: a test checks
it). Put it beside your cases and name it on a case file's first line::

    conformance schema --output case_schema.json
    # yaml-language-server: $schema=case_schema.json

The loader (``conformance/cases/schema.py``) stays the source of truth: it checks what a schema cannot
(shapes against the layer, sizes, ragged lists) and gives the clearer messages.
"""

from __future__ import annotations

import argparse
from typing import Any

from conformance.cases.json_schema import case_json_schema, case_json_schema_text
from conformance.commands import guarded


def case_schema_text() -> str:
    """The schema as JSON text, draft 2020-12 (what the shipped case_schema.json holds).

    >>> import json; json.loads(case_schema_text())["$schema"]
    'https://json-schema.org/draft/2020-12/schema'
    """
    return case_json_schema_text()


def case_schema() -> dict[str, Any]:
    """The schema as a dict (for ``jsonschema.Draft202012Validator``)."""
    return case_json_schema()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print the JSON Schema of the case format",
        description="Print the JSON Schema (draft 2020-12) of the case format. "
        "Editors that use yaml-language-server validate and complete "
        "a case file whose first line is "
        "'# yaml-language-server: $schema=PATH'.",
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write the schema to FILE instead of printing it")
    parser.set_defaults(handler=guarded(schema_command))


def schema_command(args: argparse.Namespace) -> int:
    text = case_schema_text()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as stream:
            stream.write(text)
    else:
        print(text, end="")
    return 0
