"""The documentation's references stay true: every relative link and picture in README.md and
docs/*.md points to a file or folder that exists and, with `#anchor`, to a heading of that page
(strict link checking); every option a page quotes for a `conformance` command exists."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from conformance.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```$", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for heading in re.findall(
        r"^#{1,6} +(.+?) *#*$", prose_keep_code_spans(page.read_text(encoding="utf-8")), flags=re.MULTILINE
    ):
        base = slug(heading)
        name, n = base, 0
        while name in found:  # repeated headings get -1, -2, ...
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def prose_keep_code_spans(text: str) -> str:
    return re.sub(r"^```.*?^```$", "", text, flags=re.MULTILINE | re.DOTALL)


def links(page: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(prose(page.read_text(encoding="utf-8")))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)
    ]  # http:, https:, mailto: are not checked here


def test_the_slugs_are_githubs() -> None:
    assert slug("Editor support: the JSON Schema") == "editor-support-the-json-schema"
    assert (
        slug("`conformance explain`: a case, written out as sums") == "conformance-explain-a-case-written-out-as-sums"
    )
    assert slug("Why anyone uses groups") == "why-anyone-uses-groups"


def test_the_link_pattern_finds_links_and_pictures_but_not_code() -> None:
    page = "[a](x.md) and ![b](p.png#c) but `[c](no.md)` and\n```\n[d](no2.md)\n```\n[e](https://x.org)\n"
    assert LINK.findall(prose(page)) == ["x.md", "p.png#c", "https://x.org"]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / unquote(path_part)).resolve() if path_part else page
        relative = destination.relative_to(ROOT).as_posix() if destination.is_relative_to(ROOT) else str(destination)
        if not destination.exists():
            broken.append(f"{target}: no such file")
            continue
        if anchor:
            if destination.suffix != ".md":
                broken.append(f"{target}: an anchor into a file that is not a page")
            elif anchor not in anchors(destination):
                broken.append(f"{target}: no heading with anchor #{anchor} in {relative}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_docs_page_is_in_the_index() -> None:
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    listed = {target.partition("#")[0] for target in LINK.findall(prose(index))}
    pages = {page.name for page in PAGES if page.parent.name == "docs" and page.name != "index.md"}
    assert pages <= listed, f"not in docs/index.md: {sorted(pages - listed)}"


def command_options() -> dict[str, set[str]]:
    """Each `conformance` subcommand's option strings, from the parser itself."""
    parser = build_parser()
    (subparsers,) = [action for action in parser._actions if action.choices and isinstance(action.choices, dict)]
    return {
        name: {option for action in sub._actions for option in action.option_strings}
        for name, sub in subparsers.choices.items()
    }


def test_every_quoted_command_option_exists() -> None:
    options = command_options()
    unknown = []
    for page in PAGES:
        for line in page.read_text(encoding="utf-8").splitlines():
            for command, rest in re.findall(r"conformance (\w+)((?: +(?:\[[^\]]*\]|[^\s`;|#]+))*)", line):
                if command not in options:  # prose ("the conformance gate") or another branch's command
                    continue
                for option in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", rest):
                    if option not in options[command]:
                        unknown.append(f"{page.name}: conformance {command} {option}")
    assert not unknown, unknown
