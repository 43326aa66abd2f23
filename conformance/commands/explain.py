"""``conformance explain``: teach ``groups`` from a case, in the terminal and as pictures."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CaseError
from ..explain import DEFAULT_MAX_TERMS, explain_result, geometry_of, parse_element
from ..runner import error_result, run_case
from . import UsageError, add_implementation_arguments, guarded, implementation_from, select_cases


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain", help="explain a case: the grouping, the weight layout and each output as a sum of products",
        description="Explain a case: the grouping in words, the weight layout, the connectivity matrix, output "
                    "elements written out as sums of products, the 1/groups saving, and every side's values.")
    parser.add_argument("case_file", metavar="CASE_FILE", help="a YAML case file")
    parser.add_argument("--case", metavar="NAME", help="the case to explain when the file holds several "
                                                       "(its name, or a unique part of it)")
    parser.add_argument("--element", metavar="n,o,h,w", action="append",
                        help="an output element to write out (repeatable; o,h,w for an unbatched case); "
                             "default: every element of a small output, else one per output channel")
    parser.add_argument("--max-terms", metavar="K", type=int, default=DEFAULT_MAX_TERMS,
                        help=f"show at most K products per sum, the largest ones (default {DEFAULT_MAX_TERMS})")
    parser.add_argument("--plot", metavar="DIR",
                        help="also draw the pictures into DIR, as SVG and PNG (the element picture shows the first "
                             "--element, else output channel 0 at the centre)")
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
    result = error_result(item) if isinstance(item, CaseError) else run_case(item, implementation)
    if result.case is None:
        print(f"case {result.name} cannot be explained: its file is broken:")
        print(result.load_error.format(snippets=True) if result.load_error else result.message)
        return 1
    elements = None
    can_compute = result.run is not None and result.run.torch.output is not None
    if args.element and can_compute:
        geo = geometry_of(result.case, result.run.tensors)  # type: ignore[union-attr]
        shape = (geo.batch, geo.out_channels, *geo.output_size)
        try:
            elements = [parse_element(text, shape) for text in args.element]
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    print(explain_result(result, elements, args.max_terms))
    if args.plot and can_compute:
        from ..pictures import draw_case_pictures  # matplotlib is only imported when pictures are wanted

        paths = draw_case_pictures(result.case, result.run.tensors, Path(args.plot),  # type: ignore[union-attr]
                                   element=elements[0] if elements else None, formats=("svg", "png"))
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
    exact = [item for item, name in zip(items, names) if name == wanted]
    partial = [item for item, name in zip(items, names) if name and wanted.lower() in name.lower()]
    if exact or len(partial) == 1:
        return (exact or partial)[0]
    if not partial:
        raise UsageError(f"{path} has no case named {wanted!r}; its cases: {', '.join(map(str, names))}")
    raise UsageError(f"--case {wanted!r} matches several cases in {path}: "
                     f"{', '.join(n for n in names if n and wanted.lower() in n.lower())}")
