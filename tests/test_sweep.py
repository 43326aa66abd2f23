"""`sweep:` expansion: names, per-expansion shapes and seeds, and a clear error for every bad sweep."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from conformance.cases.errors import CaseError
from conformance.cases.loader import load_file
from conformance.cases.schema import Case
from conformance.cases.sweep import MAX_SWEEP_CASES
from conformance.running.runner import make_tensors
from tests.helpers import write_case

SWEEP = """
name: demo/sweep
conv: {in_channels: 6, out_channels: 6, kernel_size: 3}
input: {random: {}, shape: [2, 6, 7, 5]}
sweep:
  groups: [1, 2, 3]
  stride: [1, [2, 1]]
"""


def load(tmp_path: Path, text: str) -> list:
    return load_file(write_case(tmp_path, text))


def messages(item) -> list[str]:
    assert isinstance(item, CaseError), f"expected a CaseError, got {item!r}"
    return [f"{p.line}:{'.'.join(map(str, p.key_path))}: {p.message}" for p in item.problems]


def test_sweep_expands_to_the_cartesian_product_with_named_cases(tmp_path: Path) -> None:
    cases = load(tmp_path, SWEEP)
    assert all(isinstance(case, Case) for case in cases)
    assert [case.name for case in cases] == [
        "demo/sweep[groups=1,stride=1]",
        "demo/sweep[groups=1,stride=2x1]",
        "demo/sweep[groups=2,stride=1]",
        "demo/sweep[groups=2,stride=2x1]",
        "demo/sweep[groups=3,stride=1]",
        "demo/sweep[groups=3,stride=2x1]",
    ]
    assert [(case.conv.groups, case.conv.stride) for case in cases[2:4]] == [(2, 1), (2, (2, 1))]


def test_each_expansion_derives_its_own_shapes_and_seeds(tmp_path: Path) -> None:
    cases = load(tmp_path, SWEEP + "  dtype: [float32, float64]\n  input.shape: [[2, 6, 7, 5], [6, 7, 5]]\n")
    assert len(cases) == 24
    by_name = {case.name: case for case in cases}
    grouped = by_name["demo/sweep[groups=3,stride=1,dtype=float64,input.shape=6x7x5]"]
    tensors = make_tensors(grouped)
    assert tensors.weight.shape == (6, 2, 3, 3)  # in_channels/groups = 2
    assert tensors.input.shape == (6, 7, 5) and tensors.input.dtype == np.float64
    other = make_tensors(by_name["demo/sweep[groups=2,stride=1,dtype=float64,input.shape=6x7x5]"])
    assert other.weight.shape == (6, 3, 3, 3)
    assert not np.array_equal(tensors.input, other.input)  # seeds derive from the expanded name
    assert np.array_equal(make_tensors(grouped).input, tensors.input)  # and are reproducible


def test_one_bad_expansion_is_an_error_of_its_own(tmp_path: Path) -> None:
    items = load(
        tmp_path,
        """
        name: demo/bad_one
        conv: {in_channels: 4, out_channels: 4, kernel_size: 1, bias: false}
        input: {fill: 1, shape: [1, 4, 1, 1]}
        weight: {values: [1, 2, 3, 4, 5, 6, 7, 8], shape: [4, 2, 1, 1]}
        sweep: {groups: [2, 4]}
    """,
    )
    assert isinstance(items[0], Case) and items[0].name == "demo/bad_one[groups=2]"
    assert items[1].case_name == "demo/bad_one[groups=4]"
    assert "does not match the layer" in messages(items[1])[0]


def test_sweep_runs_as_one_pytest_item_per_expansion(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["conformance.pytest_plugin"]')
    (pytester.mkdir("cases") / "sweep.yaml").write_text(textwrap.dedent(SWEEP).lstrip())
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*sweep.yaml::demo/sweep?groups=2,stride=2x1? PASSED*"])
    selected = pytester.runpytest("-q", "-k", "sweep and 2x1", "-p", "no:cacheprovider")  # `=` is not -k syntax
    selected.assert_outcomes(passed=3, deselected=3)


@pytest.mark.parametrize(
    "sweep, expected",
    [
        ("{gruops: [1, 2]}", "2:sweep.gruops: cannot sweep 'gruops' (did you mean 'groups'?)"),
        ("{input: [[1, 2, 3, 4]]}", "2:sweep.input: cannot sweep 'input'"),
        ("{groups: []}", "2:sweep.groups: expected a non-empty list of values, got []"),
        ("{groups: 2}", "2:sweep.groups: expected a non-empty list of values, got 2"),
        ("{groups: [1, 2, 1]}", "2:sweep.groups: value 1 is listed twice"),
        ("[groups, 2]", "2:sweep: expected a mapping of swept keys to lists of values"),
    ],
)
def test_bad_sweeps_name_the_file_and_key(tmp_path: Path, sweep: str, expected: str) -> None:
    items = load(
        tmp_path,
        f"input: {{fill: 1, shape: [1, 2, 3, 3]}}\nsweep: {sweep}\n"
        "conv: {in_channels: 2, out_channels: 2, kernel_size: 1}\n",
    )
    assert len(items) == 1
    found = messages(items[0])
    assert any(message.startswith(expected) for message in found), found
    assert str(items[0].file).endswith("case.yaml")


def test_expected_with_sweep_is_refused(tmp_path: Path) -> None:
    items = load(
        tmp_path,
        """
        conv: {in_channels: 2, out_channels: 2, kernel_size: 1}
        input: {fill: 1, shape: [1, 2, 1, 1]}
        expected: {fill: 0, shape: [1, 2, 1, 1]}
        sweep: {groups: [1, 2]}
    """,
    )
    assert len(items) == 1
    assert messages(items[0]) == [
        "3:expected: 'expected' cannot be combined with 'sweep': one golden output cannot "
        "fit every expansion (write the expansions you want golden outputs for as separate "
        "cases)"
    ]


def test_a_product_over_the_limit_is_refused(tmp_path: Path) -> None:
    side = int(MAX_SWEEP_CASES**0.5) + 1
    values = list(range(1, side + 1))
    items = load(
        tmp_path,
        f"""
        conv: {{in_channels: 1, out_channels: 1, kernel_size: 1}}
        input: {{fill: 1, shape: [1, 1, 1, 1]}}
        sweep: {{stride: {values}, dilation: {values}}}
    """,
    )
    assert len(items) == 1
    (message,) = messages(items[0])
    assert message.startswith(f"3:sweep: the sweep expands to {side * side:,} cases ({side} stride x {side} dilation)")
    assert f"over the limit of {MAX_SWEEP_CASES}" in message


def test_the_op_is_sweepable_and_the_weight_layout_follows_each_expansion(tmp_path: Path) -> None:
    cases = load(
        tmp_path,
        """
        name: demo/ops
        conv: {in_channels: 4, out_channels: 6, kernel_size: 3, stride: 2, groups: 2}
        input: {random: {}, shape: [1, 4, 5, 5]}
        sweep:
          type: [Conv2d, ConvTranspose2d]
          output_padding: [0, 1]
    """,
    )
    by_name = {item.case_name if isinstance(item, CaseError) else item.name: item for item in cases}
    conv = by_name["demo/ops[type=Conv2d,output_padding=0]"]
    assert isinstance(conv, CaseError)  # Conv2d takes no output_padding: that expansion alone is refused
    assert any("Conv2d takes no 'output_padding'" in line for line in messages(conv))
    transposed = by_name["demo/ops[type=ConvTranspose2d,output_padding=1]"]
    assert make_tensors(transposed).weight.shape == (4, 3, 3, 3)  # (in, out/groups, kH, kW)
    assert transposed.conv.output_padding == 1
