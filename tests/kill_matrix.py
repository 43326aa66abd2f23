"""The kill matrix: which cases of the library catch which planted bug.

Each bug of ``tests/plugins/classic_bugs.py`` runs as the implementation under test over every
case of ``cases/``, in this process (``run_case`` directly, as ``conformance run cases/ --impl``
would), and every failing case is recorded with the checks that failed. A bug is a plug-in module
of all six ops (conv1d ... conv_transpose3d) that is the reference except where the bug is planted:
a Conv2d bug is a ``conv2d`` function (``--impl MODULE:FUNCTION``: the other ops' cases are
skipped), an N-d bug a module of ``tests/plugins/nd_bugs`` (``--impl MODULE``).

Torch's answers do not depend on the implementation under test, so they are computed once per
case and reused for every bug (that is the only difference from ``conformance run``).

    .venv/bin/python -m tests.kill_matrix          # prints the matrix as a Markdown table
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from conformance.cases.loader import load_cases
from conformance.cases.schema import Case
from conformance.judging.outcomes import PASSED, SKIPPED
from conformance.running.implementations import Implementation, load_implementation
from conformance.running.runner import CaseRunner
from conformance.running.torch_oracle import TorchOracle

# A planted bug: a conv2d function (the other ops correct) or the name of a tests/plugins/nd_bugs module.
Bug = Callable[..., Any] | str
ND_BUGS_PACKAGE = "tests.plugins.nd_bugs"

ROOT = Path(__file__).resolve().parent.parent
# The planted bugs are forward bugs with no backward: a backward case is then skipped after its
# forward was checked, so only a failure (or error) counts as catching the bug.
NOT_CAUGHT = (PASSED, SKIPPED)
EXAMPLE_ORDER = ("regressions", "semantics", "seed", "tutorial", "networks", "errors")  # most telling first


@dataclass
class BugRow:
    """One bug's verdicts: for each catching case, the names of its failed checks."""

    name: str
    description: str
    caught: dict[str, list[str]] = field(default_factory=dict)

    def checks_that_caught(self) -> dict[str, int]:
        """Check name -> number of cases in which it failed."""
        counts: dict[str, int] = {}
        for checks in self.caught.values():
            for check in set(checks):
                counts[check] = counts.get(check, 0) + 1
        return counts


class CachedTorchOracle(TorchOracle):
    """Torch, remembering its output (or refusal) per case and layout across implementations: the
    oracle every bug's run is given."""

    def __init__(self) -> None:
        self.memo: dict[tuple[str, ...], tuple[str, Any]] = {}

    def _remembered(self, key: tuple[str, ...], compute: Callable[[], np.ndarray]) -> np.ndarray:
        if key not in self.memo:
            try:
                self.memo[key] = ("output", compute())
            except Exception as exc:  # noqa: BLE001 - a refusal is an answer too
                self.memo[key] = ("error", exc)
        kind, value = self.memo[key]
        if kind == "error":
            raise value
        return value.copy()

    def forward(self, case: Case, x: np.ndarray, weight: np.ndarray, bias: Any, device: str = "cpu") -> np.ndarray:
        return self._remembered((case.name,), lambda: super(CachedTorchOracle, self).forward(case, x, weight, bias))

    def forward_variant(
        self, case: Case, x: np.ndarray, weight: np.ndarray, bias: Any, variant: str, device: str = "cpu"
    ) -> np.ndarray:
        compute = lambda: super(CachedTorchOracle, self).forward_variant(case, x, weight, bias, variant)  # noqa: E731
        return self._remembered((case.name, variant), compute)


def library_cases(paths: Sequence[str | Path] = (ROOT / "cases",)) -> list[Case]:
    items = load_cases(paths)
    broken = [item for item in items if not isinstance(item, Case)]
    assert not broken, f"the library has broken cases: {broken}"
    return items  # type: ignore[return-value]


def bug_name(bug: Bug) -> str:
    return bug if isinstance(bug, str) else bug.__name__


def bug_implementation(bug: Bug) -> Implementation:
    """The plug-in (forward only, in the case's dtype) that ``bug`` is: a conv2d function (the
    other ops' cases are then skipped), or a module of all six ops with the bug planted."""
    if isinstance(bug, str):
        return load_implementation(importlib.import_module(f"{ND_BUGS_PACKAGE}.{bug}"))
    return load_implementation(bug)


def planted_ops(implementation: Implementation) -> set[str]:
    """The ops where ``implementation`` is not simply the reference's function: only their cases
    can catch its bug."""
    import reference_impl

    return {
        op for op, function in implementation.functions.items() if function is not getattr(reference_impl, op, None)
    }


def kill_matrix(bugs: Sequence[tuple[Bug, str]], cases: Sequence[Case]) -> list[BugRow]:
    rows = []
    oracle = CachedTorchOracle()
    for bug, description in bugs:
        implementation = bug_implementation(bug)
        runner = CaseRunner(implementation, oracle=oracle)
        row = BugRow(bug_name(bug), description)
        planted = planted_ops(implementation)
        for case in cases:
            if case.conv.functional_name not in planted:
                continue  # the reference's own function (the control passes it) or an op it lacks
            result = runner.run(case)
            if result.status not in NOT_CAUGHT:
                row.caught[case.name] = [_check_kind(check.name) for check in result.checks if not check.passed] or [
                    "error"
                ]
        rows.append(row)
    return rows


def failing_cases(module: Any, cases: Sequence[Case]) -> list[str]:
    """The cases a plug-in module of the six ops fails, run as a float32 plug-in (used for the
    control: the unmodified reference)."""
    runner = CaseRunner(load_implementation(module), oracle=CachedTorchOracle())
    return [case.name for case in cases if runner.run(case).status not in NOT_CAUGHT]


def _check_kind(check_name: str) -> str:
    """'<impl> vs expected' (the golden-output check, named after the side) -> 'expected'."""
    return "expected" if check_name.endswith(" vs expected") else check_name


def _folder(case_name: str) -> str:
    return case_name.split("/", 1)[0]


def format_kill_matrix(rows: Sequence[BugRow], examples: int = 2) -> str:
    """A Markdown table: bug, cases caught (per folder), the checks that caught it, example cases."""
    lines = ["| planted bug | cases failed | by folder | checks that failed (cases) | e.g. |", "|---|---|---|---|---|"]
    for row in rows:
        folders: dict[str, int] = {}
        for case_name in row.caught:
            folders[_folder(case_name)] = folders.get(_folder(case_name), 0) + 1
        by_folder = ", ".join(f"{folder} {count}" for folder, count in sorted(folders.items()))
        checks = ", ".join(
            f"{name} {count}"
            for name, count in sorted(row.checks_that_caught().items(), key=lambda kv: (-kv[1], kv[0]))
        )
        preferred = sorted(
            row.caught,
            key=lambda name: (
                EXAMPLE_ORDER.index(_folder(name)) if _folder(name) in EXAMPLE_ORDER else len(EXAMPLE_ORDER)
            ),
        )
        sample = ", ".join(f"`{name}`" for name in preferred[:examples])
        lines.append(
            f"| `{row.name}`: {row.description} | {len(row.caught)} | {by_folder or '-'} | "
            f"{checks or '-'} | {sample or '**not caught**'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    from tests.plugins.classic_bugs import ALL_BUGS as BUGS

    library = library_cases()
    print(f"{len(library)} cases in {ROOT / 'cases'}\n")
    print(format_kill_matrix(kill_matrix(BUGS, library)))
