"""The extra checks: torch layout variants, metamorphic relations and the wiring probe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conformance.cli import main
from conformance.judging import verdict
from conformance.running import runner
from conformance.running.checks import metamorphic, wiring
from conformance.running.checks.metamorphic import block_diagonal_weight, within_group_permutation
from conformance.running.implementations import Implementation, load_implementation
from conformance.running.runner import run_case
from conformance.running.torch_oracle import TorchOracle, strided_copy, torch_forward_variant
from reference_impl import conv2d
from tests.helpers import assert_is_case, load_one, torch_conv2d, write_case
from tests.plugins import classic_bugs

GROUPED = """
name: demo/grouped
conv: {in_channels: 6, out_channels: 9, kernel_size: [3, 2], stride: [2, 1], padding: [1, 0], groups: 3}
input: {random: {}, shape: [2, 6, 7, 5]}
"""
REFERENCE = load_implementation(None)


def problems_of(item) -> list[str]:
    return [f"{p.line}:{'.'.join(map(str, p.key_path))}: {p.message}" for p in item.problems]


def checks_named(result, prefix: str) -> list:
    return [check for check in result.checks if check.name.startswith(prefix)]


def plugin(function) -> Implementation:
    return Implementation(function.__name__, function)


# --- torch variants ---------------------------------------------------------------------------


def test_strided_copy_is_a_non_contiguous_view_with_the_same_values() -> None:
    weight = torch.arange(9.0).reshape(9, 1, 1, 1)  # a depthwise 1x1 weight: easy to leave "contiguous"
    copy = strided_copy(weight)
    assert torch.equal(copy, weight) and not copy.is_contiguous()


def test_each_variant_computes_the_case_and_is_reported_on_its_own_line(tmp_path: Path) -> None:
    case = assert_is_case(load_one(tmp_path, GROUPED))
    tensors = runner.make_tensors(case)
    for variant in ("contiguous", "channels_last", "noncontiguous_weight"):
        np.testing.assert_allclose(
            torch_forward_variant(case, tensors.input, tensors.weight, tensors.bias, variant),
            torch_conv2d(tensors.input, tensors.weight, tensors.bias, (2, 1), (1, 0), 1, 3),
            rtol=1e-5,
            atol=1e-5,
        )
    result = run_case(case, REFERENCE)
    assert [check.name for check in checks_named(result, "torch[")] == [
        "torch[channels_last]",
        "torch[noncontiguous_weight]",
    ]


class ChannelsLastLosesChannel4(TorchOracle):
    """A torch release that loses output channel 4 in channels_last (a fake oracle: the run takes it)."""

    def forward_variant(self, case, x, weight, bias, variant, device="cpu"):
        output = super().forward_variant(case, x, weight, bias, variant, device)
        if variant == "channels_last":
            output = output.copy()
            output[:, 4] = 0
        return output


def test_a_torch_layout_that_disagrees_fails_its_own_check_only(tmp_path: Path) -> None:
    case = assert_is_case(load_one(tmp_path, GROUPED))
    result = run_case(case, REFERENCE, oracle=ChannelsLastLosesChannel4())
    failed = [check.name for check in result.checks if not check.passed]
    assert failed == ["torch[channels_last]"]
    assert "reference vs torch[channels_last]" in result.message


def test_torch_variants_key_selects_and_is_validated(tmp_path: Path) -> None:
    only = assert_is_case(load_one(tmp_path, GROUPED + "torch_variants: [contiguous]\n"))
    assert only.torch_variants == ("contiguous",)
    assert checks_named(run_case(only, REFERENCE), "torch[") == []
    assert problems_of(load_one(tmp_path, GROUPED + "torch_variants: [channels_last]\n")) == [
        "4:torch_variants: must include 'contiguous': it is the forward comparison every case makes"
    ]
    assert problems_of(load_one(tmp_path, GROUPED + "torch_variants: [contiguous, channel_last]\n")) == [
        "4:torch_variants.1: expected one of contiguous, channels_last, noncontiguous_weight, got str "
        "'channel_last' (did you mean 'channels_last'?)"
    ]


# --- metamorphic relations -----------------------------------------------------------------------


def test_block_diagonal_weight_turns_the_grouped_layer_into_a_dense_one() -> None:
    rng = np.random.default_rng(0)
    x, weight = rng.normal(size=(2, 6, 5, 4)), rng.normal(size=(9, 2, 3, 2))
    dense = block_diagonal_weight(weight, 3)
    assert dense.shape == (9, 6, 3, 2)
    np.testing.assert_allclose(torch_conv2d(x, dense, groups=1), torch_conv2d(x, weight, groups=3), atol=1e-12)


def test_within_group_permutation_never_leaves_a_group_and_moves_every_channel() -> None:
    permutation = within_group_permutation(12, 3)
    assert sorted(permutation) == list(range(12))
    assert all(c // 4 == p // 4 for c, p in enumerate(permutation))
    assert all(c != p for c, p in enumerate(permutation))


def test_relations_hold_for_the_reference_and_run_through_the_implementation(tmp_path: Path) -> None:
    case = assert_is_case(load_one(tmp_path, GROUPED))
    calls = []

    def counting(*args, **kwargs):
        calls.append(kwargs.get("groups"))
        return conv2d(*args, **kwargs)

    result = run_case(case, plugin(counting))
    names = [check.name for check in checks_named(result, "metamorphic")]
    assert names == ["metamorphic:block-diagonal", "metamorphic:per-group", "metamorphic:permutation"]
    assert all(check.passed for check in checks_named(result, "metamorphic"))
    # forward, block-diagonal (groups=1), 3 per-group slices (groups=1), permutation, wiring probe
    assert calls == [3, 1, 1, 1, 1, 3, 3]


@pytest.mark.parametrize(
    "bug, relation",
    [
        (classic_bugs.outputs_interleaved, "metamorphic:block-diagonal"),
        (classic_bugs.weight_rows_interleaved, "metamorphic:per-group"),
        (classic_bugs.inputs_modulo_groups, "metamorphic:permutation"),
    ],
)
def test_each_relation_catches_a_grouping_bug_without_torch(tmp_path: Path, bug, relation: str) -> None:
    case = assert_is_case(load_one(tmp_path, GROUPED))
    (check,) = [c for c in run_case(case, plugin(bug)).checks if c.name == relation]
    assert not check.passed and check.comparison is not None and check.comparison.mismatched > 0


def test_big_cases_are_checked_on_a_crop(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(metamorphic, "MAX_DENSE_MULTIPLY_ADDS", 100)
    case = assert_is_case(load_one(tmp_path, GROUPED.replace("[2, 6, 7, 5]", "[3, 6, 30, 20]")))
    checks = checks_named(run_case(case, REFERENCE), "metamorphic")
    assert len(checks) == 3 and all(check.passed for check in checks)
    assert all("(on a crop: input [1, 6, 7, 5] of [3, 6, 30, 20])" in check.summary for check in checks)
    wrong = checks_named(run_case(case, plugin(classic_bugs.outputs_interleaved)), "metamorphic:block")
    assert not wrong[0].passed


def test_the_relations_reuse_the_cases_bound_and_make_a_crops_bound_once(tmp_path: Path, monkeypatch) -> None:
    # The bound costs a float64 reference call: the relations compare on the case's own input (its
    # bound is the forward check's) or on one crop (one bound for its three comparisons).
    made = []
    real_bound = verdict.forward_bound

    def counting_bound(dtype, conv_kwargs, x, *args, **kwargs):
        made.append(list(x.shape))
        return real_bound(dtype, conv_kwargs, x, *args, **kwargs)

    monkeypatch.setattr(verdict, "forward_bound", counting_bound)
    small = assert_is_case(load_one(tmp_path, GROUPED))
    assert all(check.passed for check in run_case(small, REFERENCE).checks)
    assert made == [[2, 6, 7, 5]]

    made.clear()
    monkeypatch.setattr(metamorphic, "MAX_DENSE_MULTIPLY_ADDS", 100)
    big = assert_is_case(load_one(tmp_path, GROUPED.replace("[2, 6, 7, 5]", "[3, 6, 30, 20]")))
    assert len(checks_named(run_case(big, REFERENCE), "metamorphic")) == 3
    assert made == [[3, 6, 30, 20], [1, 6, 7, 5]]
    # the crop's comparisons are judged by the crop's own bound: a wrong plug-in still fails them
    made.clear()
    wrong = checks_named(run_case(big, plugin(classic_bugs.outputs_interleaved)), "metamorphic:block")
    assert not wrong[0].passed and made == [[3, 6, 30, 20], [1, 6, 7, 5]]


def test_per_group_check_samples_many_groups_and_names_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(metamorphic, "MAX_GROUP_CALLS", 4)
    case = assert_is_case(
        load_one(
            tmp_path,
            """
        conv: {in_channels: 10, out_channels: 10, kernel_size: 3, padding: 1, groups: 10}
        input: {random: {}, shape: [2, 10, 4, 5]}
    """,
        )
    )
    (check,) = checks_named(run_case(case, REFERENCE), "metamorphic:per-group")
    assert check.passed and "(groups 0, 3, 6, 9 of 10)" in check.summary


# --- wiring probe --------------------------------------------------------------------------------


def test_the_probe_is_one_call_on_a_small_input_and_matches_for_the_reference(tmp_path: Path) -> None:
    case = assert_is_case(load_one(tmp_path, GROUPED))
    shapes = []

    def recording(x, *args, **kwargs):
        shapes.append(x.shape)
        return conv2d(x, *args, **kwargs)

    connectivity = wiring.measure_connectivity(plugin(recording), case)
    assert shapes == [(6, 6, 1, 2)]  # C_in one-hot samples; 1 row (padded to 3) and 2 columns fit the 3x2 kernel
    assert connectivity.matches and connectivity.measured.shape == (9, 6)
    assert connectivity.measured.sum() == 9 * 2  # each output reads its group's 2 inputs


def test_the_probe_names_the_miswired_pairs(tmp_path: Path) -> None:
    case = assert_is_case(load_one(tmp_path, GROUPED))
    connectivity = wiring.measure_connectivity(plugin(classic_bugs.inputs_modulo_groups), case)
    assert not connectivity.matches
    assert (0, 3) in connectivity.extra and (0, 1) in connectivity.missing  # o=0 reads c=0 and 3, not 0 and 1
    lines = wiring.describe_differences(connectivity) + wiring.format_connectivity(connectivity)
    assert any(
        line.startswith("pairs connected but in different groups") or "connected but in different groups" in line
        for line in lines
    )
    assert "o=0    #..#..     ##....     <- differs" in lines


def test_zeros_cannot_hide_a_connection(tmp_path: Path) -> None:
    """The probe's own all-ones weight: a case weight of zeros does not make the probe blind."""
    case = assert_is_case(load_one(tmp_path, GROUPED + "weight: {fill: 0}\n"))
    assert wiring.measure_connectivity(REFERENCE, case).matches
    result = run_case(case, plugin(classic_bugs.group_offset_missing))
    (check,) = checks_named(result, "wiring")
    assert not check.passed  # the forward comparison cannot see it (all outputs are 0), the probe can
    assert all(c.passed for c in result.checks if c.name == "forward")


