"""The HTML report opened from disk in a real browser (headless Chromium, Debian's `chromium`).

Checks what only a browser can: every case section is rendered, every picture actually loaded
(naturalWidth > 0), nothing was logged as an error; and it takes a screenshot. `.ci/run` installs
Chromium and sets CONFORMANCE_REQUIRE_BROWSER=1, so there a missing browser fails instead of skipping.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conformance.cli import main
from tests.browser import BrowserError, Chromium, find_chromium
from tests.helpers import write_case
from tests.test_html_report import WRONG_EXPECTED

ROOT = Path(__file__).resolve().parent.parent
PAGE_STATE = """JSON.stringify({
  sections: Array.from(document.querySelectorAll('section.case')).map(s => s.dataset.case),
  summaryRows: document.querySelectorAll('#summary tbody tr').length,
  images: Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete,
                                                  width: i.naturalWidth, section: i.closest('section').dataset.case})),
  verdict: document.getElementById('verdict').textContent
})"""


@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:
        if os.environ.get("CONFORMANCE_REQUIRE_BROWSER"):
            pytest.fail("CONFORMANCE_REQUIRE_BROWSER is set but no Chromium is installed (apt-get install -y chromium)")
        pytest.skip("Chromium is not installed (`apt-get install -y chromium`; .ci/run installs it)")
    try:
        with Chromium.start() as chromium:
            yield chromium
    except BrowserError as exc:
        pytest.fail(f"Chromium is installed but could not be driven: {exc}")


def test_report_renders_every_case_and_loads_every_picture(browser: Chromium, tmp_path: Path, capsys) -> None:
    cases = tmp_path / "cases"
    write_case(tmp_path, WRONG_EXPECTED, "wrong.yaml")
    write_case(tmp_path, "conv: {in_channels: 2}\ninput: [1]\n", "broken.yaml")
    for source in ("seed/groups3.yaml", "tutorial/03_grouped_kernel.yaml"):
        (cases / Path(source).name).write_text((ROOT / "cases" / source).read_text(encoding="utf-8"), encoding="utf-8")
    report = tmp_path / "report"
    code = main(["run", str(cases), "--html", str(report), "-q"])
    out = capsys.readouterr().out
    assert code == 1 and f"HTML report: {report / 'index.html'}" in out  # a failure and a broken file

    page = browser.open(report / "index.html")
    state = json.loads(page.evaluate(PAGE_STATE))
    names = {"seed/groups3", "tutorial/03_grouped_kernel", "demo/wrong_expected", "broken"}
    assert set(state["sections"]) == names and state["summaryRows"] == len(names)
    assert state["verdict"].startswith("2 passed, 2 failed")
    drawn = {image["section"] for image in state["images"]}
    assert drawn == names - {"broken"} and len(state["images"]) == 3 * len(drawn)  # 3 pictures per computable case
    not_loaded = [image["src"] for image in state["images"] if not (image["complete"] and image["width"] > 0)]
    assert not_loaded == []
    assert page.errors == []

    shot = page.screenshot(tmp_path / "report-screenshot.png")
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") >= 800
    print(f"screenshot: {shot}")


def test_the_browser_check_catches_a_broken_picture_and_a_console_error(browser: Chromium, tmp_path: Path) -> None:
    """The same checks on a deliberately broken page must fail, or the test above proves nothing."""
    page_file = tmp_path / "broken.html"
    page_file.write_text('<!DOCTYPE html><html><body><section class="case" data-case="x">'
                         '<img src="images/missing.png"></section><script>console.error("boom")</script>'
                         "</body></html>", encoding="utf-8")
    page = browser.open(page_file)
    assert page.evaluate("document.images[0].naturalWidth") == 0
    assert any("missing.png" in error for error in page.errors)
    assert any("boom" in error for error in page.errors)
