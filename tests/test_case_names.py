"""Every case's name says what the case feeds: a name that promises a 4-D input, a conv3d or
groups=3 must not hold a 3-D input, a Conv2d or groups=2 (issue 19 item 10: such a name misleads
whoever reads a failure report)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance.cases.errors import CaseError
from conformance.cases.loader import load_cases
from conformance.cases.schema import Case

ROOT = Path(__file__).resolve().parent.parent


def name_mismatches(case: Case) -> list[str]:
    """What the last part of ``case``'s name promises and the case does not feed."""
    name = case.name.rsplit("/", 1)[-1].lower()
    problems = []
    rank = re.search(r"input_(\d)d", name)
    if rank and len(case.input_shape) != int(rank[1]):
        problems.append(f"'input_{rank[1]}d' in the name, but the input has shape {list(case.input_shape)}")
    transposed = re.search(r"conv_?transpose(\d)d", name)
    plain = None if transposed else re.search(r"conv(\d)d", name)
    for found, module in ((transposed, "ConvTranspose"), (plain, "Conv")):
        if found and case.conv.type != f"{module}{found[1]}d":
            problems.append(f"'{found[0]}' in the name, but the op is {case.conv.type}")
    for key in ("groups", "stride", "dilation"):
        promised = re.search(rf"(?:^|[_-]){key}[=_-]?(\d+)(?:$|[_-])", name)
        if promised and int(promised[1]) not in case.conv.per_dim(key) + (getattr(case.conv, key),):
            problems.append(f"'{promised[0].strip('_-')}' in the name, but {key} is {getattr(case.conv, key)}")
    dtype = re.search(r"(bfloat16|float64|float32|float16)", name)
    if dtype and case.dtype != dtype[1]:
        problems.append(f"'{dtype[1]}' in the name, but the dtype is {case.dtype}")
    return problems


def test_the_checker_catches_a_name_that_promises_another_input_rank(tmp_path: Path) -> None:
    text = (
        "name: errors/conv_transpose3d_input_4d\n"
        "conv: {type: ConvTranspose3d, in_channels: 2, out_channels: 2, kernel_size: 1}\n"
        "input: {fill: 1, shape: [2, 3, 3]}\n"
        "expect_error: true\n"
    )
    path = tmp_path / "probe.yaml"
    path.write_text(text)
    (case,) = load_cases([str(path)])
    assert isinstance(case, Case)
    assert name_mismatches(case) == ["'input_4d' in the name, but the input has shape [2, 3, 3]"]


@pytest.mark.parametrize(
    "case",
    [case for case in load_cases([str(ROOT / "cases")]) if not isinstance(case, CaseError)],
    ids=lambda case: case.name,
)
def test_every_case_name_matches_what_it_feeds(case: Case) -> None:
    assert name_mismatches(case) == []
