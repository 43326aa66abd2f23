"""Safe YAML loading that remembers the line of every key, and reads numbers like YAML 1.2.

PyYAML follows YAML 1.1, where ``1e5`` and ``1e-1`` (no dot) are strings; case authors mean
numbers, so a resolver for those is added. Only plain data is constructed: any other tag
(``!!python/object`` and friends) is an error, never executed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conformance.cases.errors import CaseError, KeyPath, Problem


class CaseLoader(yaml.SafeLoader):
    """SafeLoader plus YAML 1.2 floats without a dot (1e5, -2E-3, .5e1)."""


if yaml.__with_libyaml__:

    class FastCaseLoader(yaml.CSafeLoader):
        """CaseLoader's rules on libyaml's C parser.

        Parsing is most of the time it takes to load a small case (about 1 ms a file in pure
        Python, several times less in C); construction, resolution and the checks below stay in
        Python, so both loaders give the same data, lines and refusals.
        """
else:  # PyYAML built without libyaml
    FastCaseLoader = CaseLoader  # type: ignore[assignment,misc]

_LOADERS: list[type[yaml.resolver.Resolver]] = list(dict.fromkeys((CaseLoader, FastCaseLoader)))
for _loader in _LOADERS:
    _loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )

_PLAIN_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_MAP_TAG, _SEQ_TAG = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
MAX_NODES = 5_000_000  # guards against alias bombs ("billion laughs")


@dataclass
class Document:
    """One YAML document: plain Python data, and the 1-based line of each key path."""

    data: Any
    lines: dict[KeyPath, int]
    index: int  # position of the document in its file, from 0
    line: int  # where the document starts

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), self.line)


def load_documents(file: Path, loader_class: type = FastCaseLoader) -> Iterator[Document | CaseError]:
    """Yield each document of ``file``; a syntax error yields one CaseError and stops the file
    (the documents before it are still yielded). ``loader_class``: CaseLoader forces pure Python."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield CaseError(file, [Problem((), f"cannot read the file: {exc}")])
        return
    documents = _parse(text, file, loader_class)
    if loader_class is not CaseLoader and documents and _is_syntax_error(documents[-1]):
        # libyaml's messages are vaguer ("found character that cannot start any token"); a broken
        # file is rare, so parse it again in pure Python for the message that names the character.
        documents = _parse(text, file, CaseLoader)
    yield from documents


def _is_syntax_error(item: Document | CaseError) -> bool:
    return isinstance(item, CaseError) and item.problems[0].message.startswith(SYNTAX_ERROR)


SYNTAX_ERROR = "YAML syntax error: "


def _parse(text: str, file: Path, loader_class: type) -> list[Document | CaseError]:
    results: list[Document | CaseError] = []
    loader = loader_class(text)
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[KeyPath, int] = {}
            counter = [0]
            try:
                data = _to_python(loader, node, (), lines, counter)
            except CaseError as exc:
                exc.file = file
                results.append(exc)
            else:
                results.append(Document(data, lines, index, node.start_mark.line + 1))
            index += 1
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = SYNTAX_ERROR + problem + (f" ({context})" if context else "")
        results.append(CaseError(file, [Problem((), message, line)]))
    finally:
        loader.dispose()
    return results


def _to_python(
    loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], counter: list[int]
) -> Any:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise CaseError("", [Problem(path, f"document has more than {MAX_NODES} YAML nodes (alias bomb?)")])
    line = node.start_mark.line + 1
    lines.setdefault(path, line)
    if isinstance(node, yaml.MappingNode):
        _require_tag(node, _MAP_TAG, path, line)
        loader.flatten_mapping(node)  # resolve YAML merge keys (<<)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(loader, key_node, path)
            if not isinstance(key, str):
                raise CaseError("", [Problem(path, f"keys must be strings, got {key!r}", key_node.start_mark.line + 1)])
            if key in result:
                raise CaseError("", [Problem(path + (key,), "duplicate key", key_node.start_mark.line + 1)])
            lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = _to_python(loader, value_node, path + (key,), lines, counter)
        return result
    if isinstance(node, yaml.SequenceNode):
        _require_tag(node, _SEQ_TAG, path, line)
        return [_to_python(loader, item, path + (i,), lines, counter) for i, item in enumerate(node.value)]
    return _scalar(loader, node, path)


def _scalar(loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath) -> Any:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.ScalarNode):
        raise CaseError("", [Problem(path, "expected a plain key, got a list or mapping", line)])
    _require_tag(node, _PLAIN_SCALAR_TAGS, path, line)
    return loader.construct_object(node, deep=True)


def _require_tag(node: yaml.Node, allowed: str | set[str], path: KeyPath, line: int) -> None:
    allowed = {allowed} if isinstance(allowed, str) else allowed
    if node.tag not in allowed:
        raise CaseError(
            "",
            [
                Problem(
                    path,
                    f"YAML tag {node.tag!r} is not allowed: case files hold plain data only "
                    "(numbers, strings, lists, mappings)",
                    line,
                )
            ],
        )
