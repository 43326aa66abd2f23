"""Expected failures, owned by the implementation's authors: ``--xfail FILE`` (repeatable).

An xfail file is a YAML list of entries::

    - case: "networks/*"          # a case name, or a shell-style glob over case names
      reason: "no 7x7 kernels yet"
      link: https://example.org/mylib/issues/12    # optional

A listed case that fails (any kind, unsupported included) is ``xfailed`` and does not fail the
run; a listed case that passes is ``xpassed`` and fails it (strict: a stale entry must be removed);
an entry that matches no case of the run is reported, so typos and removed cases show up.
A broken case file stays an error, and a skipped case stays skipped, listed or not.

>>> xfails = XfailList([XfailEntry("seed/*", "not yet")])
>>> [entry.reason for entry in xfails.matching("seed/groups2")]
['not yet']
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conformance.cases.errors import CaseError, Problem
from conformance.cases.yaml_loader import Document, load_documents
from conformance.judging.outcomes import FAILED, KINDS, PASSED, XFAILED, XPASSED
from conformance.running.runner import CaseResult

ENTRY_KEYS = ("case", "reason", "link")


class XfailFileError(Exception):
    """An xfail file that cannot be read: the message names the file, the line, the key and what
    was expected."""


@dataclass(frozen=True)
class XfailEntry:
    """One entry: ``case`` (a name or a glob), why, and where it was written."""

    case: str
    reason: str
    link: str | None = None
    file: str = "<python>"
    line: int | None = None

    @property
    def pinned_kind(self) -> str | None:
        """The failure kind the reason starts with ('crashed: …'), as ``--update-xfail`` writes it;
        None for a reason in other words. The matrix holds a cell to it (a kind change is a change)."""
        head = self.reason.split(":", 1)[0].strip()
        return head if head in KINDS else None

    def matches(self, name: str) -> bool:
        return name == self.case or fnmatch.fnmatchcase(name, self.case)

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def describe(self) -> str:
        """'reason (link) [file:line]'."""
        link = f" ({self.link})" if self.link else ""
        return f"{self.reason}{link} [{self.location}]"


@dataclass
class XfailList:
    """Every entry of the xfail files of one run, and which of them matched a case."""

    entries: list[XfailEntry] = field(default_factory=list)
    _used: set[int] = field(default_factory=set, repr=False)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def matching(self, name: str) -> list[XfailEntry]:
        return [entry for entry in self.entries if entry.matches(name)]

    def apply(self, result: CaseResult) -> CaseResult:
        """Mark a listed ``result`` xfailed (it failed) or xpassed (it passed); returns it."""
        found = self.matching(result.name)
        if not found:
            return result
        self._used.update(index for index, entry in enumerate(self.entries) if entry in found)
        entry = found[0]
        if result.status == FAILED:
            result.status = XFAILED
            result.message = f"expected failure: {entry.describe()}: {result.message}"
        elif result.status == PASSED:
            result.status = XPASSED
            result.message = f"listed as an expected failure ({entry.describe()}) but passed: remove the entry"
        else:
            return result
        result.notes.append(
            f"xfail entry {entry.location}: case {entry.case!r}, reason: {entry.reason}"
            + (f", link: {entry.link}" if entry.link else "")
        )
        return result

    def unused(self, results: Iterable[CaseResult] | None = None) -> list[XfailEntry]:
        """The entries that matched no case: of ``results`` if given, else of every :meth:`apply` so far."""
        if results is not None:
            names = [result.name for result in results]
            return [entry for entry in self.entries if not any(entry.matches(name) for name in names)]
        return [entry for index, entry in enumerate(self.entries) if index not in self._used]


def load_xfail_files(paths: Sequence[str | Path]) -> XfailList:
    """Read every xfail file in ``paths``, in order; raises XfailFileError on the first bad one."""
    entries: list[XfailEntry] = []
    for path in paths:
        entries.extend(load_xfail_file(Path(path)))
    return XfailList(entries)


def load_xfail_file(path: Path) -> list[XfailEntry]:
    """The entries of one xfail file (an empty file, or an empty list, has none)."""
    if not path.is_file():
        raise XfailFileError(f"--xfail {path}: no such file")
    documents = list(load_documents(path))
    errors = [item for item in documents if isinstance(item, CaseError)]
    if errors:
        raise XfailFileError(f"--xfail {path}: not valid YAML:\n{errors[0].format(snippets=True)}")
    if len(documents) > 1:
        raise XfailFileError(f"{path}: expected one YAML document (a list of entries), found {len(documents)}")
    if not documents:
        return []
    document = documents[0]
    assert isinstance(document, Document)
    if document.data is None:
        return []
    if not isinstance(document.data, list):
        raise _error(
            path,
            document,
            (),
            f"expected a list of entries (- case: NAME, reason: WHY), got a {type(document.data).__name__}",
        )
    return [_entry(path, document, index, data) for index, data in enumerate(document.data)]


def _entry(path: Path, document: Document, index: int, data: object) -> XfailEntry:
    if not isinstance(data, dict):
        raise _error(path, document, (index,), f"expected a mapping with keys case, reason (and link), got {data!r}")
    unknown = [key for key in data if key not in ENTRY_KEYS]
    if unknown:
        raise _error(
            path, document, (index, unknown[0]), f"unknown key {unknown[0]!r}; an entry has {', '.join(ENTRY_KEYS)}"
        )
    for key in ("case", "reason"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise _error(
                path,
                document,
                (index, key) if key in data else (index,),
                f"{key}: expected a non-empty string, got {value!r}"
                if key in data
                else f"missing key {key!r} (every entry needs case and reason)",
            )
    link = data.get("link")
    if link is not None and not isinstance(link, str):
        raise _error(path, document, (index, "link"), f"link: expected a URL string, got {link!r}")
    return XfailEntry(data["case"], data["reason"], link, str(path), document.lines.get((index,), document.line))


def _error(path: Path, document: Document, key_path: tuple, message: str) -> XfailFileError:
    line = document.lines.get(key_path) or document.lines.get(key_path[:1]) or document.line
    return XfailFileError(CaseError(path, [Problem(key_path, message, line)]).format(snippets=True))
