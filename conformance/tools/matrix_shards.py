"""The framework matrix split across CI jobs: ``conformance matrix --shard K/N`` runs every N-th
column (its columns, not its cases: a column is one framework's worker, and the columns' times
differ by minutes), and ``conformance matrix --merge A.json B.json ...`` joins the shards' JSON into
one matrix — the table, every cell, each column's version — whose exit status is 1 when any shard's
columns differed from their xfail files.

>>> shard_columns(["a", "b", "c", "d", "e"], "2/2")
['b', 'd']
>>> shard_columns(["a", "b", "c"], "4/3")
Traceback (most recent call last):
...
ValueError: --shard expects K/N with 1 <= K <= N (e.g. 2/4), got '4/3'
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conformance.tools.matrix import Cell, Column, Matrix, Row


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as (K, N), 1-based."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        index, count = 0, 0
    if not 1 <= index <= count:
        raise ValueError(f"--shard expects K/N with 1 <= K <= N (e.g. 2/4), got {text!r}")
    return index, count


def shard_columns(names: Sequence[str], shard: str) -> list[str]:
    """The columns shard ``K/N`` runs: the K-th of every N, in order (round robin, so the slow
    columns of a list spread over the shards)."""
    index, count = parse_shard(shard)
    return list(names)[index - 1 :: count]


def merge_matrix_files(paths: Sequence[str | Path]) -> tuple[Matrix, list[str]]:
    """The matrix the shards' JSON files make together, and the changes the shards reported.

    Each column must come from one file only (a ValueError names both files otherwise); a case one
    shard did not run has no cell in that shard's columns."""
    columns: list[Column] = []
    rows: dict[str, Row] = {}
    owners: dict[str, str] = {}
    changes: list[str] = []
    settings: dict[str, Any] = {}
    for path in paths:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
            implementations, cases = document["implementations"], document["cases"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a matrix JSON file from `conformance matrix --json` ({exc})") from None
        for entry in implementations:
            name = entry["name"]
            if name in owners:
                raise ValueError(f"column {name!r} is in both {owners[name]} and {path}: shards must not overlap")
            owners[name] = str(path)
            columns.append(_column(entry))
        for case in cases:
            row = rows.setdefault(case["name"], Row(case["name"], case["file"], tuple(case.get("tags", ()))))
            for name, cell in case["results"].items():
                row.results[name] = Cell(
                    cell["status"],
                    cell.get("kind"),
                    cell.get("message", ""),
                    cell.get("max_abs_error"),
                    seconds=cell.get("seconds"),
                )
        changes.extend(document.get("changes", []))
        settings = settings or dict(document.get("settings", {}))
    settings["merged_from"] = [str(path) for path in paths]
    return Matrix(columns, list(rows.values()), settings), changes


def merged_json(matrix: Matrix, changes: list[str]) -> dict[str, Any]:
    """The merged matrix as ``conformance matrix --json`` writes one, with the shards' changes."""
    document = matrix.to_json()
    document["changes"] = changes  # as each shard judged them (with its xfail files and load errors)
    return document


def _column(entry: dict[str, Any]) -> Column:
    return Column(
        entry["name"],
        installed=bool(entry.get("installed", True)),
        version=entry.get("version", ""),
        note=entry.get("note", ""),
        install_command=entry.get("install_command") or "",
        xfail_file=entry.get("xfail_file") or "",
        restarts=int(entry.get("worker_restarts", 0)),
        seconds=float(entry.get("seconds", 0.0)),
        stage_seconds={str(stage): float(value) for stage, value in (entry.get("seconds_per_stage") or {}).items()},
        unused_xfail=list(entry.get("unused_xfail_entries", [])),
        environment={str(key): str(value) for key, value in (entry.get("environment") or {}).items()},
    )
