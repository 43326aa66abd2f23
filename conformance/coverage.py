"""The coverage grid: which features (rows of :data:`conformance.features.FEATURES`) the case
library exercises, how many cases fall in each cell, and which cells are empty.

:func:`coverage_grid` returns the grid as data (for the text report below, an HTML report or
JSON); :func:`format_coverage` renders it as text.

>>> from conformance.fuzz import build_case
>>> grouped = build_case({"conv": {"in_channels": 4, "out_channels": 4, "kernel_size": 1, "groups": 2},
...                       "input": {"fill": 1, "shape": [1, 4, 2, 2]}}, name="grouped")
>>> grid = coverage_grid([grouped])
>>> grid.cell("groups", "1 < groups < in_channels").cases, grid.cell("groups", "groups = 1 (dense)").count
(['grouped'], 0)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .errors import CaseError
from .features import FEATURES, Feature
from .loader import LoadResult
from .schema import Case


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
            "total_cases": self.total_cases, "error_cases": self.error_cases, "broken_files": self.broken_files,
            "axes": [{"axis": axis, "cells": [{"name": c.name, "count": c.count, "cases": c.cases}
                                              for c in self.cells_of(axis)]} for axis in self.axes],
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
        for feature, cell in zip(features, cells):
            if feature.on_error_cases == is_error_case and feature.applies(item):
                cell.cases.append(item.name)
    return CoverageGrid(cells, total, errors, broken)


def format_coverage(grid: CoverageGrid) -> str:
    """The grid as text: one block per axis, a count per cell, then the empty cells."""
    width = max((len(cell.name) for cell in grid.cells), default=10) + 2
    valid = grid.total_cases - grid.error_cases
    lines = [f"coverage of {grid.total_cases} cases ({valid} valid layers, {grid.error_cases} expected errors)"]
    if grid.broken_files:
        lines.append(f"not counted: {len(grid.broken_files)} case(s) that could not be loaded: "
                     + ", ".join(grid.broken_files))
    for axis in grid.axes:
        lines.append(f"{axis}")
        for cell in grid.cells_of(axis):
            mark = "" if cell.cases else "   <- empty"
            lines.append(f"  {cell.name:<{width}}{cell.count:>4}{mark}")
    empty = grid.empty_cells
    lines.append(f"{len(empty)} of {len(grid.cells)} cells empty" + (":" if empty else ""))
    lines.extend(f"  {cell.axis}: {cell.name}" for cell in empty)
    return "\n".join(lines)
