"""The HTML report and its SVG pictures, read back from the file (the real-browser test, with
layout, hover and screenshots, is test_report_in_browser.py)."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from conformance.cases.errors import CaseError
from conformance.cases.loader import load_cases, load_file
from conformance.reporting.html import ReportSection, write_html_report
from conformance.running.implementations import load_implementation
from conformance.running.runner import CaseTensors, Check, error_result, make_tensors, run_case
from conformance.teaching.pictures import case_pictures, draw_case_pictures
from tests.helpers import load_one, write_case

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"
WRONG_EXPECTED = """
name: demo/wrong_expected
description: expected output 1 is wrong on purpose (43 -> 44)
conv: {in_channels: 2, out_channels: 2, kernel_size: 1, bias: false}
input: {values: [1, 10], shape: [1, 2, 1, 1]}
weight: {arange: {start: 1}}
expected: {values: [21, 44], shape: [1, 2, 1, 1]}
"""
# A small padded, strided, grouped 2-d case: 3×3 outputs, so a 9-frame filmstrip.
STRIDED = """
name: demo/strided
conv: {in_channels: 4, out_channels: 2, kernel_size: 2, stride: 2, padding: 1, groups: 2, bias: false}
input: {arange: {start: 1}, shape: [1, 4, 4, 4]}
weight: {arange: {start: 1}}
"""


class Page(HTMLParser):
    """The tags with their attributes, the text of each section, and where each tag sits."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict, tuple[str, ...]]] = []  # (tag, attributes, enclosing tags)
        self.stack: list[str] = []
        self.section_text: dict[str, str] = {}
        self._section: str | None = None
        self.text = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes, tuple(self.stack)))
        if tag == "section" and "data-case" in attributes:
            self._section = attributes["data-case"]
            self.section_text[self._section] = ""
        if tag not in ("meta", "br", "input", "img", "link", "rect", "line", "circle", "path", "polygon"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass
        if tag == "section":
            self._section = None

    def handle_data(self, data: str) -> None:
        self.text += data
        if self._section is not None:
            self.section_text[self._section] += data

    def find(self, tag: str, **attributes: str) -> list[dict]:
        return [
            a
            for t, a, _ in self.tags
            if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attributes.items())
        ]


def _run(paths: list[Path]):
    reference = load_implementation(None)
    return [
        error_result(item) if isinstance(item, CaseError) else run_case(item, reference) for item in load_cases(paths)
    ]


