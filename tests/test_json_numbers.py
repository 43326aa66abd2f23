"""One JSON float convention for every writer (docs/commands.md#numbers-in-the-json-files)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conformance.judging.compare import compare_arrays
from conformance.judging.json_numbers import json_float, json_text
from conformance.judging.verdict import CaseResult, Check
from conformance.tools.benchmark import CaseBenchmark, Workload
from conformance.tools.matrix import Cell


def test_non_finite_floats_are_strings_and_missing_is_null() -> None:
    assert [json_float(v) for v in (0.25, None, math.inf, -math.inf, math.nan, np.float32(2))] == [
        0.25,
        None,
        "inf",
        "-inf",
        "nan",
        2.0,
    ]


def test_a_forgotten_non_finite_float_is_an_error_not_invalid_json() -> None:
    with pytest.raises(ValueError):
        json_text({"error": math.inf})


def test_the_case_result_and_the_matrix_cell_write_infinity_alike() -> None:
    infinite = compare_arrays(np.array([np.inf]), np.array([1.0]), 0.0, 0.0)  # an infinitely wrong element
    result = CaseResult("a", "a.yaml", "failed", checks=[Check("forward", False, "", comparison=infinite)])
    cell = Cell("failed", "wrong_values", "", result.max_abs_error)
    assert json.loads(json_text(result.to_json()))["max_abs_error"] == "inf"
    assert json.loads(json_text(cell.to_json()))["max_abs_error"] == "inf"
    assert Cell("passed").to_json()["max_abs_error"] is None  # not measured


def test_a_benchmark_side_that_did_not_run_is_null() -> None:
    row = CaseBenchmark("a", Workload(multiply_adds=10, bytes_moved=40), error="torch raised")
    document = json.loads(json_text(row.to_json()))
    assert document["reference_s"] is None and document["ratio"] is None and document["roofline_s"] is None
