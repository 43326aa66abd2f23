"""The HTML report opened from disk in a real browser (headless Chromium, Debian's `chromium`).

Checks what only a browser can: at a phone's 420 px and a laptop's 1280 px the page is laid out at
the screen's width and nothing sticks out sideways (not even inside the folded parts); every picture
is drawn; nothing is logged as an error; hovering or tapping an output cell lights up exactly the
input cells, kernel taps and input channels its sum reads; the seed's sums are on the page as text.
Screenshots of both widths land in $CONFORMANCE_SCREENSHOTS (default: the test's tmp_path).
`.ci/run` installs Chromium and sets CONFORMANCE_REQUIRE_BROWSER=1, so there a missing browser fails
instead of skipping.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conformance.cases.loader import load_file
from conformance.cli import main
from conformance.running.runner import make_tensors
from conformance.teaching.explain import element_sum
from tests.browser import BrowserError, Chromium, Page, find_chromium
from tests.helpers import write_case
from tests.test_html_report import STRIDED, WRONG_EXPECTED

ROOT = Path(__file__).resolve().parent.parent
WIDTHS = (420, 1280)
# Everything folded is opened first: a table that overflows inside a closed <details> still overflows.
LAYOUT = """(() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const width = window.innerWidth, wide = [];
  for (const e of document.body.querySelectorAll('*')) {
    const box = e.getBoundingClientRect();
    if (box.width > 0 && (box.right > width + 0.5 || box.left < -0.5)) {
      wide.push(e.tagName.toLowerCase() + ' in ' + (e.closest('section') ? e.closest('section').dataset.case : 'page')
                + ': ' + Math.round(box.left) + '..' + Math.round(box.right));
    }
  }
  return JSON.stringify({
    width: width, scrollWidth: document.scrollingElement.scrollWidth, wide: wide.slice(0, 20),
    pre: document.querySelectorAll('pre').length,
    sections: Array.from(document.querySelectorAll('section.case')).map(s => s.dataset.case),
    summaryRows: document.querySelectorAll('#summary tbody tr').length,
    pictures: Array.from(document.querySelectorAll('figure.picture')).map(f => {
      const svg = f.querySelector('svg'), box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
      return {name: f.dataset.picture, section: f.closest('section').dataset.case, width: box.width,
              height: box.height, texts: svg ? svg.querySelectorAll('text').length : 0};
    }),
    images: Array.from(document.images).map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
    text: document.body.innerText,
    verdict: document.getElementById('verdict').textContent
  });
})()"""
HOVER = """((section, selector, event) => {
  const root = document.querySelector('section[data-case="' + section + '"]');
  root.querySelector(selector).dispatchEvent(new MouseEvent(event, {bubbles: true}));
  const marked = name => Array.from(root.querySelectorAll('.' + name)).map(e =>
      e.dataset.x || e.dataset.w || e.dataset.channel || e.dataset.weightRow || [e.dataset.o, e.dataset.h, e.dataset.w]
      .join(','));
  return JSON.stringify({window: marked('hl-window'), taps: marked('hl-tap'), channels: marked('hl-channel'),
                         rows: marked('hl-row'), out: root.querySelectorAll('.hl-out').length,
                         readout: root.querySelector('.readout').textContent});
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


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """`conformance run --html` over the seed and regression cases, a tutorial step, a small
    padded strided case, a failing case and a broken file."""
    tmp_path = tmp_path_factory.mktemp("browser")
    cases = tmp_path / "cases"
    write_case(tmp_path, WRONG_EXPECTED, "wrong.yaml")
    write_case(tmp_path, STRIDED, "strided.yaml")
    write_case(tmp_path, "conv: {in_channels: 2}\ninput: [1]\n", "broken.yaml")
    (cases / "03.yaml").write_text(
        (ROOT / "cases" / "tutorial" / "03_grouped_kernel.yaml").read_text(), encoding="utf-8"
    )
    report = tmp_path / "report"
    code = main(
        [
            "run",
            str(ROOT / "cases" / "seed"),
            str(ROOT / "cases" / "regressions"),
            str(cases),
            "--html",
            str(report),
            "-q",
        ]
    )
    assert code == 1  # a failure and a broken file
    return report / "index.html"


def _open(browser: Chromium, page_file: Path, width: int) -> Page:
    page = browser.open("about:blank")
    page.set_viewport(width)
    page.navigate(page_file.resolve().as_uri())
    return page


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_the_page_fits_the_screen_and_draws_every_picture(browser: Chromium, report: Path, width: int, capsys) -> None:
    page = _open(browser, report, width)
    state = json.loads(page.evaluate(LAYOUT))
    assert state["width"] == width  # laid out at the screen's width (the viewport meta), not at 980 px
    assert state["scrollWidth"] <= width and state["wide"] == []  # nothing scrolls or sticks out sideways
    assert state["pre"] == 0  # no terminal text pasted in
    assert {"seed/groups3", "demo/wrong_expected", "broken", "tutorial/03_grouped_kernel"} <= set(state["sections"])
    assert state["summaryRows"] == len(state["sections"])
    assert state["verdict"].startswith(f"{len(state['sections']) - 2} passed, 2 failed")
    drawn = {picture["section"] for picture in state["pictures"]}
    assert {"seed/groups3", "demo/strided", "tutorial/03_grouped_kernel"} <= drawn and "broken" not in drawn
    assert [p for p in state["pictures"] if not (p["width"] > 50 and p["height"] > 50 and p["texts"] > 3)] == []
    assert [image for image in state["images"] if not image["ok"]] == []
    assert "650 = 5×10 + 6×100" in state["text"] and "109000 = 9×1000 + 10×10000" in state["text"]
    assert page.errors == []

    shots = Path(os.environ.get("CONFORMANCE_SCREENSHOTS") or report.parent)
    shots.mkdir(parents=True, exist_ok=True)
    shot = page.screenshot(shots / f"report-{width}px.png")
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == width
    with capsys.disabled():
        print(f"\nscreenshot: {shot}")


def _expected_reads(case_file: Path, index: tuple[int, int, int, int]) -> tuple[set[str], int, set[str], set[str]]:
    """From the explanation model (not from the page's script): the input cells, in padded
    coordinates, the kernel taps and the input channels that output element ``index`` reads."""
    from conformance.teaching.explain import geometry_of

    case = load_file(case_file)[0]
    tensors = make_tensors(case)
    top, _, left, _ = geometry_of(case, tensors).pads
    s = element_sum(case, tensors, index)
    inside = {
        f"{p.input_channel},{p.input_index[2] + top},{p.input_index[3] + left}"
        for p in s.terms
        if p.input_index is not None
    }
    taps = {",".join(str(i) for i in p.weight_index) for p in s.terms}
    return inside, len(s.terms), taps, {str(ch.input_channel) for ch in s.channels}


@pytest.mark.parametrize("width", WIDTHS)
def test_hovering_or_tapping_an_output_cell_lights_up_what_it_reads(
    browser: Chromium, report: Path, width: int
) -> None:
    page = _open(browser, report, width)
    hover = lambda section, selector, event="mouseover": json.loads(  # noqa: E731
        page.evaluate(f"{HOVER}({json.dumps(section)}, {json.dumps(selector)}, {json.dumps(event)})")
    )

    lit = hover("seed/groups3", 'td[data-o="2"]')
    assert sorted(lit["window"]) == ["2,0,0", "3,0,0"] and sorted(lit["taps"]) == ["2,0,0,0", "2,1,0,0"]
    assert sorted(lit["channels"]) == ["2", "3"] and lit["rows"] == ["2"] and lit["out"] == 1
    assert lit["readout"] == "y[0,2,0,0] = 650 = 5×10 + 6×100"
    lit = hover("seed/groups3", 'td[data-o="5"]', "click")  # a tap moves the highlight
    assert sorted(lit["channels"]) == ["4", "5"] and lit["out"] == 1 and "131000 = 11×1000 + 12×10000" in lit["readout"]

    # A padded, strided case: the window of y[0,1,1,2] against the explanation model's products.
    strided = report.parent.parent / "cases" / "strided.yaml"
    inside, products, taps, channels = _expected_reads(strided, (0, 1, 1, 2))
    lit = hover("demo/strided", 'td[data-o="1"][data-h="1"][data-w="2"]')
    assert len(lit["window"]) == products  # every tap lights one cell, padding included
    assert inside <= set(lit["window"]) and set(lit["taps"]) == taps and set(lit["channels"]) == channels
    assert lit["readout"].startswith("y[0,1,1,2] = ")
    assert page.errors == []


def test_cells_that_list_their_reads_light_up_the_same(browser: Chromium, tmp_path: Path, monkeypatch) -> None:
    """The hover mode of ops whose windows the script does not compute (Conv1d, transposed ...):
    each cell lists its reads. Checked on the padded, strided case with the Conv2d arithmetic off:
    the input is then shown unpadded, so a tap on padding lights no cell."""
    import conformance.reporting.html as html_report

    monkeypatch.setattr(html_report, "_interactive_geometry", lambda result: None)
    strided = write_case(tmp_path, STRIDED)
    index = html_report.write_html_report(_run_files([strided]), tmp_path / "report", pictures=False)
    page = _open(browser, index, 420)
    lit = json.loads(page.evaluate(f"{HOVER}('demo/strided', 'td[data-o=\"1\"]:nth-child(3)', 'click')"))
    case = load_file(strided)[0]
    element = element_sum(case, make_tensors(case), (0, 1, 0, 2))
    assert sorted(lit["window"]) == sorted(
        f"{p.input_channel},{p.input_index[2]},{p.input_index[3]}" for p in element.terms if p.input_index is not None
    )
    assert sorted(lit["taps"]) == sorted(",".join(map(str, p.weight_index)) for p in element.terms)
    assert sorted(lit["channels"]) == ["2", "3"] and lit["rows"] == ["1"] and lit["out"] == 1
    assert lit["readout"].startswith("y[0,1,0,2] = ")
    assert page.errors == []


def _run_files(paths: list[Path]):
    from conformance.running.implementations import load_implementation
    from conformance.running.runner import run_case

    reference = load_implementation(None)
    return [run_case(case, reference) for path in paths for case in load_file(path)]


def test_the_browser_check_catches_overflow_a_broken_picture_and_a_console_error(
    browser: Chromium, tmp_path: Path
) -> None:
    """The same checks on a deliberately broken page must fail, or the tests above prove nothing."""
    page_file = tmp_path / "broken.html"
    page_file.write_text(
        '<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width, '
        'initial-scale=1"></head><body><section class="case" data-case="x"><h1 id="verdict">v</h1>'
        '<table><tr><td style="white-space: nowrap">' + "wide " * 60 + "</td></tr></table>"
        '<img src="images/missing.png"></section><script>console.error("boom")</script>'
        "</body></html>",
        encoding="utf-8",
    )
    page = _open(browser, page_file, 420)
    state = json.loads(page.evaluate(LAYOUT))
    assert state["scrollWidth"] > 420 and any(entry.startswith("table in x") for entry in state["wide"])
    assert state["images"] == [{"src": "images/missing.png", "ok": False}]
    assert any("missing.png" in error for error in page.errors)
    assert any("boom" in error for error in page.errors)
