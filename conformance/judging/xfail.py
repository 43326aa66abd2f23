"""Expected failures, owned by the implementation's authors: ``--xfail FILE`` (repeatable).

An xfail file is a YAML list of entries. An entry selects cases by name, by feature, or both
(every key given must hold: they combine with AND), and may hold only where the environment
facts say so (``when:``, matched against conformance/judging/environment.py's facts)::

    - case: "networks/*"          # a case name, or a shell-style glob over case names
      reason: "no 7x7 kernels yet"
      link: https://example.org/mylib/issues/12    # optional
    - {dtype: float64, reason: "no float64 kernels"}
    - {op: Conv3d, groups: [2, 3, 4], reason: "grouped 3-d convolutions not written yet"}
    - op: ConvTranspose2d
      padding_mode: reflect
      reason: "wrong reflect padding"
      when: {cpu.avx512f: "yes", tensorflow.onednn: [on, "1"]}   # only on such machines

Feature keys (:data:`FEATURE_KEYS`): ``op`` (Conv1d ... ConvTranspose3d), ``dtype``, ``tag``
(the case has it), ``folder`` (the case's name starts with ``FOLDER/``) and the conv parameters
(``groups``, ``padding_mode``, ``stride``, ...). A list means "any of" — except for the spatial
parameters (``kernel_size``, ``stride``, ``padding``, ``dilation``, ``output_padding``), where a
list is one value per spatial dimension, as in a case (``stride: 2`` also matches ``[2, 2]``).

A listed case that fails (any kind, unsupported included) is ``xfailed`` and does not fail the
run; a listed case that passes is ``xpassed`` and fails it (strict: a stale entry must be removed).
An entry that matches no case is reported: always when the whole library ran; with ``-k`` or
PATH, only when its selection reaches into what was selected (see :meth:`XfailList.unused`), so a
partial run does not list every entry for the cases it left out. An entry whose ``when:`` does
not hold on this machine is not applied, and not reported unused as long as it selects a case.
A broken case file stays an error, and a skipped case stays skipped, listed or not.

>>> xfails = XfailList([XfailEntry("seed/*", "not yet")])
>>> [entry.reason for entry in xfails.matching("seed/groups2")]
['not yet']
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.cases.errors import CaseError, Problem
from conformance.cases.geometry import PADDING_MODES
from conformance.cases.schema import CONV_TYPES, DTYPES, SPATIAL_KEYS, Case
from conformance.cases.yaml_loader import Document, load_documents
from conformance.judging.outcomes import FAILED, KINDS, PASSED, XFAILED, XPASSED
from conformance.judging.verdict import CaseResult

CONV_PARAMETER_KEYS = (
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "output_padding",
    "groups",
    "bias",
    "padding_mode",
)
FEATURE_KEYS = ("op", "dtype", "tag", "folder", *CONV_PARAMETER_KEYS)
SELECTOR_KEYS = ("case", *FEATURE_KEYS)
ENTRY_KEYS = (*SELECTOR_KEYS, "when", "reason", "link")


class XfailFileError(Exception):
    """An xfail file that cannot be read: the message names the file, the line, the key and what
    was expected."""


@dataclass(frozen=True)
class XfailEntry:
    """One entry: what it selects (``case``: a name or a glob; ``features``: feature key -> the
    values any of which matches), where it holds (``when``: fact -> allowed values), why, and where
    it was written.

    >>> entry = XfailEntry(None, "no float64", features=(("dtype", ("float64",)),))
    >>> entry.label
    'dtype: float64'
    """

    case: str | None
    reason: str
    link: str | None = None
    file: str = "<python>"
    line: int | None = None
    features: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def pinned_kind(self) -> str | None:
        """The failure kind the reason starts with ('crashed: …'), as ``--update-xfail`` writes it;
        None for a reason in other words. The matrix holds a cell to it (a kind change is a change)."""
        head = self.reason.split(":", 1)[0].strip()
        return head if head in KINDS else None

    def matches(self, name: str) -> bool:
        """Whether the ``case:`` pattern matches ``name`` (an entry without one matches every name)."""
        return self.case is None or name == self.case or fnmatch.fnmatchcase(name, self.case)

    def selects(self, target: str | Case | CaseResult) -> bool:
        """Whether every selector holds for ``target`` (a case, a result, or only a name: then an
        entry with feature keys selects nothing, as a case that could not be loaded has no features).
        ``when:`` is not judged here (see :meth:`holds`)."""
        case = target if isinstance(target, Case) else getattr(target, "case", None)
        name = target if isinstance(target, str) else (case.name if case is not None else target.name)
        if not self.matches(name):
            return False
        if not self.features:
            return True
        if case is None:
            return False
        return all(_feature_holds(case, key, values) for key, values in self.features)

    def holds(self, facts: Mapping[str, str]) -> bool:
        """Whether ``when:`` holds for these environment facts (an absent fact never matches)."""
        return all(facts.get(fact) in values for fact, values in self.when)

    @property
    def label(self) -> str:
        """What it selects, as written: ``'seed/*'``, ``'dtype: float64'``, ``'op: Conv3d, groups: [2, 3]'``."""
        parts = [f"case: {self.case}"] if self.case is not None and self.features else []
        if self.case is not None and not self.features:
            return self.case
        parts += [f"{key}: {_show(values)}" for key, values in self.features]
        return ", ".join(parts)

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def describe(self) -> str:
        """'reason (link) [file:line]'."""
        link = f" ({self.link})" if self.link else ""
        return f"{self.reason}{link} [{self.location}]"

    def describe_when(self) -> str:
        """'' or ' when cpu.avx512f=yes, ...'."""
        if not self.when:
            return ""
        return " when " + ", ".join(f"{fact} in {list(values)}" for fact, values in self.when)


def _show(values: tuple[Any, ...]) -> str:
    shown = [list(value) if isinstance(value, tuple) else value for value in values]
    return str(shown[0]) if len(shown) == 1 else str(shown)


def _feature_holds(case: Case, key: str, values: tuple[Any, ...]) -> bool:
    conv = case.conv
    if key == "op":
        return conv.type in values
    if key == "dtype":
        return case.dtype in values
    if key == "tag":
        return any(tag in values for tag in case.tags)
    if key == "folder":
        return any(case.name.startswith(folder.rstrip("/") + "/") for folder in values)
    actual = getattr(conv, key)
    if key in SPATIAL_KEYS and not isinstance(actual, str):
        actual = conv.per_dim(key)  # 2 and [2, 2] are the same stride of a 2-d op
        return any(_per_dim(value, conv.spatial_dims) == actual for value in values)
    return actual in values


def _per_dim(value: Any, dims: int) -> Any:
    return (value,) * dims if isinstance(value, int) else value


@dataclass
class XfailList:
    """Every entry of the xfail files of one run, and which of them matched a case.

    ``facts``: the environment facts ``when:`` is judged against (conformance.judging.environment);
    None: read this machine's (without an implementation's own settings) the first time an entry
    has a ``when:``. Set it to ``environment_facts(implementation)`` before applying.
    """

    entries: list[XfailEntry] = field(default_factory=list)
    facts: dict[str, str] | None = None
    _used: set[int] = field(default_factory=set, repr=False)
    _applied: dict[str, list[XfailEntry]] = field(default_factory=dict, repr=False)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def _facts(self) -> dict[str, str]:
        if self.facts is None:
            from conformance.judging.environment import environment_facts

            self.facts = environment_facts()
        return self.facts

    def matching(self, target: str | Case | CaseResult) -> list[XfailEntry]:
        """The entries that select ``target`` and hold here. For a bare name already applied, the
        entries that matched its result (so feature entries are found by name too)."""
        if isinstance(target, str) and target in self._applied:
            return list(self._applied[target])
        return [
            entry for entry in self.entries if entry.selects(target) and (not entry.when or entry.holds(self._facts()))
        ]

    def apply(self, result: CaseResult) -> CaseResult:
        """Mark a listed ``result`` xfailed (it failed) or xpassed (it passed); returns it."""
        self._used.update(index for index, entry in enumerate(self.entries) if entry.selects(result))
        found = self.matching(result)
        self._applied[result.name] = found
        if not found:
            return result
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
            f"xfail entry {entry.location}: {entry.label}{entry.describe_when()}, reason: {entry.reason}"
            + (f", link: {entry.link}" if entry.link else "")
        )
        return result

    def unused(
        self,
        results: Iterable[CaseResult] | None = None,
        *,
        whole_library: bool = True,
        keyword: str | None = None,
    ) -> list[XfailEntry]:
        """The entries that selected no case: of ``results`` if given, else of every :meth:`apply`
        so far (``when:`` aside: an entry for another machine is not stale).

        ``whole_library`` False (a ``-k`` or PATH run): only the entries whose selection reaches into
        the run's, judged without the cases left out — a ``case:`` name or glob whose folder is one of
        the run's folders and, with ``keyword``, that contains it (``seed/grups2`` under ``-k seed``);
        a ``folder:`` among the run's folders. An entry that selects by feature only selects none of
        the run's cases, so it does not reach into it and is not reported.
        """
        if results is not None:
            results = list(results)
            unmatched = [entry for entry in self.entries if not any(entry.selects(result) for result in results)]
        else:
            results = []
            unmatched = [entry for index, entry in enumerate(self.entries) if index not in self._used]
        if whole_library:
            return unmatched
        folders = {_folder(result.name) for result in results}
        return [entry for entry in unmatched if _reaches_into(entry, folders, keyword)]


def _folder(name: str) -> str:
    return name.rsplit("/", 1)[0] if "/" in name else ""


def _reaches_into(entry: XfailEntry, folders: set[str], keyword: str | None) -> bool:
    """Whether a partial run (its cases' ``folders``, its ``-k``) could hold a case ``entry`` names."""
    wanted_folders = dict(entry.features).get("folder")
    if entry.case is None:
        return wanted_folders is not None and keyword is None and bool(folders.intersection(wanted_folders))
    if not any(fnmatch.fnmatchcase(folder, _folder(entry.case)) for folder in folders):
        return False
    return keyword is None or keyword.lower() in entry.case.lower()


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
        raise _error(
            path, document, (index,), f"entry {index + 1}: expected a mapping with a selector and reason, got {data!r}"
        )
    unknown = [key for key in data if key not in ENTRY_KEYS]
    if unknown:
        raise _error(
            path,
            document,
            (index, unknown[0]),
            f"unknown key {unknown[0]!r} in entry {index + 1}; an entry has {', '.join(ENTRY_KEYS)}",
        )
    if not any(key in data for key in SELECTOR_KEYS):
        raise _error(
            path,
            document,
            (index,),
            f"entry {index + 1}: selects nothing: give case: (a name or glob) or a feature key "
            f"({', '.join(FEATURE_KEYS)})",
        )
    for key in ("case", "reason"):
        if key == "case" and key not in data:
            continue
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise _error(
                path,
                document,
                (index, key) if key in data else (index,),
                f"entry {index + 1}: {key}: expected a non-empty string, got {value!r}"
                if key in data
                else f"entry {index + 1}: missing key {key!r} (every entry needs a reason)",
            )
    link = data.get("link")
    if link is not None and not isinstance(link, str):
        raise _error(path, document, (index, "link"), f"entry {index + 1}: link: expected a URL string, got {link!r}")
    features = []
    for key in FEATURE_KEYS:
        if key in data:
            problem, values = _feature_values(key, data[key])
            if problem:
                raise _error(path, document, (index, key), f"entry {index + 1}: {key}: {problem}")
            features.append((key, values))
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if "when" in data:
        problem, when = _when(data["when"])
        if problem:
            raise _error(path, document, (index, "when"), f"entry {index + 1}: when: {problem}")
    return XfailEntry(
        data.get("case"),
        data["reason"],
        link,
        str(path),
        document.lines.get((index,), document.line),
        tuple(features),
        when,
    )


def _feature_values(key: str, value: Any) -> tuple[str | None, tuple[Any, ...]]:
    """(problem, values): a feature key's value(s), checked against what a case can hold."""
    if key in SPATIAL_KEYS:  # a list is one value per spatial dimension
        if key == "padding" and value in ("same", "valid"):
            return None, (value,)
        if isinstance(value, bool) or not (
            isinstance(value, int)
            or (
                isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            )
        ):
            return f"expected an int or a list of ints (one per spatial dimension), got {value!r}", ()
        return None, (tuple(value) if isinstance(value, list) else value,)
    values = tuple(value) if isinstance(value, list) else (value,)
    if not values:
        return "expected a value or a non-empty list of values, got []", ()
    allowed: tuple[Any, ...] | None = {
        "op": CONV_TYPES,
        "dtype": tuple(DTYPES),
        "padding_mode": PADDING_MODES,
        "bias": (True, False),
    }.get(key)
    for item in values:
        if allowed is not None and item not in allowed:
            return f"expected one of {', '.join(map(str, allowed))} (or a list of them), got {item!r}", ()
        if key in ("tag", "folder") and (not isinstance(item, str) or not item):
            return f"expected a name (or a list of names), got {item!r}", ()
        if key in ("in_channels", "out_channels", "groups") and (isinstance(item, bool) or not isinstance(item, int)):
            return f"expected an int (or a list of ints), got {item!r}", ()
    return None, values


def _when(value: Any) -> tuple[str | None, tuple[tuple[str, tuple[str, ...]], ...]]:
    """(problem, conditions): ``when:`` as fact -> allowed values, all strings (YAML's yes/no
    booleans read as "yes"/"no", numbers as written)."""
    if not isinstance(value, dict) or not value:
        return f"expected a mapping of environment facts to a value or a list of values, got {value!r}", ()
    conditions = []
    for fact, wanted in value.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
            return f"{fact}: expected a value or a non-empty list of values, got {wanted!r}", ()
        conditions.append((str(fact), tuple(text for v in values for text in _fact_texts(v))))
    return None, tuple(conditions)


def _fact_texts(value: str | int | float | bool) -> tuple[str, ...]:
    """The fact strings a ``when:`` value stands for: YAML reads yes/no/on/off/true/false unquoted
    as booleans, so a boolean stands for each of its spellings.

    >>> _fact_texts(False), _fact_texts(2)
    (('no', 'off', 'false'), ('2',))
    """
    if isinstance(value, bool):
        return ("yes", "on", "true") if value else ("no", "off", "false")
    return (str(value),)


def _error(path: Path, document: Document, key_path: tuple, message: str) -> XfailFileError:
    line = document.lines.get(key_path) or document.lines.get(key_path[:1]) or document.line
    return XfailFileError(CaseError(path, [Problem(key_path, message, line)]).format(snippets=True))
