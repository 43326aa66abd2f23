"""`conformance matrix --shard K/N` and `--merge` (conformance/tools/matrix_shards.py): the shards run
disjoint columns, and their JSON files join into the matrix one run would have made."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.tools.matrix_shards import merge_matrix_files, shard_columns

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [str(ROOT / "cases" / "seed" / f"{name}.yaml") for name in ("groups2", "groups3")]
PLUGINS = textwrap.dedent("""
    import numpy as np
    from reference_impl import conv2d as _reference

    def correct(input, weight, bias=None, **kw):
        return _reference(input, weight, bias, **kw)

    def off_by_one(input, weight, bias=None, **kw):
        return np.asarray(_reference(input, weight, bias, **kw)) + 1.0
""")


def test_shards_split_the_columns_round_robin_and_cover_each_once() -> None:
    names = ["jax", "tensorflow", "mlx", "paddle", "iree"]
    shards = [shard_columns(names, f"{k}/3") for k in (1, 2, 3)]
    assert shards == [["jax", "paddle"], ["tensorflow", "iree"], ["mlx"]]
    assert sorted(sum(shards, [])) == sorted(names)
    with pytest.raises(ValueError, match="K/N"):
        shard_columns(names, "0/3")


def test_two_shards_merge_into_one_matrix_with_the_shards_changes(tmp_path: Path) -> None:
    plugins = tmp_path / "shard_plugins.py"
    plugins.write_text(PLUGINS)
    impls = ["--impl", f"{plugins}:correct", "--impl", f"{plugins}:off_by_one"]
    common = [*SEEDS, *impls, "-q", "--xfail-dir", str(tmp_path / "none")]
    assert main(["matrix", *common, "--shard", "1/2", "--json", str(tmp_path / "a.json")]) == 0
    assert main(["matrix", *common, "--shard", "2/2", "--json", str(tmp_path / "b.json")]) == 1
    first = json.loads((tmp_path / "a.json").read_text())
    assert [i["name"] for i in first["implementations"]] == [f"{plugins}:correct"]

    status = main(
        ["matrix", "--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--json", str(tmp_path / "m.json")]
    )
    merged = json.loads((tmp_path / "m.json").read_text())
    assert status == 1  # off_by_one's failures are changes against its (absent) xfail file
    assert [i["name"] for i in merged["implementations"]] == [f"{plugins}:correct", f"{plugins}:off_by_one"]
    cells = {case["name"]: case["results"] for case in merged["cases"]}
    assert cells["seed/groups2"][f"{plugins}:correct"]["status"] == "passed"
    assert cells["seed/groups2"][f"{plugins}:off_by_one"]["kind"] == "wrong_values"
    assert merged["table"]["seed"][f"{plugins}:off_by_one"] == {"wrong_values": 2}
    assert len(merged["changes"]) == 2 and merged["settings"]["merged_from"][0].endswith("a.json")


def test_overlapping_shards_are_refused_naming_both_files(tmp_path: Path) -> None:
    document = {"implementations": [{"name": "jax"}], "cases": [], "changes": []}
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"'jax' is in both .*a\.json and .*b\.json"):
        merge_matrix_files([tmp_path / "a.json", tmp_path / "b.json"])
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(ValueError, match=r"c\.json: not a matrix JSON file"):
        merge_matrix_files([tmp_path / "c.json"])
