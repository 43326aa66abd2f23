"""``conformance explain``: teach ``groups`` from a case, in the terminal and as pictures."""

from __future__ import annotations

import argparse
from pathlib import Path

from conformance.cases.errors import CaseError
from conformance.commands import UsageError, add_implementation_arguments, guarded, implementation_from, select_cases
from conformance.running.runner import error_result
from conformance.teaching.explain import DEFAULT_MAX_TERMS, build_explanation, layout_of, parse_element, run_quietly
from conformance.teaching.explain_text import render_text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="explain a case: the grouping, the input and weight per group, outputs as sums of products",
        description="Explain a case for learners: the grouping in words, the connectivity matrix, the input and "
        "the weight laid out group by group, output elements written out as per-channel sums of "
        "products (any op: Conv1d/2d/3d, ConvTranspose1d/2d/3d), every side's values beside them, and "
        "what groups save. Lines fit the terminal (COLUMNS, at most 100 characters).",
    )
    parser.add_argument("case_file", metavar="CASE_FILE", help="a YAML case file")
    parser.add_argument(
        "--case",
        metavar="NAME",
        help="the case to explain when the file holds several (its name, or a unique part of it)",
    )
    parser.add_argument(
        "--element",
        metavar="n,o,h,w",
        action="append",
        help="an output element to write out (repeatable; one index per spatial dimension, e.g. "
        "n,o,l for Conv1d; leave out n for an unbatched case); default: every element of a "
        "small output, else elements of the first and of the last group",
    )
    parser.add_argument(
        "--max-terms",
        metavar="K",
        type=int,
        default=DEFAULT_MAX_TERMS,
        help=f"show at most K products per input channel, the largest ones (default {DEFAULT_MAX_TERMS})",
    )
    parser.add_argument(
        "--checks",
        action="store_true",
        help="also list the harness's extra checks (torch variants, metamorphic relations, the "
        "wiring probe, gradients)",
    )
    parser.add_argument(
        "--reveal",
        action="store_true",
        help="show the values of an exercise case (tagged exercise), which print as ? until you have worked them out",
    )
    parser.add_argument(
        "--plot",
        metavar="DIR",
        help="also draw the pictures into DIR as SVG files (the element picture shows the first "
        "--element, else the first output channel of the last group, so its channel offset shows)",
    )
    add_implementation_arguments(parser)
    parser.set_defaults(handler=guarded(explain_command))


def explain_command(args: argparse.Namespace) -> int:
    if args.max_terms < 1:
        raise UsageError(f"--max-terms expects a positive integer, got {args.max_terms}")
    path = Path(args.case_file)
    if not path.is_file():
        raise UsageError(f"no such case file: {path}")
    items = select_cases([str(path)])
    item = _pick(items, args.case, path)
    implementation = implementation_from(args)
    seen: tuple[str, ...] = ()
    if isinstance(item, CaseError):
        result = error_result(item)
    else:  # torch's warnings become a short note instead of a screenful of stderr
        result, seen = run_quietly(item, implementation)
    if result.case is None:
        print(f"case {result.name} cannot be explained: its file is broken:")
        print(result.load_error.format(snippets=True) if result.load_error else result.message)
        return 1
    elements = None
    can_compute = result.run is not None and result.run.torch.output is not None
    if args.element and can_compute:
        tensors = result.run.tensors
        shape = layout_of(result.case.conv, tensors.input.shape, tensors.weight.shape).output_shape
        try:
            elements = [parse_element(text, shape) for text in args.element]
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    explanation = build_explanation(result, elements, warnings_seen=seen)
    print(render_text(explanation, max_terms=args.max_terms, show_checks=args.checks, reveal=args.reveal))
    if args.plot and can_compute:
        from conformance.teaching.pictures import draw_case_pictures  # late: pictures are only built when asked for

        assert result.run is not None  # can_compute says so
        paths = draw_case_pictures(
            result.case,
            result.run.tensors,
            Path(args.plot),
            element=elements[0] if elements else None,
        )
        print("")
        print("pictures: " + ", ".join(str(p) for p in paths))
    elif args.plot:
        print("\nno pictures: the layer is invalid, so there is nothing to draw")
    return 0


def _pick(items: list, wanted: str | None, path: Path):
    names = [item.case_name if isinstance(item, CaseError) else item.name for item in items]
    if wanted is None:
        if len(items) == 1:
            return items[0]
        raise UsageError(f"{path} holds {len(items)} cases; choose one with --case: {', '.join(map(str, names))}")
    exact = [item for item, name in zip(items, names, strict=False) if name == wanted]
    partial = [item for item, name in zip(items, names, strict=False) if name and wanted.lower() in name.lower()]
    if exact or len(partial) == 1:
        return (exact or partial)[0]
    if not partial:
        raise UsageError(f"{path} has no case named {wanted!r}; its cases: {', '.join(map(str, names))}")
    raise UsageError(
        f"--case {wanted!r} matches several cases in {path}: "
        f"{', '.join(n for n in names if n and wanted.lower() in n.lower())}"
    )
