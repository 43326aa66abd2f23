"""benchmarks/harness_overhead.py: the tiny cases it times must be valid and pass, or its number
means nothing. (No timing is asserted: that depends on the machine.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from conformance.cases.loader import load_cases
from conformance.cases.schema import Case
from conformance.cli import main

ROOT = Path(__file__).resolve().parent.parent


def load_script():
    spec = importlib.util.spec_from_file_location("harness_overhead", ROOT / "benchmarks" / "harness_overhead.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tiny_cases_are_valid_distinct_and_pass(tmp_path: Path, capsys) -> None:
    script = load_script()
    count = 2 * len(script.TINY_LAYERS)
    script.write_tiny_cases(tmp_path / "cases", count)
    cases = load_cases([tmp_path / "cases"])
    assert all(isinstance(case, Case) for case in cases), [c for c in cases if not isinstance(c, Case)]
    assert len({case.name for case in cases}) == count
    assert len({case.conv for case in cases}) == len(script.TINY_LAYERS)  # every layer kind is exercised
    assert main(["run", str(tmp_path / "cases"), "-q"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{count} passed, 0 failed")
