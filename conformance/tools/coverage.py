"""The coverage grid: which features (rows of :data:`conformance.cases.features.FEATURES`) the case
library exercises, how many cases fall in each cell, and which cells are empty.

:func:`coverage_grid` returns the grid as data (for the text report below, an HTML report or
JSON); :func:`format_coverage` renders it as text.

>>> from conformance.tools.fuzz import build_case
>>> grouped = build_case({"conv": {"in_channels": 4, "out_channels": 4, "kernel_size": 1, "groups": 2},
...                       "input": {"fill": 1, "shape": [1, 4, 2, 2]}}, name="grouped")
>>> grid = coverage_grid([grouped])
>>> grid.cell("groups", "1 < groups < in_channels").cases, grid.cell("groups", "groups = 1 (dense)").count
(['grouped'], 0)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from conformance.cases.errors import CaseError
from conformance.cases.features import FEATURES, Feature
from conformance.cases.loader import LoadResult
from conformance.cases.schema import Case


@dataclass
class Cell:
    axis: str
    name: str
    cases: list[str] = field(default_factory=list)  # names of the cases in the cell

    @property
    def count(self) -> int:
        return len(self.cases)


@dataclass
class CoverageGrid:
    """Cells in the order of the feature table, grouped by axis."""

    cells: list[Cell]
    total_cases: int
    error_cases: int  # cases marked expect_error (counted on the error-kind axis only)
    broken_files: list[str] = field(default_factory=list)  # case files that could not be loaded

    @property
    def axes(self) -> list[str]:
        return list(dict.fromkeys(cell.axis for cell in self.cells))

    def cells_of(self, axis: str) -> list[Cell]:
        return [cell for cell in self.cells if cell.axis == axis]

    def cell(self, axis: str, name: str) -> Cell:
        for cell in self.cells:
            if (cell.axis, cell.name) == (axis, name):
                return cell
        raise KeyError(f"no coverage cell {axis!r} / {name!r}")

    @property
    def empty_cells(self) -> list[Cell]:
        return [cell for cell in self.cells if not cell.cases]

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``{"total_cases", "error_cases", "broken_files", "axes": [{"axis", "cells":
        [{"name", "count", "cases"}]}], "empty": ["axis: cell", ...]}``."""
        return {
            "total_cases": self.total_cases,
            "error_cases": self.error_cases,
            "broken_files": self.broken_files,
            "axes": [
                {
                    "axis": axis,
                    "cells": [{"name": c.name, "count": c.count, "cases": c.cases} for c in self.cells_of(axis)],
                }
                for axis in self.axes
            ],
            "empty": [f"{c.axis}: {c.name}" for c in self.empty_cells],
        }


def coverage_grid(items: Iterable[LoadResult | Case], features: Iterable[Feature] = FEATURES) -> CoverageGrid:
    """Count every case in every cell it belongs to; broken case files are listed, not counted."""
    features = list(features)
    cells = [Cell(feature.axis, feature.cell) for feature in features]
    total = errors = 0
    broken: list[str] = []
    for item in items:
        if isinstance(item, CaseError):
            broken.append(f"{item.file} ({item.case_name})" if item.case_name else str(item.file))
            continue
        total += 1
        is_error_case = item.expect_error is not None
        errors += is_error_case
        for feature, cell in zip(features, cells, strict=False):
            if feature.on_error_cases in (None, is_error_case) and feature.applies(item):
                cell.cases.append(item.name)
    return CoverageGrid(cells, total, errors, broken)


def op_matrix(grid: CoverageGrid) -> dict[str, dict[tuple[str, str], int]]:
    """The ``op`` axis crossed with every other cell: op -> {(axis, cell): number of that op's cases
    in the cell}. Computed from the grid alone (a cell lists its cases' names).

    >>> from conformance.tools.fuzz import build_case
    >>> c1 = build_case({"conv": {"type": "Conv1d", "in_channels": 2, "out_channels": 2, "kernel_size": 1,
    ...                  "groups": 2}, "input": {"fill": 1, "shape": [1, 2, 3]}}, name="c1")
    >>> op_matrix(coverage_grid([c1]))["Conv1d"][("groups", "depthwise (groups = in = out channels)")]
    1
    """
    matrix: dict[str, dict[tuple[str, str], int]] = {}
    for op_cell in grid.cells_of("op"):
        members = set(op_cell.cases)
        matrix[op_cell.name] = {
            (cell.axis, cell.name): sum(name in members for name in cell.cases)
            for cell in grid.cells
            if cell.axis != "op"
        }
    return matrix


def format_op_matrix(grid: CoverageGrid) -> list[str]:
    """The op matrix as text: one row per cell, one column per op ('.' for none)."""
    matrix = op_matrix(grid)
    if not matrix:
        return []
    ops = list(matrix)
    short = [op.replace("ConvTranspose", "T").replace("Conv", "C") for op in ops]  # C1 C2 C3 T1 T2 T3
    width = max((len(f"{cell.axis}: {cell.name}") for cell in grid.cells), default=10) + 2
    lines = [
        "by op (C = Conv, T = ConvTranspose; cases of that op in each cell)",
        f"  {'':<{width}}" + "".join(f"{name:>5}" for name in short),
    ]
    for cell in grid.cells:
        if cell.axis == "op":
            continue
        counts = [matrix[op][(cell.axis, cell.name)] for op in ops]
        lines.append(f"  {cell.axis + ': ' + cell.name:<{width}}" + "".join(f"{c if c else '.':>5}" for c in counts))
    return lines


def format_coverage(grid: CoverageGrid) -> str:
    """The grid as text: one block per axis, a count per cell, the empty cells, then the op matrix
    (:func:`format_op_matrix`)."""
    width = max((len(cell.name) for cell in grid.cells), default=10) + 2
    valid = grid.total_cases - grid.error_cases
    lines = [f"coverage of {grid.total_cases} cases ({valid} valid layers, {grid.error_cases} expected errors)"]
    if grid.broken_files:
        lines.append(
            f"not counted: {len(grid.broken_files)} case(s) that could not be loaded: " + ", ".join(grid.broken_files)
        )
    for axis in grid.axes:
        lines.append(f"{axis}")
        for cell in grid.cells_of(axis):
            mark = "" if cell.cases else "   <- empty"
            lines.append(f"  {cell.name:<{width}}{cell.count:>4}{mark}")
    empty = grid.empty_cells
    lines.append(f"{len(empty)} of {len(grid.cells)} cells empty" + (":" if empty else ""))
    lines.extend(f"  {cell.axis}: {cell.name}" for cell in empty)
    lines.extend(format_op_matrix(grid))
    return "\n".join(lines)