def _results(tmp_path: Path):
    write_case(tmp_path, WRONG_EXPECTED, "wrong.yaml")
    write_case(
        tmp_path, "conv: {in_channels: 2, out_channels: 2, kernel_size: 1, grops: 1}\ninput: [1, 2]\n", "broken.yaml"
    )
    return _run(
        [
            ROOT / "cases" / "seed" / "groups3.yaml",
            ROOT / "cases" / "tutorial" / "03_grouped_kernel.yaml",
            ROOT / "cases" / "errors" / "not_divisible.yaml",
            tmp_path / "cases",
        ]
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("report")
    results = _results(tmp_path)
    # Checks added by other modules (metamorphic relations, wiring probes) are rendered generically.
    results[0].checks.append(Check("wiring_probe", True, "output 1 reads <input 3>", ["detail & more"]))
    wrong = next(r for r in results if r.name == "demo/wrong_expected")
    wrong.checks.insert(0, Check("metamorphic:per-group", False, "per-group slices differ", ["slice 1 differs"]))
    coverage = ReportSection("Coverage map", '<p id="coverage-cells">4 of 9 cells covered</p>', "coverage")
    index = write_html_report(results, tmp_path / "report", extra_sections=[coverage])
    text = index.read_text(encoding="utf-8")
    return results, text, Page(text)


def test_the_report_is_one_self_contained_page_without_pre(report) -> None:
    results, text, page = report
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    assert "<pre" not in text  # terminal text is never pasted in: everything is HTML
    assert not re.search(r"(src|href)=\"(https?:)?//", text) and "<img" not in text  # nothing fetched from elsewhere
    assert [a for t, a, _ in page.tags if t == "script" and a.get("src")] == []  # the script is inline
    sections = {a["data-case"]: a for a in page.find("section") if "data-case" in a}
    assert set(sections) == {r.name for r in results}
    assert {name: a["data-status"] for name, a in sections.items()} == {r.name: r.status for r in results}
    links = [a["href"] for a in page.find("a")]
    for attributes in sections.values():  # the summary table links every section
        assert f"#{attributes['id']}" in links
    assert 'href="#coverage"' in text and '<p id="coverage-cells">4 of 9 cells covered</p>' in text


def test_the_seed_sums_are_on_the_page_as_text_in_rows_coloured_by_group(report) -> None:
    _, text, page = report
    seed = page.section_text["seed/groups3"]
    for written in (
        "2.1 = 1×0.1 + 2×1",
        "650 = 5×10 + 6×100",
        "109000 = 9×1000 + 10×10000",
        "131000 = 11×1000 + 12×10000",
    ):
        assert written in seed, written
    # One row per output element, coloured by its group: outputs 0-1 group 0, 2-3 group 1, 4-5 group 2.
    sums = re.search(r'<table class="sums stack">.*?</table>', text.split('data-case="seed/groups3"')[1], re.S).group(0)
    assert re.findall(r'<tr class="(g\d) tinted">', sums) == ["g0", "g0", "g1", "g1", "g2", "g2"]
    # The kernel case's sums are partial sums per input channel, with every product one click away.
    tutorial = page.section_text["tutorial/03_grouped_kernel"]
    assert "330 = 30 + 300" in tutorial and "in 0: 1×1 + 2×2 + 3×3 + 4×4 = 30" in tutorial


def test_input_and_weight_are_laid_out_per_group(report) -> None:
    _, text, page = report
    seed = text.split('data-case="seed/groups3"')[1].split("<section")[0]
    # input channel c sits in group c // 2, and its value is there
    for c, value in enumerate(["0.1", "1", "10", "100", "1000", "10000"]):
        box = re.search(rf'<div class="group-box (g\d)">(?:(?!group-box).)*data-channel="{c}"', seed, re.S)
        assert box and box.group(1) == f"g{c // 2}", c
        assert re.search(
            rf'data-channel="{c}"><figcaption>x\[0,{c}\]</figcaption><table class="grid"><tr><td[^>]*>'
            rf"{re.escape(value)}</td>",
            seed,
        )
    # weight row o holds its group's kernels, each mapped to the input channel it multiplies
    assert re.search(
        r'data-weight-row="2"><p class="label">row 2 \(output channel 2\)</p>.*?W\[2,0\] → in 2.*?'
        r"W\[2,1\] → in 3",
        seed,
        re.S,
    )
    assert "so the second axis counts 0…1 within the group, not 0…5" in page.section_text["seed/groups3"]


def test_a_small_case_carries_what_the_hover_highlight_needs(report) -> None:
    _, text, page = report
    seed = text.split('data-case="seed/groups3"')[1].split("<section")[0]
    assert "data-geometry='{&quot;in_channels&quot;: 6, &quot;out_channels&quot;: 6, &quot;groups&quot;: 3" in text
    cells = re.findall(r'<td data-o="(\d)" data-h="0" data-w="0" tabindex="0" data-sum="([^"]*)">', seed)
    assert [o for o, _ in cells] == [str(o) for o in range(6)]
    assert dict(cells)["2"] == "y[0,2,0,0] = 650 = 5×10 + 6×100"
    assert re.findall(r'data-x="(\d,0,0)"', seed) == [f"{c},0,0" for c in range(6)]  # input cells, padded coordinates
    assert 'data-w="5,1,0,0"' in seed  # the tap W[5, 1, 0, 0]
    # only computed layers get a geometry (an invalid layer or a broken file has no output to hover)
    with_geometry = {a["data-case"] for a in page.find("section") if "data-geometry" in a}
    assert with_geometry == {"seed/groups3", "tutorial/03_grouped_kernel", "demo/wrong_expected"}


def test_failures_show_their_checks_once_and_passing_checks_fold_away(report) -> None:
    _, text, page = report
    wrong = page.section_text["demo/wrong_expected"]
    assert "worst element y[n=0, o=1, h=0, w=0]" in wrong and "expected = 44" in wrong
    # predict-then-check: the value written down beside the element's sum
    assert wrong.count("y[0,1,0,0]: the case expects 44, but the sum is 43 = 3×1 + 4×10") == 1
    # the output comparisons come first, in full; an extra check's details are folded away
    block = text.split('data-case="demo/wrong_expected"')[1].split('<div class="failure">')[1].split("</div>")[0]
    assert block.index("vs expected</strong>") < block.index("metamorphic:per-group</strong>")
    assert '<details><summary>details</summary><ul class="lines"><li>slice 1 differs</li></ul></details>' in block
    broken = page.section_text["broken"]
    assert "unknown key 'grops' (did you mean 'groups'?)" in broken
    assert "in_channels = 5 is not divisible by groups = 2" in page.section_text["errors/in_channels_not_divisible"]
    seed = text.split('data-case="seed/groups3"')[1].split("<section")[0]
    assert '<details class="checks"><summary>Harness checks:' in seed
    assert "output 1 reads &lt;input 3&gt;" in seed and "detail &amp; more" in seed  # escaped, never raw
    for name, section in page.section_text.items():  # nothing shown twice
        description = next((r.case.description for r in report[0] if r.name == name and r.case), "")
        if description:
            assert section.count(description.strip()) == 1, name
        for check in next(r for r in report[0] if r.name == name).checks:
            assert section.count(check.summary) == 1, (name, check.summary)


def test_statuses_and_failure_kinds_in_the_summary(tmp_path: Path) -> None:
    results = _run([write_case(tmp_path, WRONG_EXPECTED)])
    xfailed = dataclasses.replace(results[0], name="demo/xfailed", status="xfailed", kind="wrong_values")
    xpassed = dataclasses.replace(results[0], name="demo/xpassed", status="xpassed", kind=None)
    text = write_html_report([xfailed, xpassed], tmp_path / "report", pictures=False).read_text(encoding="utf-8")
    summary = text.split('<table id="summary"')[1].split("</table>")[0]
    assert (
        '<span class="status xfailed" title="failed, as an xfail entry expects">xfailed</span> '
        '<span class="kind">(wrong values)</span>' in summary
    )
    assert '<span class="status xpassed"' in summary


def test_a_tutorial_run_is_the_checking_view_too(tmp_path: Path) -> None:
    """The learners' page is `conformance learn`; `run --html` over the tutorial is a report like any."""
    tutorial = _run([ROOT / "cases" / "tutorial"])
    coverage = ReportSection("What these cases cover", "<p>map</p>", "coverage")
    page = write_html_report(tutorial, tmp_path / "t", extra_sections=[coverage], pictures=False).read_text()
    assert "implementation time" in page and re.search(r">\d+\.\d\d ms<", page) and 'id="coverage"' in page
    assert 'id="mode"' not in page
    # every tutorial step of a 1-d or 2-d op can be hovered: its layout shows every channel (3-d grids are not drawn)
    assert page.count("data-geometry=") == sum(r.case.conv.spatial_dims <= 2 for r in tutorial)


def test_pictures_are_inline_svg_with_real_text(report) -> None:
    _, text, page = report
    seed = text.split('data-case="seed/groups3"')[1].split("<section")[0]
    figures = re.findall(r'<figure class="picture" data-picture="(\w+)">(<svg.*?</svg>)', seed, re.S)
    assert [name for name, _ in figures] == ["connectivity", "weights", "element"]
    svgs = {name: ElementTree.fromstring(svg) for name, svg in figures}
    words = {name: [t.text for t in svg.iter(f"{SVG}text")] for name, svg in svgs.items()}
    assert {"in 2 = 10", "out 2 = 650", "group 0", "group 2"} <= set(words["connectivity"])
    # the default element is in the last group, so the channel offset g·C_in/G = 2·2 = 4 shows
    assert "y[0,4,0,0] = 109000" in words["element"] and "in 4: 9×1000 = 9000" in words["element"]
    assert words["element"].count("input channel 0") == 1 and "not read (group 0)" in words["element"]
    # no picture for a layer that cannot be grouped, and none for a broken file
    for name in ("errors/in_channels_not_divisible", "broken"):
        assert 'class="picture"' not in text.split(f'data-case="{name}"')[1].split("<section")[0]


def _words(svg: str) -> list[str]:
    return [t.text or "" for t in ElementTree.fromstring(svg).iter(f"{SVG}text")]


def test_the_element_picture_greys_every_channel_outside_the_group() -> None:
    case = load_file(ROOT / "cases" / "seed" / "groups3.yaml")[0]
    element = {p.name: p for p in case_pictures(case, make_tensors(case), element=(0, 2, 0, 0))}["element"]
    words = _words(element.svg)
    assert [w for w in words if w.startswith("input channel ")] == [f"input channel {c}" for c in range(6)]
    assert [w for w in words if w.startswith("not read")] == ["not read (group 0)"] * 2 + ["not read (group 2)"] * 2
    assert "× kernel W[2,0]" in words and "× kernel W[2,1]" in words and "=600" in words
    assert "y[0,2,0,0] = 650" in words


def test_the_weights_picture_maps_each_stored_row_into_the_block_diagonal() -> None:
    case = load_file(ROOT / "cases" / "seed" / "groups3.yaml")[0]
    weights = {p.name: p for p in case_pictures(case, make_tensors(case))}["weights"]
    root = ElementTree.fromstring(weights.svg)
    arrows = [line for line in root.iter(f"{SVG}line") if line.get("stroke-dasharray")]
    assert len(arrows) == 6  # one per stored row (output channel)
    starts = {float(a.get("x1")) for a in arrows}
    ends = sorted({float(a.get("x2")) for a in arrows})
    assert len(starts) == 1 and len(ends) == 3  # from the compact tensor to the 3 column blocks
    assert (
        "stored weight (6, 2, 1, 1): 12 numbers; the 6×6 matrix of kernels it stands for has 36, 24 of them "
        "always zero" in " ".join(_words(weights.svg))
    )
    dense = load_file(ROOT / "cases" / "tutorial" / "01_dense.yaml")[0]
    dense_weights = {p.name: p for p in case_pictures(dense, make_tensors(dense))}["weights"]
    assert not [line for line in ElementTree.fromstring(dense_weights.svg).iter(f"{SVG}line")]  # no empty 2nd panel
    assert any("already the full" in w for w in _words(dense_weights.svg))


def test_the_filmstrip_has_one_numbered_frame_per_output_position(tmp_path: Path) -> None:
    case = load_one(tmp_path, STRIDED)
    pictures = {p.name: p for p in case_pictures(case, make_tensors(case))}
    words = _words(pictures["filmstrip"].svg)
    frames = [w for w in words if re.match(r"\d+: y\[", w)]
    assert frames == [f"{k + 1}: y[0,1,{h},{w}]" for k, (h, w) in enumerate(np.ndindex(3, 3))]
    # frame 5 (the centre, h = w = 1): the window's taps start at padded row/col 2 (stride 2): 4 tinted cells
    root = ElementTree.fromstring(pictures["filmstrip"].svg)
    tinted = [r for r in root.iter(f"{SVG}rect") if r.get("stroke") == "#222222" and r.get("stroke-width") == "1.3"]
    assert len(tinted) == 9 * 4  # every frame shows the 2x2 window's four taps


def test_pictures_of_other_ops_fall_back_to_connectivity_and_weights(tmp_path: Path) -> None:
    case = load_file(ROOT / "cases" / "seed" / "groups3.yaml")[0]
    for op, weight_shape, input_shape in (
        ("Conv1d", (6, 2, 3), (1, 6, 5)),
        ("Conv3d", (6, 2, 2, 2, 2), (1, 6, 3, 3, 3)),
        ("ConvTranspose2d", (6, 2, 2, 2), (1, 6, 3, 3)),
    ):
        other = dataclasses.replace(case, conv=dataclasses.replace(case.conv, type=op))
        tensors = CaseTensors(
            np.ones(input_shape), np.arange(np.prod(weight_shape), dtype=float).reshape(weight_shape), None, None
        )
        pictures = case_pictures(other, tensors)
        assert [p.name for p in pictures] == ["connectivity", "weights"], op
        ElementTree.fromstring(pictures[1].svg)
    paths = draw_case_pictures(case, make_tensors(case), tmp_path / "pictures", stem="seed-")
    assert [p.name for p in paths] == ["seed-connectivity.svg", "seed-weights.svg", "seed-element.svg"]
    with pytest.raises(ValueError, match="SVG only"):
        draw_case_pictures(case, make_tensors(case), tmp_path / "pictures", formats=("png",))


def test_run_html_includes_the_coverage_map_as_information(tmp_path: Path, capsys) -> None:
    """`conformance run --html` adds what the cases cover; cells no case reaches are a note, not a failure."""
    from conformance.cli import main

    report = tmp_path / "report"
    seeds = [str(ROOT / "cases" / "seed" / f"{name}.yaml") for name in ("groups2", "groups3", "out18_groups2")]
    assert main(["run", *seeds, "--html", str(report), "-q"]) == 0
    capsys.readouterr()
    page = (report / "index.html").read_text(encoding="utf-8")
    assert 'id="coverage"' in page and "What these cases cover" in page
    assert re.search(r'<li>stride 1 <span class="count">3</span></li>', page)
    note = re.search(r'<p class="note" id="coverage-not-exercised">For information: (.*?)</p>', page).group(1)
    assert "depthwise" in note and "cells empty" not in page and "&larr; empty" not in page


def test_the_documentation_pictures_are_current(tmp_path: Path) -> None:
    """README.md and docs/ show SVGs drawn by this module: redrawn, they must equal the committed
    files (after a change to the pictures, run `python -m conformance.teaching.pictures docs`)."""
    from conformance.teaching.pictures import write_docs_pictures

    drawn = write_docs_pictures(tmp_path)
    assert {p.name for p in drawn} >= {
        "seed_groups3_connectivity.svg",
        "seed_groups3_weights.svg",
        "depthwise_stride2_filmstrip.svg",
    }
    stale = [
        p.name
        for p in drawn
        if not (ROOT / "docs" / p.name).exists()
        or (ROOT / "docs" / p.name).read_text(encoding="utf-8") != p.read_text(encoding="utf-8")
    ]
    assert stale == [], "run `python -m conformance.teaching.pictures docs`"


def test_other_ops_light_up_the_cells_each_sum_lists(tmp_path: Path, monkeypatch) -> None:
    """Where the page's script cannot compute windows (Conv1d, transposed ops, ...), each output cell
    lists what its sum reads, from the explanation model; shown here on the seed with the Conv2d
    window arithmetic switched off."""
    import conformance.reporting.html as html_report

    monkeypatch.setattr(html_report, "_interactive_geometry", lambda result: None)
    results = _run([ROOT / "cases" / "seed" / "groups3.yaml"])
    text = write_html_report(results, tmp_path / "report", pictures=False).read_text(encoding="utf-8")
    assert "data-geometry='{&quot;reads&quot;: &quot;per cell&quot;}'" in text
    assert (
        '<td data-o="2" data-reads="x:2,0,0 x:3,0,0 w:2,0,0,0 w:2,1,0,0" data-channels="2 3" data-rows="2" '
        'tabindex="0" data-sum="y[0,2,0,0] = 650 = 5×10 + 6×100">'
    ) in text
