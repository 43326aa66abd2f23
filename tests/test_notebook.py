"""`explain()` in a notebook: a case file, a bundled case name, a live torch convolution or a whole
model. Its sums are checked against what the torch module itself computes, its HTML against the
report's section, and a model's table against parameters and multiply-adds counted by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conformance.notebook import (
    CaseExplanation,
    ModelExplanation,
    case_from_module,
    default_input_shape,
    explain,
    scope_css,
)
from conformance.teaching.explain_text import render_text

ROOT = Path(__file__).resolve().parent.parent


def explained(subject: Any, **options: Any) -> CaseExplanation:
    """explain() of a case or a layer, checked to be one."""
    e = explain(subject, **options)
    assert isinstance(e, CaseExplanation), e
    return e


def listed(model: Any, **options: Any) -> ModelExplanation:
    """explain() of a model, checked to be a model's listing."""
    e = explain(model, **options)
    assert isinstance(e, ModelExplanation), e
    return e


def input_of(e: CaseExplanation) -> np.ndarray:
    assert e.result.run is not None, e.result.message
    return np.asarray(e.result.run.tensors.input)


def test_the_package_exports_explain() -> None:
    import conformance

    assert conformance.explain is explain


def test_a_bundled_case_name_prints_the_seed_sum_and_renders_it_with_pictures_and_hover() -> None:
    e = explained("seed/groups3")
    text = str(e)
    assert "y[0,2,0,0] = 650 = 5×10 (in 2) + 6×100 (in 3)" in text
    assert repr(e) == text  # a plain Python prompt shows the same
    page = e._repr_html_()
    assert "650 = 5×10 + 6×100" in page
    assert page.count("<svg") >= 3  # connectivity, weights, element: the report's pictures
    assert "data-geometry=" in page and "<script>" in page  # hover/tap lights up what an output reads
    # the report's styles are scoped, so the notebook's own page keeps its look
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    selectors = [
        selector.strip()
        for found in re.findall(r"([^{}]+)\{", style)
        if not found.strip().startswith("@")
        for selector in found.split(",")
    ]
    assert selectors and all(s.startswith(".conformance-explain") for s in selectors), selectors


def test_a_case_file_path_and_a_case_of_a_file_with_several() -> None:
    by_path = explained(ROOT / "cases" / "tutorial" / "01_dense.yaml")
    assert "y[0,0,0,0] = 21 = 1×1 (in 0) + 2×10 (in 1)" in str(by_path)
    shuffle = explained("tutorial/07_stacked/4_shuffle")  # a case name inside a file with five cases
    assert shuffle.result.name == "tutorial/07_stacked/4_shuffle"
    picked = explained(str(ROOT / "cases" / "tutorial" / "07_stacked_groups.yaml"), case="4_shuffle")
    assert picked.result.name == "tutorial/07_stacked/4_shuffle"
    with pytest.raises(ValueError, match="holds 5 cases; choose one with case="):
        explain(str(ROOT / "cases" / "tutorial" / "07_stacked_groups.yaml"))
    with pytest.raises(ValueError, match="neither a case file nor a case name.*seed/groups3"):
        explain("groups3")
    with pytest.raises(ValueError, match="got int"):
        explain(3)


def test_an_exercise_hides_its_values_until_revealed() -> None:
    hidden = explained("tutorial/08_predict/2_offset")
    text = str(hidden)
    assert "y[0,2,0,0] = ?" in text and "--reveal" in text
    assert "(in 4)" not in text and "in 4→out 2" not in text  # neither the sums nor the weight's routes
    assert "650" not in hidden._repr_html_() and "= ?" in hidden._repr_html_()
    shown = str(explained("tutorial/08_predict/2_offset", reveal=True))
    assert re.search(r"y\[0,2,0,0\] = 650000 = 5×10000 \(in 4\) \+ 6×100000 \(in 5\)", shown), shown


