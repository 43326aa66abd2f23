"""The feature table, the coverage grid and `conformance coverage`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conformance.cases.features import ERROR_PREDICATES, error_kinds_of
from conformance.cases.loader import load_cases
from conformance.cases.schema import ConvConfig
from conformance.cli import main
from conformance.tools.coverage import coverage_grid, format_coverage
from tests.helpers import write_case

LIBRARY = """
name: lib/depthwise_empty_batch
conv: {in_channels: 3, out_channels: 3, kernel_size: [1, 3], groups: 3, padding: [0, 1], padding_mode: circular}
input: {fill: 1, shape: [0, 3, 2, 4]}
---
name: lib/multiplier_unbatched
conv: {in_channels: 2, out_channels: 6, kernel_size: 2, groups: 2, stride: [2, 1], bias: false, padding: valid}
dtype: float64
input: {random: {}, shape: [2, 5, 5]}
---
name: lib/dense
conv: {in_channels: 2, out_channels: 3, kernel_size: 1}
input: {random: {}, shape: [2, 2, 1, 1]}
---
name: lib/bad_stride
conv: {in_channels: 2, out_channels: 2, kernel_size: 1, stride: 0}
input: {fill: 1, shape: [1, 2, 2, 2]}
expect_error: true
"""


def test_each_case_lands_in_the_cells_it_exercises(tmp_path: Path) -> None:
    write_case(tmp_path, LIBRARY, "lib.yaml")
    write_case(tmp_path, "conv: {in_channels: x}\n", "broken.yaml")
    grid = coverage_grid(load_cases([tmp_path / "cases"]))
    names = lambda axis, cell: grid.cell(axis, cell).cases  # noqa: E731
    assert (grid.total_cases, grid.error_cases, len(grid.broken_files)) == (4, 1, 1)
    assert names("groups", "groups = 1 (dense)") == ["lib/dense"]
    assert names("groups", "depthwise (groups = in = out channels)") == ["lib/depthwise_empty_batch"]
    assert names("groups", "depth multiplier (groups = in, out = k x in)") == ["lib/multiplier_unbatched"]
    assert names("groups", "groups > 1, several outputs per group") == ["lib/multiplier_unbatched"]
    assert names("batch", "empty batch (N = 0)") == ["lib/depthwise_empty_batch"]
    assert names("batch", "unbatched (C, *spatial)") == ["lib/multiplier_unbatched"]
    assert names("padding mode", "circular (with padding > 0)") == ["lib/depthwise_empty_batch"]
    assert names("padding mode", "zeros (with padding > 0)") == []  # zeros without padding does not count
    assert names("axes differ", "stride") == ["lib/multiplier_unbatched"]
    assert names("dtype", "float64") == ["lib/multiplier_unbatched"]
    assert names("error kind", "stride <= 0") == ["lib/bad_stride"]
    assert names("stride", "stride 1") == ["lib/depthwise_empty_batch", "lib/dense"]  # error cases stay out
    assert ("padding", "padding int > 0") in {(c.axis, c.name) for c in grid.empty_cells}
    data = grid.to_dict()
    assert data["axes"][0]["axis"] == "op" and "error kind: groups <= 0" in data["empty"]
    assert names("op", "Conv2d") == [
        "lib/depthwise_empty_batch",
        "lib/multiplier_unbatched",
        "lib/dense",
        "lib/bad_stride",
    ]


def test_fields_newer_case_formats_add_are_read_defensively(tmp_path: Path) -> None:
    write_case(tmp_path, LIBRARY, "lib.yaml")
    cases = load_cases([tmp_path / "cases"])
    assert coverage_grid(cases).cell("backward", "gradients checked").count == 0
    cases[0].backward = True  # what a case format with `backward:` will set
    grid = coverage_grid(cases)
    assert grid.cell("backward", "gradients checked").cases == ["lib/depthwise_empty_batch"]
    assert grid.cell("backward", "forward only").count == 2


# Each layer torch refuses, with the reason the table must give, and layers at the edge it accepts.
LAYERS = [
    (dict(in_channels=5, out_channels=4, groups=2), (1, 5, 3, 3), {"in_channels not divisible by groups"}),
    (dict(in_channels=4, out_channels=6, groups=4), (1, 4, 3, 3), {"out_channels not divisible by groups"}),
    (dict(groups=0), (1, 2, 3, 3), {"groups <= 0"}),
    (dict(stride=(1, 0)), (1, 2, 3, 3), {"stride <= 0"}),
    (dict(dilation=(0, 1)), (1, 2, 3, 3), {"dilation <= 0"}),
    (dict(kernel_size=(0, 1)), (1, 2, 3, 3), {"kernel_size <= 0"}),
    (dict(padding=(0, -1)), (1, 2, 3, 3), {"negative padding"}),
    (dict(padding="full"), (1, 2, 3, 3), {"unknown padding string or mode"}),
    (dict(padding_mode="mirror", padding=1), (1, 2, 3, 3), {"unknown padding string or mode"}),
    (dict(padding="same", stride=2), (1, 2, 3, 3), {"padding 'same' with stride > 1"}),
    (dict(kernel_size=(2, 4), dilation=(1, 2)), (1, 2, 3, 6), {"kernel larger than padded input"}),
    (dict(padding=(3, 0), padding_mode="reflect"), (1, 2, 3, 3), {"reflect padding >= input size"}),
    (dict(padding=(0, 4), padding_mode="circular"), (1, 2, 3, 3), {"circular padding wraps more than once"}),
    (dict(), (1, 3, 3, 3), {"input channels != in_channels"}),
    (dict(), (2, 3), {"input rank not the op's (Conv2d: 3-D or 4-D)"}),
    # valid at the edge:
    (dict(kernel_size=(2, 4), dilation=(1, 2)), (1, 2, 3, 7), set()),  # the dilated kernel just fits
    (dict(padding=(2, 0), padding_mode="reflect"), (1, 2, 3, 3), set()),
    (dict(padding=(0, 3), padding_mode="circular"), (1, 2, 3, 3), set()),  # wraps exactly once
    (dict(kernel_size=(2, 3), padding="same"), (2, 3, 3), set()),
]


@pytest.mark.parametrize("arguments,input_shape,kinds", LAYERS)
def test_error_kinds_agree_with_what_torch_refuses(arguments: dict, input_shape: tuple, kinds: set) -> None:
    conv = ConvConfig(**{"in_channels": 2, "out_channels": 2, "kernel_size": 1, **arguments})
    assert error_kinds_of(conv, input_shape) == kinds
    assert kinds <= set(ERROR_PREDICATES)
    try:
        module = torch.nn.Conv2d(**conv.torch_kwargs())
        module(torch.from_numpy(np.ones(input_shape, dtype=np.float32)))
        refused = False
    except (RuntimeError, ValueError):
        refused = True
    assert refused == bool(kinds)


def test_coverage_command_prints_the_grid_and_writes_json(tmp_path: Path, capsys) -> None:
    write_case(tmp_path, LIBRARY, "lib.yaml")
    report = tmp_path / "out" / "coverage.json"
    assert main(["coverage", str(tmp_path / "cases"), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    grid = coverage_grid(load_cases([tmp_path / "cases"]))
    assert out.strip() == format_coverage(grid)
    assert out.startswith("coverage of 4 cases (3 valid layers, 1 expected errors)")
    assert f"{len(grid.empty_cells)} of {len(grid.cells)} cells empty:" in out
    assert "  padding: padding int > 0" in out.splitlines()
    assert json.loads(report.read_text()) == grid.to_dict()
    assert main(["coverage", "/no/such/cases"]) == 2


# The other ops: their own rules (output_padding, zeros-only padding mode, input rank) and the
# shared ones, each against what torch.nn.<type> itself refuses.
ND_LAYERS = [
    (
        dict(type="ConvTranspose2d", stride=2, output_padding=2),
        (1, 2, 3, 3),
        {"output_padding not smaller than stride or dilation"},
    ),
    (dict(type="ConvTranspose1d", stride=2, dilation=3, output_padding=2), (1, 2, 3), set()),  # below dilation
    (
        dict(type="ConvTranspose3d", padding_mode="reflect"),
        (1, 2, 2, 2, 2),
        {"transposed with padding_mode other than zeros"},
    ),
    (dict(type="ConvTranspose1d", kernel_size=5), (1, 2, 2), set()),  # a transposed kernel may exceed the input
    (dict(type="Conv1d", kernel_size=5), (1, 2, 2), {"kernel larger than padded input"}),
    (
        dict(type="Conv3d", padding=(0, 0, 3), padding_mode="reflect"),
        (1, 2, 2, 2, 3),
        {"reflect padding >= input size"},
    ),
    (dict(type="Conv3d", stride=(1, 0, 1)), (1, 2, 2, 2, 2), {"stride <= 0"}),
    (dict(type="Conv1d"), (1, 2, 3, 3), {"input rank not the op's (Conv2d: 3-D or 4-D)"}),
    (dict(type="ConvTranspose3d"), (1, 3, 2, 2, 2), {"input channels != in_channels"}),
    (dict(type="ConvTranspose2d", in_channels=3, groups=2), (1, 3, 2, 2), {"in_channels not divisible by groups"}),
    (dict(type="Conv1d", padding="same", kernel_size=4), (2, 5), set()),
]


@pytest.mark.parametrize("arguments,input_shape,kinds", ND_LAYERS)
def test_error_kinds_of_every_op_agree_with_what_torch_refuses(arguments: dict, input_shape: tuple, kinds: set) -> None:
    conv = ConvConfig(**{"in_channels": 2, "out_channels": 2, "kernel_size": 1, **arguments})
    assert error_kinds_of(conv, input_shape) == kinds
    try:
        module = getattr(torch.nn, conv.type)(**conv.torch_kwargs())
        module(torch.from_numpy(np.ones(input_shape, dtype=np.float32)))
        refused = False
    except (RuntimeError, ValueError):
        refused = True
    assert refused == bool(kinds)


def test_the_op_matrix_crosses_every_cell_with_each_op(tmp_path: Path) -> None:
    from conformance.tools.coverage import op_matrix

    write_case(
        tmp_path,
        LIBRARY
        + """---
name: lib/transposed
conv: {type: ConvTranspose1d, in_channels: 2, out_channels: 4, kernel_size: 3, stride: 2, output_padding: 1, groups: 2}
input: {random: {}, shape: [2, 5]}
""",
        "lib.yaml",
    )
    grid = coverage_grid(load_cases([tmp_path / "cases"]))
    matrix = op_matrix(grid)
    assert matrix["ConvTranspose1d"][("output_padding", "transposed, output_padding > 0")] == 1
    assert matrix["ConvTranspose1d"][("batch", "unbatched (C, *spatial)")] == 1
    assert matrix["Conv2d"][("batch", "unbatched (C, *spatial)")] == 1
    assert matrix["Conv2d"][("error kind", "stride <= 0")] == 1  # error cases count on the op axis too
    text = format_coverage(grid)
    assert "by op (C = Conv, T = ConvTranspose" in text and "C1d  C2d  C3d  T1d  T2d  T3d" in text
