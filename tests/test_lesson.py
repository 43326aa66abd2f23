"""`conformance learn`: the lesson page's content, without a browser. The page is a lesson (no
harness words, small), it follows the tutorial folder (a new file is a new step), exercise answers
are only hashes, and the likely mistakes are the classic bugs' values."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pytest

from conformance.cases.loader import load_file
from conformance.cases.schema import Case
from conformance.cli import main
from conformance.running.runner import make_tensors
from conformance.teaching.lesson import answer_hash, build_lesson, canonical, number, step_title
from conformance.teaching.lesson_mistakes import correct_output, wrong_outputs
from conformance.teaching.lesson_page import asset
from conformance.teaching.pictures import case_pictures

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "cases" / "tutorial"
MAX_PAGE_BYTES = 400 * 1024


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("learn")
    assert main(["learn", str(out)]) == 0
    return out / "index.html"


def cases_of(file: Path) -> list[Case]:
    return [case for case in load_file(file) if isinstance(case, Case)]


def visible_text(page_html: str) -> str:
    """The page's text as a reader sees it before submitting: no scripts, no attributes."""
    without_scripts = re.sub(r"<script.*?</script>|<style.*?</style>", " ", page_html, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", without_scripts)).split())


def test_the_page_is_small_and_has_no_harness_vocabulary(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert page.stat().st_size <= MAX_PAGE_BYTES
    words = visible_text(text).lower()
    for word in ("oracle", "passed", "harness", "status", "reference vs", "expected"):
        assert word not in words, word
    assert "Step 2 — two groups" in visible_text(text)
    assert "650 = 5×10 + 6×100" in visible_text(text)
    # the footer: checked against torch, and how to re-check
    assert re.search(r"checked against torch \d+\.\d+", words) and "conformance run cases/tutorial" in words
    # the convolution the page runs is conv.js itself, the file the JS gate tests
    assert asset("conv.js") in text and asset("lesson.js") in text


def test_every_tutorial_file_is_a_step_in_order(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    files = sorted(TUTORIAL.glob("*.yaml"))
    ids = re.findall(r'<section class="screen" id="step-(\d+)"', text)
    assert [int(i) for i in ids] == list(range(1, len(files) + 1))
    for i in range(1, len(files) + 1):  # each step links to its neighbours
        assert f'href="#step-{i}"' in text


def test_a_new_tutorial_file_becomes_a_step_and_a_broken_one_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "tutorial"
    folder.mkdir()
    (folder / "01_dense.yaml").write_text((TUTORIAL / "01_dense.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "02_new.yaml").write_text(
        "# Learning path, step 2 of 3: a brand new idea. More words.\n"
        + (TUTORIAL / "02_grouped.yaml").read_text(encoding="utf-8").split("\n", 1)[1].replace("02_grouped", "02_new"),
        encoding="utf-8",
    )
    (folder / "03_broken.yaml").write_text("name: broken\nconv: {in_channels: 2}\n", encoding="utf-8")
    lesson = build_lesson(folder, torch_check=False)
    assert [(s.number, s.title) for s in lesson.steps] == [(1, "no grouping yet"), (2, "a brand new idea")]
    assert len(lesson.problems) == 1 and "03_broken.yaml" in lesson.problems[0]
    out = tmp_path / "out"
    assert main(["learn", str(out), "--tutorial", str(folder)]) == 1  # written, but the broken file is reported
    assert "a brand new idea" in (out / "index.html").read_text(encoding="utf-8")


def test_a_step_title_falls_back_to_the_file_name(tmp_path: Path) -> None:
    file = tmp_path / "11_grouped_stride.yaml"
    file.write_text("name: x\n", encoding="utf-8")
    assert step_title(file) == "grouped stride"


def test_exercise_answers_are_not_on_the_page_before_submission(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    numbers = {float(t) for t in re.findall(r"-?\d+(?:\.\d+)?", text)}  # anywhere in the file, scripts and JSON too
    hidden = 0
    exercises = [c for c in cases_of(TUTORIAL / "08_predict.yaml") if "exercise" in c.tags]
    for case in exercises:
        answer = correct_output(case, make_tensors(case)).reshape(-1)
        for i, value in enumerate(answer):
            hashed = answer_hash(f"{case.name}#{i}", canonical(value))
            assert hashed in text  # the page can check the answer ...
            hidden += float(number(value)) not in numbers  # ... without writing it
    assert hidden >= 4
    assert text.count('<form class="exercise"') == len(exercises) and 'class="spot"' in text and 'class="size"' in text


def test_exercise_one_is_not_the_readme_example() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    case = cases_of(TUTORIAL / "08_predict.yaml")[0]
    answer = correct_output(case, make_tensors(case)).reshape(-1)
    assert answer.tolist() == [13, 5200]
    assert "expected: {values: [21, 4300]" in readme and "[13, 5200]" not in readme


def test_the_likely_mistakes_are_the_classic_index_bugs() -> None:
    exercise = cases_of(TUTORIAL / "08_predict.yaml")[0]  # input [1, 10, 100, 1000], W = [[3, 1], [2, 5]]
    wrong = {w.name: w.output.reshape(-1).tolist() for w in wrong_outputs(exercise, make_tensors(exercise))}
    assert wrong == {
        "groups_ignored": [3 * (1 + 100) + 1 * (10 + 1000), 2 * (1 + 100) + 5 * (10 + 1000)],
        "interleaved_groups": [3 * 1 + 1 * 100, 2 * 10 + 5 * 1000],
        "weight_over_all_inputs": [13, 2 * 1 + 5 * 10],
    }
    transposed = cases_of(TUTORIAL / "09_conv_transpose_groups.yaml")[0]
    mixed_up = {w.name: w.output.reshape(-1) for w in wrong_outputs(transposed, make_tensors(transposed))}
    # the step's own description: "Reading the weight as Conv2d's would give y0 = 1x1 + 10x2 = 21"
    assert mixed_up["transposed_weight_as_conv"][0] == 21
    assert set(mixed_up) == {"groups_ignored", "transposed_weight_as_conv"}


def test_a_mistake_matching_a_prediction_is_named_on_the_page(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    case = cases_of(TUTORIAL / "08_predict.yaml")[0]
    values = ",".join(canonical(v) for v in (1313, 5252))
    assert answer_hash(case.name, values) in html.unescape(text)


def test_the_hash_is_fnv1a() -> None:
    # FNV-1a 32 of the empty string is the offset basis; of "a" a published value
    from conformance.teaching import lesson

    assert lesson.answer_hash("", "")  # the key and text are joined by "|"
    h = 0x811C9DC5
    for byte in b"|":
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    assert answer_hash("", "") == f"{h:08x}"
    assert canonical(2.1000004) == "2.100" and canonical(-0.0) == "0.000" and canonical(650) == "650.000"


def test_the_shuffle_is_drawn_as_a_permutation_with_no_arithmetic() -> None:
    shuffle = [c for c in cases_of(TUTORIAL / "07_stacked_groups.yaml") if c.name.endswith("4_shuffle")][0]
    pictures = case_pictures(shuffle, make_tensors(shuffle))
    assert [p.name for p in pictures] == ["shuffle"]
    svg = pictures[0].svg
    assert "0 multiply-adds" in svg and "reshape the 4 channels to (2, 2)" in svg
    assert svg.count("<line") == 4  # one wire per output channel, not 16
    assert "every output channel reads all" not in svg and "16 multiply-adds" not in svg
    lesson = build_lesson(TUTORIAL, torch_check=False)
    block = next(b for s in lesson.steps for b in s.cases if b.name == shuffle.name)
    assert block.layer.permutation == [0, 2, 1, 3] and block.cost.startswith("Cost: 0 multiply-adds")


def test_learn_writes_to_build_learn_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["learn"]) == 0
    page = tmp_path / "build" / "learn" / "index.html"
    assert page.is_file() and page.as_uri() in capsys.readouterr().out


def test_the_page_values_agree_with_torch_for_every_step() -> None:
    lesson = build_lesson(
        TUTORIAL, ROOT / "cases" / "seed" / "groups3.yaml"
    )  # raises LessonError on any disagreement with torch
    assert lesson.problems == [] and lesson.torch_version.startswith("2.")
    sums = [line for step in lesson.steps for block in step.cases for line in block.sums]
    assert any(line.terms == "5×100 + 6×1000" and line.value == "6500" for line in sums)
    assert np.isclose(float(lesson.seed.sums[2].value), 650)  # type: ignore[union-attr]
