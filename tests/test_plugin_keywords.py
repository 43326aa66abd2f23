"""A plug-in is called with exactly the keywords its signature takes (issue 19 item 1): torch's
own functional ops pass the library; a case needing a keyword the plug-in lacks is skipped with
the reason; a keyword left at torch's default is simply left out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch.nn.functional as F

from conformance.cli import main
from conformance.running.implementations import accepted_keywords, load_implementation
from conformance.running.runner import run_case
from tests.helpers import load_one

TRANSPOSED_REFLECT = """
    name: t/transposed_reflect
    conv: {type: ConvTranspose2d, in_channels: 2, out_channels: 2, kernel_size: 3, padding_mode: reflect}
    input: {fill: 1, shape: [1, 2, 4, 4]}
    expect_error: {match: "Only \\"zeros\\" padding mode is supported"}
"""
PLAIN = """
    name: t/plain
    conv: {in_channels: 4, out_channels: 4, kernel_size: 3, groups: 2}
    input: {random: {}, shape: [1, 4, 5, 5]}
"""


def _conv_transpose2d_with_kwargs(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, **kw
):
    if kw.get("padding_mode", "zeros") != "zeros":
        raise ValueError('Only "zeros" padding mode is supported for ConvTranspose2d')
    return F.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)


def test_torch_builtins_have_their_docstring_signature_read() -> None:
    assert accepted_keywords(F.conv2d) == {"input", "weight", "bias", "stride", "padding", "dilation", "groups"}
    assert "padding_mode" not in accepted_keywords(F.conv_transpose3d)
    assert accepted_keywords(_conv_transpose2d_with_kwargs) is None  # **kw takes everything


def test_a_case_needing_a_keyword_the_plugin_lacks_is_skipped_with_the_reason(tmp_path: Path) -> None:
    case = load_one(tmp_path, TRANSPOSED_REFLECT)
    module = type(F)("torch_transposed_only")
    module.conv_transpose2d = F.conv_transpose2d
    module.ARRAYS = "torch"
    result = run_case(case, load_implementation(module))
    assert result.status == "skipped", result.message
    assert "conv_transpose2d takes no padding_mode= keyword" in result.message
    assert "padding_mode='reflect'" in result.message


def test_a_plugin_taking_kwargs_gets_the_keyword_and_is_judged(tmp_path: Path) -> None:
    case = load_one(tmp_path, TRANSPOSED_REFLECT)
    module = type(F)("kw_module")
    module.conv_transpose2d = _conv_transpose2d_with_kwargs
    result = run_case(case, load_implementation(module, arrays="torch"))
    assert result.status == "passed", result.message  # it got padding_mode='reflect' and refused it


def test_a_keyword_at_its_default_is_left_out_for_a_plugin_without_it(tmp_path: Path) -> None:
    seen: list[dict] = []

    def conv2d(input, weight, bias=None, stride=1, padding=0, groups=1):  # no dilation keyword at all
        seen.append({"stride": stride, "padding": padding, "groups": groups})
        return F.conv2d(input, weight, bias, stride, padding, 1, groups)

    result = run_case(load_one(tmp_path, PLAIN), load_implementation(conv2d, arrays="torch"))
    assert result.status == "passed", result.message
    assert seen and seen[0]["groups"] == 2


def test_a_needed_keyword_missing_from_the_signature_skips_even_a_plain_case(tmp_path: Path) -> None:
    def conv2d(input, weight, bias=None, stride=1, padding=0):  # no groups: it cannot run groups=2
        raise AssertionError("must not be called: it cannot express groups=2")

    result = run_case(load_one(tmp_path, PLAIN), load_implementation(conv2d, arrays="torch"))
    assert result.status == "skipped"
    assert "takes no groups= keyword" in result.message and "groups=2" in result.message


@pytest.mark.slow
def test_torch_functional_ops_as_a_plugin_pass_the_whole_library(capsys, tmp_path: Path) -> None:
    report = tmp_path / "torch-functional.json"
    code = main(["run", "-q", "--impl", "tests.plugins.torch_functional_ops", "--no-isolate", "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    cases = json.loads(report.read_text())["cases"]
    by_status = {status: [c for c in cases if c["status"] == status] for status in {c["status"] for c in cases}}
    assert set(by_status) == {"passed", "skipped"}, {s: len(c) for s, c in by_status.items()}
    assert len(by_status["passed"]) >= 250
    for skipped in by_status["skipped"]:  # only what torch.nn.functional cannot express, or has no backward for
        assert "takes no padding_mode= keyword" in skipped["message"] or "offers no backward" in skipped["message"]
    assert np.any([c["name"].startswith("errors/") and c["status"] == "passed" for c in cases])
