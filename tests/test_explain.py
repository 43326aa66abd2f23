"""`conformance explain`: its numbers are checked, not just printed.

Every printed sum of products is parsed back and must equal the value it explains, and that value
must be torch's; the printed connectivity matrix must equal the one measured by running the
reference on one-hot inputs.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest

from conformance.cli import main
from conformance.implementations import load_implementation
from conformance.runner import run_case
from conformance.explain import MAX_TABLE_ROWS, connectivity, connectivity_lines, element_sum
from conformance.loader import load_cases
from conformance.runner import make_tensors
from conformance.schema import Case
from reference_impl import conv2d
from tests.helpers import torch_conv2d, write_case

ROOT = Path(__file__).resolve().parent.parent
SEED_FILES = sorted((ROOT / "cases" / "seed").glob("*.yaml"))
NUMBER = r"\(?-?[0-9.]+(?:e[-+]?\d+)?\)?"
ELEMENT_LINE = re.compile(r"^\s*y\[(\d+),(\d+),(\d+),(\d+)\] = (\S+) = (.*)$")
TERM = re.compile(rf"^({NUMBER})×({NUMBER}) \(in (\d+)(?:, tap (\d+),(\d+), (?:at (\d+),(\d+)|zero padding))?\)$")
REST = re.compile(rf"^… \((\d+) more, together ({NUMBER})\)$")
BIAS = re.compile(rf"^({NUMBER}) \(bias\)$")


def explain(capsys, *argv: str) -> tuple[int, str]:
    code = main(["explain", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def number(text: str) -> float:
    return float(text.strip("()"))


def parse_elements(text: str) -> list[dict]:
    """Every `y[n,o,h,w] = V = a×b (in c) + … + bias` line, parsed back into numbers."""
    elements = []
    for line in text.splitlines():
        match = ELEMENT_LINE.match(line)
        if not match:
            continue
        index = tuple(int(match.group(i)) for i in range(1, 5))
        terms, rest, bias, hidden = [], 0.0, 0.0, 0
        for part in match.group(6).split(" + "):
            if term := TERM.match(part):
                terms.append((number(term.group(1)), number(term.group(2)), int(term.group(3))))
            elif more := REST.match(part):
                hidden, rest = int(more.group(1)), number(more.group(2))
            elif b := BIAS.match(part):
                bias = number(b.group(1))
            else:
                raise AssertionError(f"unparsable term {part!r} in {line!r}")
        elements.append(dict(index=index, value=number(match.group(5)), terms=terms, rest=rest, bias=bias,
                             hidden=hidden, line=line.strip()))
    return elements


def torch_output(case: Case) -> np.ndarray:
    tensors = make_tensors(case)
    conv = case.conv
    x = tensors.input if tensors.input.ndim == 4 else tensors.input[None]
    return torch_conv2d(x, tensors.weight, tensors.bias, conv.stride, conv.padding, conv.dilation, conv.groups,
                        conv.padding_mode)


def assert_sums_match(elements: list[dict], torch_out: np.ndarray) -> None:
    for element in elements:
        products = [w * x for w, x, _ in element["terms"]]
        total = sum(products) + element["rest"] + element["bias"]
        # Each printed number carries at most 6 significant digits: allow that rounding, no more.
        scale = sum(abs(p) for p in products) + abs(element["rest"]) + abs(element["bias"]) + abs(element["value"])
        assert total == pytest.approx(element["value"], rel=0, abs=2e-5 * scale + 1e-6), element["line"]
        assert element["value"] == pytest.approx(torch_out[element["index"]], rel=2e-6, abs=1e-6), element["line"]


@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.stem)
def test_every_printed_sum_of_a_seed_case_equals_the_value_it_explains(path: Path, capsys) -> None:
    code, out = explain(capsys, str(path))
    assert code == 0, out
    case = load_cases([path])[0]
    torch_out = torch_output(case)
    elements = parse_elements(out)
    # A seed output is small: every element is explained, each exactly once.
    assert sorted(e["index"] for e in elements) == sorted(np.ndindex(*torch_out.shape))
    assert_sums_match(elements, torch_out)
    in_per_group = case.conv.in_channels // case.conv.groups
    out_per_group = case.conv.out_channels // case.conv.groups
    for element in elements:  # and each reads exactly the input channels of its group, in order
        group = element["index"][1] // out_per_group
        assert [c for _, _, c in element["terms"]] == list(range(group * in_per_group, (group + 1) * in_per_group))


def test_seed_groups3_reads_like_the_blog_post(capsys) -> None:
    code, out = explain(capsys, str(ROOT / "cases" / "seed" / "groups3.yaml"))
    assert code == 0
    lines = {e["line"] for e in parse_elements(out)}
    assert lines == {
        "y[0,0,0,0] = 2.1 = 1×0.1 (in 0) + 2×1 (in 1)",
        "y[0,1,0,0] = 4.3 = 3×0.1 (in 0) + 4×1 (in 1)",
        "y[0,2,0,0] = 650 = 5×10 (in 2) + 6×100 (in 3)",
        "y[0,3,0,0] = 870 = 7×10 (in 2) + 8×100 (in 3)",
        "y[0,4,0,0] = 109000 = 9×1000 (in 4) + 10×10000 (in 5)",
        "y[0,5,0,0] = 131000 = 11×1000 (in 4) + 12×10000 (in 5)",
    }
    assert "groups = 3 (number of groups)" in out
    assert "Each group has 2 input channel(s) and 2 output channel(s)" in out
    assert "group 1: output channels 2-3 read input channels 2-3" in out
    assert "weight shape (out_channels, in_channels/groups, kH, kW) = (6, 2, 1, 1)" in out
    assert "weight 6×2×1×1 = 12; with groups=1 the weight is 6×6×1×1 = 36, so this layer has 1/3 of it" in out
    assert "6 outputs × 2 products each = 12; with groups=1: 6 × 6 = 36 (1/3 of it)" in out
    side_by_side = out.split("values side by side")[1]
    assert re.search(r"y\[0,4,0,0\]\s+109000\s+109000\s+109000\s+109000\s+agree", side_by_side)
    assert "DIFFER" not in out


def _measured_connectivity(case: Case) -> np.ndarray:
    """(out, in) bool: does output channel o change when only input channel c is non-zero?
    Measured with the reference, a one-hot input per channel and all-ones weights."""
    conv = case.conv
    k_h, k_w = conv.kernel_hw
    weight = np.ones(conv.weight_shape())
    reads = np.zeros((conv.out_channels, conv.in_channels), dtype=bool)
    for c in range(conv.in_channels):
        x = np.zeros((1, conv.in_channels, k_h, k_w))  # (N, C_in, kH, kW): one window, no padding needed
        x[0, c] = 1.0
        y = conv2d(x, weight, None, 1, 0, 1, conv.groups)  # (1, C_out, 1, 1)
        reads[:, c] = y[0, :, 0, 0] != 0
    return reads


def _parse_connectivity(lines: list[str]) -> np.ndarray:
    rows = [line.split()[2:] for line in lines if line.strip().startswith("out ")]
    return np.array([[-1 if cell == "·" else int(cell) for cell in row] for row in rows])


VALID_CASES = [case for case in load_cases([ROOT / "cases"])
               if isinstance(case, Case) and case.expect_error is None and case.conv.is_divisible]


@pytest.mark.parametrize("case", VALID_CASES, ids=lambda c: c.name)
def test_printed_connectivity_equals_the_one_measured_on_one_hot_inputs(case: Case) -> None:
    printed = _parse_connectivity(connectivity_lines(case.conv))
    measured = _measured_connectivity(case)
    # Wide layers print only the top-left MAX_TABLE_ROWS x MAX_TABLE_ROWS block of the matrix.
    rows_shown, cols_shown = printed.shape
    assert (rows_shown, cols_shown) == tuple(min(n, MAX_TABLE_ROWS) for n in measured.shape)
    np.testing.assert_array_equal(printed >= 0, measured[:rows_shown, :cols_shown])
    np.testing.assert_array_equal(connectivity(case.conv) >= 0, measured)
    # and the number in each cell is the output's group
    out_per_group = case.conv.out_channels // case.conv.groups
    rows, cols = np.nonzero(printed >= 0)
    np.testing.assert_array_equal(printed[rows, cols], rows // out_per_group)


MAX_CHECKED_ELEMENTS = 512


@pytest.mark.parametrize("case", VALID_CASES, ids=lambda c: c.name)
def test_every_element_sum_equals_torch(case: Case) -> None:
    """The sums behind the printed lines, for every element of every case (padding modes, stride,
    dilation, unbatched input, bias): element_sum is the formula, torch the judge."""
    tensors = make_tensors(case)
    torch_out = torch_output(case)
    indices = list(np.ndindex(*torch_out.shape))
    if len(indices) > MAX_CHECKED_ELEMENTS:  # network layers: the corners and a seeded sample, not 10^5 Python sums
        rng = np.random.default_rng(0)
        picked = rng.choice(len(indices), MAX_CHECKED_ELEMENTS - 2, replace=False)
        indices = [indices[0], indices[-1]] + [indices[i] for i in sorted(picked)]
    totals = np.array([element_sum(case, tensors, index).total for index in indices])
    expected = np.array([torch_out[index] for index in indices])
    np.testing.assert_allclose(totals, expected, rtol=1e-5, atol=1e-5)


def test_long_sums_keep_the_largest_terms_and_say_what_is_left(capsys) -> None:
    path = ROOT / "cases" / "tutorial" / "03_grouped_kernel.yaml"
    code, out = explain(capsys, str(path), "--max-terms", "3")
    assert code == 0
    elements = parse_elements(out)
    assert elements and all(len(e["terms"]) == 3 and e["hidden"] == 5 for e in elements)
    first = next(e for e in elements if e["index"] == (0, 1, 0, 0))
    # the three largest of 1×100, 2×200, 3×300, 4×400, 1×1000, 2×2000, 3×3000, 4×4000
    assert [w * x for w, x, _ in first["terms"]] == [4000.0, 9000.0, 16000.0]
    assert first["rest"] == 100 + 400 + 900 + 1600 + 1000
    assert "tap 1,1, at 1,1" in first["line"]
    case = load_cases([path])[0]
    assert_sums_match(elements, torch_output(case))


def test_chosen_element_negative_numbers_padding_and_bias(capsys) -> None:
    path = ROOT / "cases" / "semantics" / "depthwise.yaml"
    code, out = explain(capsys, str(path), "--element", "1,3,0,6", "--element", "0,0,2,3")
    assert code == 0
    elements = parse_elements(out)
    assert [e["index"] for e in elements] == [(0, 0, 2, 3), (1, 3, 0, 6)]  # listed group by group
    corner = elements[1]["line"]
    assert corner.count("zero padding") == 5  # a corner of a 3x3 window with padding 1: 5 taps off the input
    assert "(bias)" in corner and re.search(r"\(-\d", corner)  # negatives are parenthesised
    assert_sums_match(elements, torch_output(load_cases([path])[0]))


def test_grouping_words_for_depthwise_and_depth_multiplier(capsys) -> None:
    _, out = explain(capsys, str(ROOT / "cases" / "tutorial" / "05_depth_multiplier.yaml"))
    assert "a depthwise convolution" in out and "depth multiplier out_channels/in_channels = 2" in out
    assert "group 1: output channels 2-3 read input channel 1" in out
    assert re.search(r"^\s+3\s+1\s+1$", out, re.MULTILINE)  # weight layout row: o=3, group 1, W[3,0] -> in 1
    _, out = explain(capsys, str(ROOT / "cases" / "tutorial" / "01_dense.yaml"))
    assert "every output channel reads every input channel" in out and "depthwise" not in out


def test_a_wrong_implementation_shows_up_beside_the_explanation(capsys) -> None:
    code, out = explain(capsys, str(ROOT / "cases" / "seed" / "groups3.yaml"),
                        "--impl", "tests.plugins.wrong_convs:interleaved_groups")
    assert code == 0  # explain explains; `run` is the gate
    side = out.split("values side by side")[1]
    # interleaved groups put group 1's first output (650) where output 1 (4.3) belongs
    assert re.search(r"y\[0,1,0,0\]\s+650\s+4\.3\s+4\.3\s+4\.3\s+DIFFER", side), side
    assert "FAIL tests.plugins.wrong_convs:interleaved_groups vs torch" in side


def test_a_failures_worst_element_is_among_those_explained(capsys) -> None:
    path = ROOT / "cases" / "semantics" / "grouped_stride_padding_dilation.yaml"
    impl = "tests.plugins.wrong_convs:interleaved_groups"
    result = run_case(load_cases([path])[0], load_implementation(impl))
    worst = result.checks[0].comparison.worst_index
    code, out = explain(capsys, str(path), "--case", "grouped_stride", "--impl", impl)
    explained = [e["index"] for e in parse_elements(out)]
    assert worst in explained and len(explained) > 6  # one per output channel, plus the worst one
    assert re.search(r"y\[{},{},{},{}\].*DIFFER".format(*worst), out.split("values side by side")[1])


def test_an_invalid_layer_is_explained_not_computed(capsys) -> None:
    code, out = explain(capsys, str(ROOT / "cases" / "errors" / "not_divisible.yaml"), "--case", "in_channels")
    assert code == 0
    assert "in_channels = 5 is not divisible by groups = 2 (5 % 2 = 1)" in out
    assert "torch: refused: ValueError: in_channels must be divisible by groups" in out


@pytest.mark.parametrize("argv,words", [
    (["cases/seed/groups3.yaml", "--element", "0,6,0,0"], "o=6 is out of range: the output has shape"),
    (["cases/seed/groups3.yaml", "--element", "0,x"], "--element expects n,o,h,w"),
    (["cases/seed/groups3.yaml", "--max-terms", "0"], "--max-terms expects a positive integer"),
    (["cases/errors/not_divisible.yaml"], "cases; choose one with --case: errors/in_channels_not_divisible"),
    (["cases/errors/not_divisible.yaml", "--case", "nope"], "has no case named 'nope'"),
    (["cases/errors/not_divisible.yaml", "--case", "divisible"], "matches several cases"),
    (["cases/no_such.yaml"], "no such case file: cases/no_such.yaml"),
])
def test_bad_command_lines_are_usage_errors(argv: list[str], words: str, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out = explain(capsys, *argv)
    assert code == 2 and words in out, out


def test_a_broken_case_file_is_reported_with_its_location(tmp_path: Path, capsys) -> None:
    path = write_case(tmp_path, "conv: {in_channels: 2, out_channels: 2, kernel_size: 1, grops: 2}\ninput: [1, 2]\n")
    code, out = explain(capsys, str(path))
    assert code == 1
    assert f"{path}:1: conv.grops: unknown key 'grops' (did you mean 'groups'?)" in out


def test_plot_writes_three_pictures_as_svg_and_png(tmp_path: Path, capsys) -> None:
    code, out = explain(capsys, str(ROOT / "cases" / "seed" / "groups3.yaml"), "--plot", str(tmp_path / "pictures"),
                        "--element", "0,2,0,0")
    assert code == 0
    for name in ("connectivity", "weights", "element"):
        png = (tmp_path / "pictures" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert width > 200 and height > 150
        svg = ElementTree.parse(tmp_path / "pictures" / f"{name}.svg").getroot()
        assert svg.tag.endswith("svg")
        assert f"{tmp_path / 'pictures' / name}.png" in out
    # matplotlib draws text as glyph paths and leaves each string in a comment before it.
    connectivity_svg = (tmp_path / "pictures" / "connectivity.svg").read_text()
    assert all(f"<!-- group {g} -->" in connectivity_svg for g in range(3))  # the legend
    assert "<!-- in 2 = 10 -->" in connectivity_svg and "<!-- out 2 = 650 -->" in connectivity_svg
    element_svg = (tmp_path / "pictures" / "element.svg").read_text()
    for text in ("10", "×5", "=50", "100", "×6", "=600", "sum = 650", "input channel 2", "input channel 3"):
        assert f"<!-- {text} -->" in element_svg, text  # output 2's kernel over its group's inputs, and the sum


def test_the_readme_shows_the_current_explain_output(capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    marker = "<!-- explain-output: cases/seed/groups3.yaml"
    assert marker in readme
    block = readme.split(marker, 1)[1].split("```text\n", 1)[1].split("\n```", 1)[0]
    code, out = explain(capsys, "cases/seed/groups3.yaml")
    assert code == 0
    # max abs errors in the closing check lines vary with the machine's float rounding paths
    normalise = lambda text: re.sub(r"max abs error [0-9.e+-]+", "max abs error …", text.rstrip())  # noqa: E731
    assert normalise(block) == normalise(out), "README's explain output is out of date: paste the new one"