def test_a_layer_that_reads_only_padding_has_nothing_to_probe(tmp_path: Path) -> None:
    """Found by `conformance fuzz --seed 0`: a 1x1 input, padding 1 and stride 2 along W put every
    output on padding; the probe must say so, not report every connection missing."""
    case = assert_is_case(
        load_one(
            tmp_path,
            """
        conv: {in_channels: 2, out_channels: 2, kernel_size: 1, stride: [1, 2], padding: 1, groups: 2, bias: false}
        input: {values: [2, 1], shape: [1, 2, 1, 1]}
    """,
        )
    )
    with pytest.raises(wiring.NothingToProbe, match="along W"):
        wiring.probe_spatial_size(case)
    result = run_case(case, REFERENCE)
    (check,) = checks_named(result, "wiring")
    assert check.passed and "nothing to measure" in check.summary
    assert result.status == "passed"


def test_probe_cli(tmp_path: Path, capsys) -> None:
    path = write_case(
        tmp_path,
        GROUPED + "---\nname: demo/dense\nconv: {in_channels: 2, out_channels: 3, "
        "kernel_size: 1}\ninput: {fill: 1, shape: [2, 1, 1]}\n",
    )
    assert main(["probe", str(path), "--case", "demo/grouped"]) == 0
    out = capsys.readouterr().out
    assert "probe input [6, 6, 1, 2]" in out and "ok   block-diagonal" in out and "o=8    ....##" in out
    assert main(["probe", str(path)]) == 0  # every case of the file; the unbatched one too
    assert "case demo/dense" in capsys.readouterr().out
    code = main(["probe", str(path), "--impl", "tests.plugins.classic_bugs:outputs_interleaved"])
    out = capsys.readouterr().out
    assert code == 1 and "FAIL 12 pairs connected but in different groups" in out
    assert main(["probe", str(path), "--case", "nope"]) == 2
    assert "has no case named 'nope'; it has: demo/grouped, demo/dense" in capsys.readouterr().err
    assert main(["probe", str(tmp_path / "missing.yaml")]) == 2


# --- expect_error with match ----------------------------------------------------------------------


def test_expect_error_match_must_fit_both_messages(tmp_path: Path) -> None:
    text = """
        conv: {in_channels: 4, out_channels: 4, kernel_size: 3, groups: 2, stride: [1, 0]}
        input: {fill: 1, shape: [2, 4, 5, 7]}
        expect_error: {match: "MATCH"}
    """
    right = assert_is_case(load_one(tmp_path, text.replace("MATCH", "non-positive stride")))
    assert run_case(right, REFERENCE).status == "passed"
    wrong = assert_is_case(load_one(tmp_path, text.replace("MATCH", "stride must be positive")))
    result = run_case(wrong, REFERENCE)
    # match: judges torch (a pattern torch no longer fits means the case is stale: an error of the case);
    # the implementation's wording is judged only with strict_errors (tests/test_gate.py).
    assert result.status == "error" and result.kind is None
    assert "torch's error does not match /stride must be positive/" in result.message