LIVE = [
    torch.nn.Conv1d(4, 6, 3, padding=1, groups=2),
    torch.nn.Conv2d(6, 6, 1, groups=3),
    torch.nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=4, padding_mode="reflect"),
    torch.nn.Conv2d(4, 4, (2, 4), padding="same", groups=2, bias=False),
    torch.nn.Conv3d(4, 2, (2, 1, 3), groups=2),
    torch.nn.ConvTranspose1d(4, 2, 3, stride=2, groups=2),
    torch.nn.ConvTranspose2d(4, 6, 2, stride=2, padding=1, output_padding=1, groups=2),
    torch.nn.ConvTranspose3d(2, 4, 1, stride=(2, 1, 1), groups=2),
]


@pytest.mark.parametrize("with_input", [False, True], ids=["default input", "input given"])
@pytest.mark.parametrize("module", LIVE, ids=lambda m: repr(m).split("(")[0] + str(m.groups))
def test_a_live_module_is_explained_with_its_own_weights_and_every_sum_is_its_output(
    module: torch.nn.Module, with_input: bool
) -> None:
    torch.manual_seed(0)
    case = case_from_module(module)
    shape = default_input_shape(case.conv)
    x = torch.randn(2, *shape[1:]) if with_input else None
    e = explained(module, input=x)
    assert e.result.status == "passed", e.result.message
    if x is None:
        x = torch.tensor(input_of(e), dtype=torch.float32)
    with torch.no_grad():
        y = module(x).double().numpy()
    assert e.explanation.elements
    for element in e.explanation.elements:
        assert element.sum.total == pytest.approx(float(y[element.sum.index]), rel=1e-5, abs=1e-5)
    assert e.explanation.grouping is not None and e.explanation.grouping.groups == module.groups
    assert "(built from the module)" in str(e)
    assert "<svg" in e._repr_html_()


def test_the_default_input_of_a_small_layer_names_its_channels_by_digits() -> None:
    e = explained(torch.nn.Conv2d(6, 6, 1, groups=3, bias=False))
    assert input_of(e).reshape(-1).tolist() == [1, 10, 100, 1000, 10000, 100000]
    assert default_input_shape(case_from_module(torch.nn.Conv2d(2, 2, 3, dilation=2)).conv) == (1, 2, 5, 5)


# ---------------------------------------------------------------------------------------------
# Whole models


class InvertedResidual(torch.nn.Module):
    """MobileNetV2's block: 1×1 expand (×6), 3×3 depthwise, 1×1 project, with a skip."""

    def __init__(self, channels: int = 16, expand: int = 6) -> None:
        super().__init__()
        hidden = channels * expand
        self.expand = torch.nn.Conv2d(channels, hidden, 1, bias=False)
        self.depthwise = torch.nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False)
        self.project = torch.nn.Conv2d(hidden, channels, 1, bias=False)
        self.act = torch.nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(self.act(self.depthwise(self.act(self.expand(x)))))


