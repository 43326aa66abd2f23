"""``conformance run --durations N``: the N slowest cases and where their time went, as pytest's
``--durations`` prints them; plus the whole run's time per stage.

>>> from conformance.running.runner import CaseResult
>>> fast = CaseResult("fast", "a.yaml", "passed", seconds=0.002, durations={"implementation": 0.001})
>>> slow = CaseResult("slow", "a.yaml", "passed", seconds=0.5, durations={"torch": 0.1, "checks": 0.38})
>>> print("\\n".join(slowest_lines([fast, slow], 1)))
slowest 1 of 2 cases (seconds; load not included in the total):
   0.500s  slow  (checks 0.380, torch 0.100)
"""

from __future__ import annotations

from collections.abc import Sequence

from conformance.judging.verdict import stage_totals
from conformance.running.runner import CaseResult


def stage_breakdown(result: CaseResult) -> str:
    """A case's stages, slowest first, those of at least a millisecond: "checks 0.380, torch 0.100"."""
    stages = sorted(result.durations.items(), key=lambda item: -item[1])
    return ", ".join(f"{stage} {seconds:.3f}" for stage, seconds in stages if seconds >= 0.0005)


def slowest_lines(results: Sequence[CaseResult], count: int) -> list[str]:
    """The ``count`` slowest cases (0: all), one line each: total, name, the stages that made it."""
    ranked = sorted(results, key=lambda result: -result.seconds)
    shown = ranked if count == 0 else ranked[:count]
    lines = [f"slowest {len(shown)} of {len(results)} cases (seconds; load not included in the total):"]
    for result in shown:
        breakdown = stage_breakdown(result)
        lines.append(f"{result.seconds:8.3f}s  {result.name}" + (f"  ({breakdown})" if breakdown else ""))
    return lines


def totals_line(results: Sequence[CaseResult]) -> str:
    """One line: the run's seconds per stage ("stages: load 0.41, tensors 0.20, ...")."""
    totals = stage_totals(results)
    return "time per stage (s): " + ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in totals.items())
