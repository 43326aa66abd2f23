"""The lesson as one page: ``conformance learn`` writes it (see docs/learn.md).

The page is a lesson, not a report: the concept and the seed's digit table first, then one screen
per tutorial step (a table of contents, previous/next links), the practice exercises and the
playground. The CSS, the convolution and the page's script are written once, inline, from
lesson_assets/; the pictures are drawn in the browser from each layer's few numbers, so a step
costs its text, not its SVG. Exercise answers are never written out: only their hashes are.

    >>> import tempfile; from conformance.teaching.lesson import Lesson
    >>> page = Path(tempfile.mkdtemp()) / "index.html"
    >>> write_lesson_page(Lesson([], [], "2.13.0"), page).name
    'index.html'
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from conformance.teaching.lesson import CaseBlock, Exercise, Lesson, Step

ASSETS = Path(__file__).resolve().parent / "lesson_assets"
TITLE = "groups in a convolution: a lesson"


def asset(name: str) -> str:
    """The text of one file of lesson_assets/ (conv.js, lesson.js, lesson.css)."""
    return (ASSETS / name).read_text(encoding="utf-8")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _json_attr(value: Any) -> str:
    return _e(json.dumps(value, separators=(",", ":")))


def _script_json(value: Any) -> str:
    """JSON safe inside <script>: no "</" can close the element early."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def _nav(previous: tuple[str, str] | None, following: tuple[str, str] | None) -> str:
    parts = ['<nav class="pager">']
    parts.append(f'<a class="prev" href="#{previous[0]}">← {_e(previous[1])}</a>' if previous else "<span></span>")
    parts.append(f'<a class="next" href="#{following[0]}">{_e(following[1])} →</a>' if following else "<span></span>")
    return "".join(parts) + "</nav>"


def _intro(lesson: Lesson) -> str:
    seed = lesson.seed
    parts = [
        '<p class="lead">A convolution with <code>groups = G</code> is <b>G ordinary convolutions side by side</b>: '
        "cut the input channels into G equal chunks, convolve each chunk on its own, stack the G results. "
        "Each output channel reads only the input channels of its group.</p>"
    ]
    if seed is not None:
        parts.append(
            "<p>Six input channels hold one power of ten each: 0.1, 1, 10, 100, 1000, 10000. A 1×1 layer with "
            "six outputs and <code>groups=3</code> has the weights 1, 2, …, 12. The digits of each output say "
            "which inputs it read:</p>"
        )
        parts.append('<table class="digits"><thead><tr><th>out</th><th>group</th><th>value</th></tr></thead><tbody>')
        for line in seed.sums:
            parts.append(
                f'<tr data-out="{line.out}"><td>{line.out}</td><td><span class="chip g{line.group % 10}">'
                f"{line.group}</span></td><td><b>{_e(line.value)}</b> = {_e(line.terms)}</td></tr>"
            )
        parts.append("</tbody></table>")
        parts.append(
            "<p>Output 2 is 650: five tens and six hundreds, so it read input channels 2 and 3 and nothing else. "
            "With <code>groups=1</code> every output would read all six inputs. Tap an output to see its wires.</p>"
        )
        parts.append(_pictures(seed))
    parts.append(
        "<p>Everything else follows: the weight is <code>(out_channels, in_channels/G, kH, kW)</code>; both channel "
        "counts divide by G; the layer has 1/G of the weights and multiply-adds of <code>groups=1</code>; "
        "<code>G = in_channels</code> is a <i>depthwise</i> convolution.</p>"
    )
    return "".join(parts)


def _pictures(block: CaseBlock) -> str:
    return f'<div class="pictures" data-layer="{_json_attr(block.layer.as_json())}"></div>'


def _lines(title: str, lines: list[str]) -> str:
    if not lines:
        return ""
    return f'<div class="values"><h4>{_e(title)}</h4><pre>' + _e("\n".join(lines)) + "</pre></div>"


def _sums(block: CaseBlock) -> str:
    if not block.sums:
        return ""
    rows = "".join(
        f'<li data-out="{s.out}"><span class="chip g{s.group % 10}">{s.group}</span> '
        f"<code>{_e(s.label)} = {_e(s.terms)} = <b>{_e(s.value)}</b></code></li>"
        for s in block.sums
    )
    heading = "Each output is one input channel, moved" if block.layer.permutation else "Each output as its sum"
    return f'<h4>{heading}</h4><ul class="sums">{rows}</ul>'


def _exercise(block: CaseBlock, exercise: Exercise) -> str:
    boxes = "".join(
        f'<label>{_e(label)} = <input type="text" inputmode="decimal" data-index="{i}" autocomplete="off"></label>'
        for i, label in enumerate(exercise.labels)
    )
    data = {
        "key": exercise.key,
        "answers": exercise.answer_hashes,
        "mistakes": exercise.mistake_hashes,
        "conv": exercise.arrays,
    }
    return (
        f'<form class="exercise" data-exercise="{_json_attr(data)}"><p class="ask">Your prediction:</p>'
        f'<div class="boxes">{boxes}</div><button type="submit">Check</button> '
        '<button type="button" class="reveal" hidden>Show the answer</button>'
        '<p class="feedback" role="status" aria-live="polite"></p><pre class="answer" hidden></pre></form>'
    )


def _case(block: CaseBlock) -> str:
    parts = ['<article class="case">']
    if block.title:
        parts.append(f"<h3>{_e(block.title)}</h3>")
    parts.append(_pictures(block))
    parts.append(f'<p class="signature"><code>{_e(block.signature)}</code></p>')
    parts.append(f"<p>{_e(block.description)}</p>")
    if block.exercise is not None:
        parts.append(_lines("Input", block.inputs) + _lines("Weight", block.weights))
        parts.append(_exercise(block, block.exercise))
    else:
        parts.append(_sums(block))
        parts.append(
            '<details class="more"><summary>The input and the weight, channel by channel</summary>'
            + _lines("Input", block.inputs)
            + _lines("Weight", block.weights)
            + "</details>"
        )
    parts.append(f'<p class="cost">{_e(block.cost)}</p></article>')
    return "".join(parts)


