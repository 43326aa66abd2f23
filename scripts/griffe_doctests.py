"""A griffe extension for `make docs`: a docstring's doctest lines become a fenced code block.

mkdocstrings renders docstrings as Markdown, where a doctest such as ``>>> y[0][1]`` or an output
``[[1.0, 2.0]]`` reads as a reference link (and fails ``mkdocs build --strict``). The project's
docstrings put their runnable examples inline (``>>>`` lines and their output, up to a blank
line), as doctest reads them; this wraps each such run in a ```` ```pycon ```` fence. Loaded by
path from mkdocs.yml (mkdocstrings' ``extensions`` option).
"""

from __future__ import annotations

from typing import Any

from griffe import Extension, Object


def fence_doctests(text: str) -> str:
    """Every run of lines from a ``>>>`` line to the next blank line, fenced as ``pycon``.

    >>> fence_doctests("Sum:\\n>>> 1 + 1\\n2\\n\\nDone.").splitlines()
    ['Sum:', '```pycon', '>>> 1 + 1', '2', '```', '', 'Done.']
    """
    lines, fenced, inside, indent = text.splitlines(), [], False, ""
    for line in lines:
        stripped = line.lstrip()
        if not inside and stripped.startswith(">>>"):
            inside, indent = True, line[: len(line) - len(stripped)]
            fenced.append(f"{indent}```pycon")
        elif inside and not stripped:
            inside = False
            fenced.append(f"{indent}```")
        fenced.append(line)
    if inside:
        fenced.append(f"{indent}```")
    return "\n".join(fenced)


class DoctestFences(Extension):
    """Fences the doctests of every docstring griffe loads."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
