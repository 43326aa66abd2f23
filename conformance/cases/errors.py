"""Errors in case files, reported with the file, the line, the key path and a snippet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

KeyPath = tuple[str | int, ...]  # e.g. ("conv", "groups") or ("input", "values", 3)


def format_key_path(path: Sequence[str | int]) -> str:
    """('input', 'values', 3) -> 'input.values[3]'"""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a case: where (key path, 1-based line) and what was expected."""

    key_path: KeyPath
    message: str
    line: int | None = None


@dataclass
class CaseError(Exception):
    """A case file (or one document of it) that cannot be turned into a runnable case."""

    file: Path | str
    problems: list[Problem] = field(default_factory=list)
    case_name: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.file, self.problems)

    def __str__(self) -> str:
        return self.format(snippets=False)

    def format(self, snippets: bool = True) -> str:
        lines = []
        source = _read_lines(self.file) if snippets else []
        for problem in self.problems:
            where = f"{self.file}:{problem.line}" if problem.line else f"{self.file}"
            lines.append(f"{where}: {format_key_path(problem.key_path)}: {problem.message}")
            if source and problem.line:
                lines.extend(_snippet(source, problem.line))
        return "\n".join(lines)


def _read_lines(file: Path | str) -> list[str]:
    try:
        return Path(file).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _snippet(source: list[str], line: int, context: int = 1) -> list[str]:
    out = []
    for number in range(max(1, line - context), min(len(source), line + context) + 1):
        marker = ">" if number == line else " "
        out.append(f"  {marker} {number:4d} | {source[number - 1]}")
    return out
