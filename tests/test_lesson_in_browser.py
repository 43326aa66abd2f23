"""The lesson page (`conformance learn`) in headless Chromium: at a phone's 420 px nothing sticks out
sideways and no text is under 11 px (no SVG text under 12 px), the seed's 650 is on the first screen,
the answers are hidden until submitted, a wrong answer gets feedback naming the mistake and a right
one is confirmed, the spot-the-bug and output-size questions answer, the tap highlight works and the
playground redraws. Skips without Chromium unless CONFORMANCE_REQUIRE_BROWSER is set."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from conformance.cli import main
from tests.browser import BrowserError, Chromium, Page, find_chromium

MAX_PAGE_BYTES = 400 * 1024
# Every screen shown in turn (all <details> opened): the widest element and the smallest text.
MEASURE = """(() => {
  const width = window.innerWidth, report = {wide: [], small: [], screens: 0};
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  for (const screen of document.querySelectorAll('.screen')) {
    location.hash = screen.id;
    document.querySelectorAll('.screen').forEach(s => s.classList.toggle('current', s === screen));
    report.screens += 1;
    const scrolled = document.scrollingElement.scrollWidth;
    if (scrolled > width) report.wide.push(screen.id + ': page ' + scrolled);
    for (const e of screen.querySelectorAll('*')) {
      const box = e.getBoundingClientRect();
      if (box.width > 0 && (box.right > width + 0.5 || box.left < -0.5))
        report.wide.push(screen.id + ' ' + e.tagName + ' ' + Math.round(box.right));
      if (e.tagName.toLowerCase() === 'text') {
        const svg = e.ownerSVGElement, scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
        const px = parseFloat(e.getAttribute('font-size')) * scale;
        if (px < 12) report.small.push(screen.id + ' svg "' + e.textContent + '" ' + px.toFixed(1));
      } else if (Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim()) && box.width > 0) {
        const px = parseFloat(getComputedStyle(e).fontSize);
        if (px < 11) report.small.push(screen.id + ' ' + e.tagName + ' "' + e.textContent.slice(0, 30) + '" ' + px);
      }
    }
  }
  location.hash = 'intro';
  return JSON.stringify(report);
})()"""


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
def lesson(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("learn")
    assert main(["learn", str(out)]) == 0
    return out / "index.html"


def opened(browser: Chromium, lesson: Path, width: int, hash_: str = "") -> Page:
    page = browser.open(lesson)
    page.set_viewport(width, 900)
    page.navigate(lesson.as_uri())  # a full load, so the viewport applies
    if hash_:
        go(page, hash_)  # a change of hash is not a load: set it from inside the page
    return page


def go(page: Page, screen: str) -> None:
    page.evaluate(f"location.hash = '{screen}'")
    time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("width", [420, 1280])
def test_no_overflow_and_no_small_text(browser: Chromium, lesson: Path, width: int) -> None:
    assert lesson.stat().st_size <= MAX_PAGE_BYTES
    page = opened(browser, lesson, width)
    report = json.loads(page.evaluate(MEASURE))
    assert report["screens"] >= 13
    assert report["wide"] == [] and report["small"] == []
    assert page.errors == []


@pytest.mark.slow
def test_the_first_screen_shows_the_seed_and_no_harness_words(browser: Chromium, lesson: Path) -> None:
    page = opened(browser, lesson, 420)
    bottom = page.evaluate(
        "(() => { const b = Array.from(document.querySelectorAll('#intro b')).find(e => e.textContent === '650');"
        " return b.getBoundingClientRect().bottom; })()"
    )
    assert 0 < bottom <= 900
    shown = page.evaluate("Array.from(document.querySelectorAll('.screen')).filter(s => s.offsetHeight > 0).length")
    assert shown == 1  # one step per screen, not a 50,000-px scroll
    text = page.evaluate("document.body.textContent").lower()
    assert "oracle" not in text and "passed" not in text and "harness checks" not in text
    assert page.evaluate("document.querySelectorAll('#intro svg').length") == 2


@pytest.mark.slow
def test_exercises_hide_their_answers_and_give_feedback(browser: Chromium, lesson: Path) -> None:
    page = opened(browser, lesson, 420, "step-8")
    boxes = page.evaluate("document.querySelectorAll('form.exercise input[data-index]').length")
    assert boxes >= 4
    assert "5200" not in page.evaluate("document.body.textContent")  # exercise 1's y1, before submitting
    assert page.evaluate("document.querySelector('form.exercise button.reveal').hidden")  # predict first

    def submit(values: list[str]) -> tuple[str, str]:
        return tuple(
            page.evaluate(
                "(values => { const f = document.querySelector('form.exercise');"
                " f.querySelectorAll('input[data-index]').forEach((b, i) => { b.value = values[i]; });"
                " f.querySelector('button').click(); const p = f.querySelector('.feedback');"
                " return [p.className, p.textContent]; })(" + json.dumps(values) + ")"
            )
        )

    kind, text = submit(["1313", "5252"])  # the values of groups=1
    assert "wrong" in kind and "groups=1" in text
    kind, text = submit(["103", "5020"])  # input channels interleaved into groups
    assert "wrong" in kind and "interleaved" in text
    kind, text = submit(["13", "5201"])
    assert "wrong" in kind and "1 of 2 right" in text and "y[0,1,0,0]" in text
    revealed = page.evaluate(
        "(() => { const f = document.querySelector('form.exercise'); f.querySelector('button.reveal').click();"
        " return f.querySelector('pre.answer').textContent; })()"
    )
    assert revealed.split("\n") == ["y[0,0,0,0] = 13", "y[0,1,0,0] = 5200"]  # computed by conv.js, on request
    kind, text = submit(["13", "5200"])
    assert "right" in kind.split() and text.startswith("Right")

    go(page, "spot-the-bug")
    pick = (
        "(name => { const f = document.querySelector('form.spot');"
        " f.querySelector('input[value=\"' + name + '\"]').checked = true; f.querySelector('button').click();"
        " return f.querySelector('.feedback').className; })"
    )
    assert "wrong" in page.evaluate(pick + "('groups_ignored')")
    assert "right" in page.evaluate(pick + "('interleaved_groups')").split()

    go(page, "output-size")
    size = (
        "(v => { const f = document.querySelector('form.size'); f.querySelector('input').value = v;"
        " f.querySelector('button').click(); const p = f.querySelector('.feedback');"
        " return [p.className, p.textContent]; })"
    )
    kind, text = page.evaluate(size + "('6')")
    assert "wrong" in kind and "rounded up" in text
    kind, _ = page.evaluate(size + "('5')")
    assert "right" in kind.split()
    assert page.errors == []


@pytest.mark.slow
def test_tapping_an_output_lights_its_wires(browser: Chromium, lesson: Path) -> None:
    page = opened(browser, lesson, 420)
    lit = page.evaluate(
        "(() => { const node = document.querySelector('#intro circle.node[data-out=\"2\"]');"
        " node.dispatchEvent(new MouseEvent('click', {bubbles: true}));"
        " return [Array.from(document.querySelectorAll('#intro .wire.lit')).map(w => w.dataset.in),"
        " document.querySelector('#intro tr.lit').dataset.out]; })()"
    )
    assert lit == [["2", "3"], "2"]


@pytest.mark.slow
def test_the_playground_redraws(browser: Chromium, lesson: Path) -> None:
    page = opened(browser, lesson, 420, "playground")
    state = (
        "(() => { const r = document.getElementById('playground');"
        " return {wires: r.querySelectorAll('.play-pictures line.wire').length,"
        " size: r.querySelector('.play-size').textContent, cost: r.querySelector('.play-cost').textContent,"
        " digits: r.querySelector('.play-digits').textContent,"
        " message: r.querySelector('.play-message').textContent}; })()"
    )
    set_ = (
        "((name, value) => { const f = document.querySelector('form.playground'); const e = f.elements[name];"
        " if (e.type === 'checkbox') e.checked = value; else e.value = value;"
        " e.dispatchEvent(new Event('input', {bubbles: true})); })"
    )
    first = page.evaluate(state)
    assert first["wires"] == 12 and "650" in first["digits"] and first["message"] == ""
    page.evaluate(set_ + "('groups', '2')")
    second = page.evaluate(state)
    assert second["wires"] == 18 and second["digits"] != first["digits"]
    page.evaluate(set_ + "('kernel', '3')")
    page.evaluate(set_ + "('stride', '2')")
    third = page.evaluate(state)
    assert third["size"].rstrip().endswith("= 3 (per side, 3×3).") and third["digits"] == ""
    page.evaluate(set_ + "('groups', '4')")
    assert "must divide" in page.evaluate(state)["message"]
    page.evaluate(set_ + "('groups', '3')")
    page.evaluate(set_ + "('transposed', true)")
    assert "(H − 1)·s" in page.evaluate(state)["size"]
    assert page.errors == []
