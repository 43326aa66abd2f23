"""``conformance learn [DIR]``: write the lesson page (see docs/learn.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from conformance.api import default_cases
from conformance.commands import guarded
from conformance.teaching.lesson import LessonError, build_lesson
from conformance.teaching.lesson_page import write_lesson_page

DEFAULT_DIR = "build/learn"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "learn",
        help="write the lesson on groups (a page to open in a browser)",
        description="Write the lesson: the concept, one screen per tutorial step, exercises and a playground, "
        "as DIR/index.html (one file, no network). Every number is checked against torch while it is built.",
    )
    parser.add_argument(
        "dir", nargs="?", default=DEFAULT_DIR, help=f"where to write index.html (default {DEFAULT_DIR})"
    )
    parser.add_argument(
        "--tutorial",
        metavar="FOLDER",
        help="the tutorial folder, one step per case file (default: the case library's tutorial/)",
    )
    parser.set_defaults(handler=guarded(learn_command))


def learn_command(args: argparse.Namespace) -> int:
    cases = Path(default_cases())
    tutorial = Path(args.tutorial) if args.tutorial else cases / "tutorial"
    try:
        lesson = build_lesson(tutorial, cases / "seed" / "groups3.yaml")
    except LessonError as error:
        print(f"conformance learn: {error}")
        return 1
    page = write_lesson_page(lesson, Path(args.dir) / "index.html")
    for problem in lesson.problems:
        print(f"left out of the lesson: {problem}")
    size = page.stat().st_size
    print(f"wrote the lesson ({len(lesson.steps)} steps, {size / 1024:.0f} KB): open {page.resolve().as_uri()}")
    return 1 if lesson.problems else 0
