"""The HTML report's content, read back from the file (the real-browser test is test_report_in_browser.py)."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from conformance.errors import CaseError
from conformance.html_report import ReportSection, write_html_report
from conformance.implementations import load_implementation
from conformance.loader import load_cases
from conformance.runner import Check, error_result, run_case
from tests.helpers import write_case

ROOT = Path(__file__).resolve().parent.parent
WRONG_EXPECTED = """
name: demo/wrong_expected
description: expected output 1 is wrong on purpose (43 -> 44)
conv: {in_channels: 2, out_channels: 2, kernel_size: 1, bias: false}
input: {values: [1, 10], shape: [1, 2, 1, 1]}
weight: {arange: {start: 1}}
expected: {values: [21, 44], shape: [1, 2, 1, 1]}
"""


class _Collector(HTMLParser):
    """Tags with their attributes, and the text of each <pre> by class."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.pre: dict[str, list[str]] = {}
        self._pre_class: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "pre":
            self._pre_class = dict(attrs).get("class", "")
            self.pre.setdefault(self._pre_class, []).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._pre_class = None

    def handle_data(self, data: str) -> None:
        if self._pre_class is not None:
            self.pre[self._pre_class][-1] += data


def _results(tmp_path: Path):
    write_case(tmp_path, WRONG_EXPECTED, "wrong.yaml")
    write_case(tmp_path, "conv: {in_channels: 2, out_channels: 2, kernel_size: 1, grops: 1}\ninput: [1, 2]\n",
               "broken.yaml")
    items = load_cases([ROOT / "cases" / "seed" / "groups3.yaml", ROOT / "cases" / "errors",
                        tmp_path / "cases"])
    reference = load_implementation(None)
    return [error_result(item) if isinstance(item, CaseError) else run_case(item, reference) for item in items]


def test_report_holds_a_summary_and_a_section_per_case(tmp_path: Path) -> None:
    results = _results(tmp_path)
    # Checks added by other modules (metamorphic relations, wiring probes) are rendered generically.
    results[0].checks.append(Check("wiring_probe", False, "output 1 reads <input 3>", ["detail & more"]))
    coverage = ReportSection("Coverage map", '<p id="coverage-cells">4 of 9 cells covered</p>', "coverage")
    index = write_html_report(results, tmp_path / "report", pictures=False, extra_sections=[coverage])
    text = index.read_text(encoding="utf-8")
    parsed = _Collector()
    parsed.feed(text)

    sections = {attrs["data-case"]: attrs for tag, attrs in parsed.tags if tag == "section" and "data-case" in attrs}
    assert set(sections) == {r.name for r in results}
    assert {name: attrs["data-status"] for name, attrs in sections.items()} == {r.name: r.status for r in results}
    links = [attrs["href"] for tag, attrs in parsed.tags if tag == "a"]
    for attrs in sections.values():  # the summary table links every section
        assert f"#{attrs['id']}" in links
    assert len(re.findall(r"<tr><td><a href=\"#case-", text)) == len(results)
    assert re.search(r'seed/groups3</a></td><td class="passed">passed</td><td class="number">[0-9.e-]+</td>', text)
    assert re.search(r'<td class="number">\d+\.\d\d ms</td><td class="number">\d+\.\d\d ms</td>', text)

    assert "output 1 reads &lt;input 3&gt;" in text and "detail &amp; more" in text  # escaped, never raw
    assert 'href="#coverage"' in text and '<section class="extra" id="coverage">' in text
    assert '<p id="coverage-cells">4 of 9 cells covered</p>' in text  # the hook's HTML goes in as given

    # Self-contained: no script, nothing fetched from elsewhere.
    assert "<script" not in text and not re.search(r"(src|href)=\"(https?:)?//", text)

    failure = "".join(parsed.pre["failure"])
    assert "FAILED: case demo/wrong_expected" in failure
    assert "worst element y[n=0, o=1, h=0, w=0]" in failure and "expected = 44" in failure
    assert "ERROR: case broken" in failure and "unknown key 'grops' (did you mean 'groups'?)" in failure
    explanations = "".join(parsed.pre["explanation"])
    assert "y[0,0,0,0] = 2.1 = 1×0.1 (in 0) + 2×1 (in 1)" in explanations
    assert re.search(r"y\[0,1,0,0\]\s+43\s+43\s+44\s+43\s+DIFFER", explanations)  # the wrong golden value, beside the sum
    assert "in_channels = 5 is not divisible by groups = 2" in explanations


def test_pictures_are_local_files_next_to_the_report(tmp_path: Path) -> None:
    results = [r for r in _results(tmp_path) if r.name in ("seed/groups3", "errors/in_channels_not_divisible")]
    index = write_html_report(results, tmp_path / "report")
    sources = re.findall(r'<img src="([^"]+)"', index.read_text(encoding="utf-8"))
    assert sources == [f"images/seed-groups3-{name}.png" for name in ("connectivity", "weights", "element")]
    for source in sources:
        assert (index.parent / source).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_html_includes_the_coverage_map(tmp_path: Path, capsys) -> None:
    """`conformance run --html` adds the coverage map of the cases it ran, empty cells marked."""
    from conformance.cli import main

    report = tmp_path / "report"
    assert main(["run", str(ROOT / "cases" / "seed"), "--html", str(report), "-q"]) == 0
    capsys.readouterr()
    page = (report / "index.html").read_text(encoding="utf-8")
    assert 'id="coverage"' in page and "Coverage of the case library" in page
    # the seed cases are all 1x1 and grouped: a 1x1 cell with 3 cases, an empty depthwise cell
    assert re.search(r"<td>1x1</td><td>3</td>", page)
    assert re.search(r"<tr class=\"empty\"><td>depthwise[^<]*</td><td>0 &larr; empty</td>", page)