def _step(step: Step) -> str:
    return "".join(_case(block) for block in step.cases)


def _spot(spot: dict[str, Any]) -> str:
    options = "".join(
        f'<label class="option"><input type="radio" name="spot" value="{_e(o["name"])}"> {_e(o["text"])}</label>'
        for o in spot["options"]
    )
    data = {"key": spot["key"], "answer": spot["answer"]}
    return (
        "<p>A kernel computed the digit layer of the introduction (six channels 0.1 … 10000, <code>groups=3</code>, "
        "weights 1 … 12) and printed:</p>"
        f'<p class="wrong"><code>[{_e(", ".join(spot["wrong"]))}]</code></p>'
        f"<p>The right output is [{_e(', '.join(spot['right']))}]. Which index mistake produced this one?</p>"
        f'<form class="spot" data-spot="{_json_attr(data)}">{options}<button type="submit">Check</button>'
        '<p class="feedback" role="status" aria-live="polite"></p></form>'
    )


def _output_size(exercise: dict[str, Any]) -> str:
    layer = exercise["layer"]
    data = {"key": exercise["key"], "answer": exercise["answer"], "mistakes": exercise["mistakes"]}
    return (
        "<p>For each spatial size <i>H</i>, with kernel <i>k</i>, stride <i>s</i>, padding <i>p</i> and dilation "
        '<i>d</i>:</p><p class="formula">H<sub>out</sub> = ⌊(H + 2p − d·(k − 1) − 1) / s⌋ + 1</p>'
        "<p><code>groups</code> never changes the output size, only which inputs each output channel reads.</p>"
        f"<p>A grouped Conv2d reads an input of height H = {layer['size']} with k = {layer['kernel']}, "
        f"s = {layer['stride']}, p = {layer['padding']}, d = {layer['dilation']} and groups = 4. How tall is "
        "its output?</p>"
        f'<form class="size" data-size="{_json_attr(data)}"><label>H<sub>out</sub> = <input type="text" '
        'inputmode="numeric" autocomplete="off"></label><button type="submit">Check</button>'
        '<p class="feedback" role="status" aria-live="polite"></p></form>'
    )


PLAYGROUND = """
<p>Change the layer; the pictures, the output size and the cost follow. For a 1×1 layer of at most 8
channels the inputs are the seed's powers of ten (0.1, 1, 10, …) and the weights 1, 2, 3, …, so the
digits show which inputs each output read.</p>
<form class="playground" onsubmit="return false">
<label>in channels <input name="in_channels" type="number" min="1" max="64" value="6"></label>
<label>out channels <input name="out_channels" type="number" min="1" max="64" value="6"></label>
<label>groups <input name="groups" type="number" min="1" max="64" value="3"></label>
<label>kernel <input name="kernel" type="number" min="1" max="7" value="1"></label>
<label>stride <input name="stride" type="number" min="1" max="4" value="1"></label>
<label>padding <input name="padding" type="number" min="0" max="4" value="0"></label>
<label>dilation <input name="dilation" type="number" min="1" max="4" value="1"></label>
<label>input size <input name="size" type="number" min="1" max="32" value="8"></label>
<label class="toggle"><input name="transposed" type="checkbox"> transposed</label>
</form>
<p class="play-message" role="status"></p>
<div class="play-size"></div>
<div class="play-cost"></div>
<div class="play-pictures"></div>
<div class="play-digits"></div>
"""


def lesson_html(lesson: Lesson) -> str:
    """The whole page as text."""
    screens: list[tuple[str, str, str]] = [("intro", "What groups means", _intro(lesson))]
    for step in lesson.steps:
        screens.append((f"step-{step.number}", f"Step {step.number} — {step.title}", _step(step)))
    if lesson.spot_the_bug is not None:
        screens.append(("spot-the-bug", "Practice — spot the bug", _spot(lesson.spot_the_bug)))
    if lesson.output_size is not None:
        screens.append(("output-size", "Practice — how big is the output", _output_size(lesson.output_size)))
    screens.append(("playground", "Playground", PLAYGROUND))
    toc = "".join(f'<li><a href="#{key}">{_e(title)}</a></li>' for key, title, _ in screens)
    body = []
    for i, (key, title, content) in enumerate(screens):
        previous = screens[i - 1][:2] if i > 0 else None
        following = screens[i + 1][:2] if i + 1 < len(screens) else None
        body.append(
            f'<section class="screen" id="{key}"><h2>{_e(title)}</h2>{content}{_nav(previous, following)}</section>'
        )
    footer = (
        f"Every number in this lesson was checked against torch {_e(lesson.torch_version)} when the page was built; "
        "re-check them with <code>conformance run cases/tutorial</code>."
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(TITLE)}</title><style>{asset('lesson.css')}</style></head><body>"
        '<header><h1>groups, one sum at a time</h1><details class="toc"><summary>Contents</summary>'
        f"<ol>{toc}</ol></details></header><main>{''.join(body)}</main>"
        f'<footer><p class="checked">{footer}</p></footer>'
        f"<script>{asset('conv.js')}</script><script>{asset('lesson.js')}</script></body></html>\n"
    )


def write_lesson_page(lesson: Lesson, path: Path) -> Path:
    """Write the page to ``path`` (its folder created); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(lesson_html(lesson), encoding="utf-8")
    return path