class ResNeXtBlock(torch.nn.Module):
    """ResNeXt's bottleneck, 32×4d: 1×1 reduce to 128, 3×3 with 32 groups of 4, 1×1 back to 256."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(256, 128, 1, bias=False),
            torch.nn.ReLU(),
            torch.nn.Conv2d(128, 128, 3, padding=1, groups=32, bias=False),
            torch.nn.ReLU(),
            torch.nn.Conv2d(128, 256, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def test_a_mobilenet_block_lists_its_depthwise_layer_with_the_saving() -> None:
    e = listed(InvertedResidual(), input=torch.zeros(1, 16, 14, 14))
    assert [layer.name for layer in e.grouped] == ["depthwise"]
    layer = e.grouped[0]
    assert (layer.groups, layer.in_per_group, layer.out_per_group, layer.kind) == (96, 1, 1, "depthwise")
    assert (layer.parameters, layer.dense_parameters) == (96 * 9, 96 * 96 * 9)
    assert (layer.multiply_adds, layer.dense_multiply_adds) == (96 * 9 * 14 * 14, 96 * 96 * 9 * 14 * 14)
    text = str(e)
    assert "1 of its 3 convolutions is grouped" in " ".join(text.split())
    assert re.search(r"^depthwise\s+Conv2d 96→96, 3×3\s+96\s+1→1\s+depthwise\s+864 of 82,944\s+169,344 of", text, re.M)
    total = 16 * 96 + 96 * 9 + 96 * 16
    flat = " ".join(text.split())
    assert f"hold {total:,} parameters" in flat and "memory, not arithmetic" in flat  # 1/G is not a G× speed-up
    assert "<td>depthwise</td>" in e._repr_html_()


def test_a_resnext_block_lists_its_grouped_layer_and_a_depth_multiplier_is_named() -> None:
    e = listed(ResNeXtBlock(), input=torch.zeros(2, 256, 8, 8))
    assert [(layer.name, layer.groups, layer.kind) for layer in e.grouped] == [("body.2", 32, "grouped")]
    layer = e.grouped[0]
    assert (layer.in_per_group, layer.out_per_group) == (4, 4)
    assert layer.multiply_adds == 128 * 4 * 9 * 2 * 8 * 8 and layer.dense_multiply_adds == 32 * layer.multiply_adds
    without_input = listed(ResNeXtBlock())
    assert without_input.grouped[0].multiply_adds is None
    assert "Pass input= to count multiply-adds" in " ".join(str(without_input).split())
    multiplier = listed(
        torch.nn.Sequential(torch.nn.Conv2d(8, 24, 3, groups=8), torch.nn.ConvTranspose2d(24, 24, 2, groups=3)),
        input=torch.zeros(1, 8, 5, 5),
    )
    kinds = [(layer.kind, layer.multiply_adds) for layer in multiplier.grouped]
    # the transposed layer multiplies each weight once per *input* position: 3×3 of them here
    assert kinds == [("depthwise, multiplier 3", 24 * 9 * 3 * 3), ("grouped", 24 * 8 * 4 * 3 * 3)]
    assert "none of them grouped" in str(explain(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1))))


def test_scope_css_keeps_media_queries_and_scopes_every_rule() -> None:
    css = "body { a: b; } td.x, th { c: d; } @media (max-width: 9px) { body { e: f; } table.s td { g: h; } }"
    scoped = scope_css(css, ".s")
    assert scoped.splitlines() == [
        ".s { a: b; }",
        ".s td.x, .s th { c: d; }",
        "@media (max-width: 9px) {",
        ".s { e: f; }",
        ".s table.s td { g: h; }",
        "}",
    ]


def test_the_text_is_the_terminal_text() -> None:
    e = explained("seed/groups3")
    assert e.text(width=80) == render_text(e.explanation, width=80)


def test_the_notebook_output_hovers_like_the_report_and_leaves_the_page_alone(tmp_path: Path) -> None:
    """In Chromium (skipped without it): a host page with its own style holds two outputs, as a
    notebook does; hovering an output cell lights up what it reads, and the host keeps its font."""
    from tests.browser import Chromium, find_chromium
    from tests.test_report_in_browser import HOVER

    if find_chromium() is None:
        pytest.skip("Chromium is not installed (`apt-get install -y chromium`)")
    outputs = explained("seed/groups3")._repr_html_() + explained("tutorial/01_dense")._repr_html_()
    host = tmp_path / "notebook.html"
    host.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><style>body { font-family: serif; margin: 7px; }'
        f"</style></head><body><h1>a notebook</h1>{outputs}</body></html>",
        encoding="utf-8",
    )
    with Chromium.start() as browser:
        page = browser.open("about:blank")
        page.set_viewport(1000)
        page.navigate(host.resolve().as_uri())
        lit = json.loads(page.evaluate(f"{HOVER}('seed/groups3', 'td[data-o=\"2\"]', 'mouseover')"))
        host_style = page.evaluate(
            "getComputedStyle(document.body).fontFamily + '|' + getComputedStyle(document.body).margin"
        )
        pictures = page.evaluate("document.querySelectorAll('.conformance-explain figure.picture svg').length")
        errors = page.errors
    assert lit["readout"] == "y[0,2,0,0] = 650 = 5×10 + 6×100"
    assert sorted(lit["channels"]) == ["2", "3"] and lit["rows"] == ["2"]
    assert host_style == "serif|7px" and int(pictures) >= 5 and errors == []
