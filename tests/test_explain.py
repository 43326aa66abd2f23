"""`conformance explain`: its numbers are checked, not just printed, and it reads well at 80 columns.

Every sum in the explanation model must equal torch's output; the printed 1×1 sums are parsed back
and must equal the values they explain; the connectivity is measured on one-hot inputs; every line
fits COLUMNS; the harness's extra checks only appear with --checks; transposed convolutions and
1-d/3-d convolutions are explained with their own index arithmetic.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conformance.cases.loader import load_cases
from conformance.cases.schema import Case, ConvConfig
from conformance.cases.tensors import TensorSpec
from conformance.cli import main
from conformance.running.case_run import CaseRun, Outcome
from conformance.running.implementations import load_implementation
from conformance.running.runner import CaseResult, CaseTensors, make_tensors, run_case
from conformance.running.torch_oracle import torch_forward
from conformance.teaching.explain import Grouping, build_explanation, element_sum, layout_of, parse_element, plural
from conformance.teaching.explain_text import failure_explanation, render_text
from tests.helpers import write_case


@pytest.fixture(autouse=True)
def _fixed_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """explain fits the terminal's width: pin it, so a narrow terminal or a worker process cannot wrap
    the lines these tests read (100 is its width off a terminal)."""
    monkeypatch.setenv("COLUMNS", "100")


ROOT = Path(__file__).resolve().parent.parent
SEED_FILES = sorted((ROOT / "cases" / "seed").glob("*.yaml"))
TUTORIAL_FILES = sorted((ROOT / "cases" / "tutorial").glob("*.yaml"))
NUMBER = r"\(?-?[0-9.]+(?:e[-+]?\d+)?\)?"
ELEMENT_LINE = re.compile(r"^\s*y\[([\d,]+)\] = (\S+) = (.*)$")
TERM = re.compile(rf"^({NUMBER})×({NUMBER}) \(in (\d+)(?:, pad)?\)$")
REST = re.compile(rf"^… \((\d+) more products?, together ({NUMBER})\)$")
BIAS = re.compile(rf"^({NUMBER}) \(bias\)$")
EXTRA_CHECK_WORDS = ("metamorphic", "wiring probe", "channels_last", "noncontiguous_weight")


def explain(capsys, *argv: str) -> tuple[int, str]:
    code = main(["explain", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def number(text: str) -> float:
    return float(text.strip("()"))


def joined_lines(text: str) -> list[str]:
    """The output's lines with wrapped sums (continuation lines starting with '+') joined back."""
    lines: list[str] = []
    for line in text.splitlines():
        if lines and line.lstrip().startswith(("+ ", "− ")) and ELEMENT_LINE.match(lines[-1]):
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


def parse_one_by_one(text: str) -> list[dict]:
    """Every `y[n,o,h,w] = V = a×b (in c) + … + bias` line of a 1×1 case, parsed back into numbers."""
    elements = []
    for line in joined_lines(text):
        match = ELEMENT_LINE.match(line)
        if not match:
            continue
        index = tuple(int(i) for i in match.group(1).split(","))
        terms, rest, bias = [], 0.0, 0.0
        for part in match.group(3).split(" + "):
            if term := TERM.match(part):
                terms.append((number(term.group(1)), number(term.group(2)), int(term.group(3))))
            elif more := REST.match(part):
                rest = number(more.group(2))
            elif b := BIAS.match(part):
                bias = number(b.group(1))
            else:
                raise AssertionError(f"unparsable term {part!r} in {line!r}")
        elements.append(
            dict(index=index, value=number(match.group(2)), terms=terms, rest=rest, bias=bias, line=line.strip())
        )
    return elements


def torch_output(case: Case) -> np.ndarray:
    """torch's output of the case (the harness's oracle, for every op) computed in float64 on the case's
    values (already rounded to its dtype), batched: (N, C_out, *spatial)."""
    tensors = make_tensors(case)
    as64 = lambda a: None if a is None else np.asarray(a, dtype=np.float64)  # noqa: E731
    out = torch_forward(
        dataclasses.replace(case, dtype="float64"), as64(tensors.input), as64(tensors.weight), as64(tensors.bias)
    )
    return out.reshape(layout_of(case.conv, tensors.input.shape, tensors.weight.shape).output_shape)


def all_cases(path: Path) -> list[Case]:
    return [case for case in load_cases([path]) if isinstance(case, Case)]


def command_lines(path: Path) -> list[list[str]]:
    """One explain command line per case of the file (--case when it holds several)."""
    cases = load_cases([path])
    if len(cases) == 1:
        return [[str(path)]]
    return [[str(path), "--case", case.name] for case in cases if isinstance(case, Case)]


# ---------------------------------------------------------------------------------------------
# The numbers


@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.stem)
def test_every_printed_sum_of_a_seed_case_equals_the_value_it_explains(path: Path, capsys) -> None:
    code, out = explain(capsys, str(path))
    assert code == 0, out
    case = load_cases([path])[0]
    torch_out = torch_output(case)
    elements = parse_one_by_one(out)
    # A seed output is small: every element is explained, each exactly once.
    assert sorted(e["index"] for e in elements) == sorted(np.ndindex(*torch_out.shape))
    in_per_group = case.conv.in_channels // case.conv.groups
    out_per_group = case.conv.out_channels // case.conv.groups
    for element in elements:
        products = [w * x for w, x, _ in element["terms"]]
        total = sum(products) + element["rest"] + element["bias"]
        scale = sum(abs(p) for p in products) + abs(element["value"])  # each number carries ≤ 6 digits
        assert total == pytest.approx(element["value"], rel=0, abs=2e-5 * scale + 1e-6), element["line"]
        assert element["value"] == pytest.approx(torch_out[element["index"]], rel=2e-6, abs=1e-6), element["line"]
        group = element["index"][1] // out_per_group  # and it reads exactly its group's input channels, in order
        assert [c for _, _, c in element["terms"]] == list(range(group * in_per_group, (group + 1) * in_per_group))


def test_seed_groups3_reads_like_the_blog_post(capsys) -> None:
    code, out = explain(capsys, str(ROOT / "cases" / "seed" / "groups3.yaml"))
    assert code == 0
    assert {e["line"] for e in parse_one_by_one(out)} == {
        "y[0,0,0,0] = 2.1 = 1×0.1 (in 0) + 2×1 (in 1)",
        "y[0,1,0,0] = 4.3 = 3×0.1 (in 0) + 4×1 (in 1)",
        "y[0,2,0,0] = 650 = 5×10 (in 2) + 6×100 (in 3)",
        "y[0,3,0,0] = 870 = 7×10 (in 2) + 8×100 (in 3)",
        "y[0,4,0,0] = 109000 = 9×1000 (in 4) + 10×10000 (in 5)",
        "y[0,5,0,0] = 131000 = 11×1000 (in 4) + 12×10000 (in 5)",
    }
    flat = " ".join(out.split())  # prose is wrapped: compare it with the line breaks removed
    assert "the 6 input channels are split into 3 groups of 6/3 = 2 channels" in flat
    assert "group 1: output channels 2-3 read input channels 2-3" in out
    assert "shape (6, 2, 1, 1) = (out_channels, in_channels/groups, kH, kW)" in flat
    assert "the second axis counts 0…1 within the group, not 0…5" in flat
    # the input and the weight laid out per group, each weight naming the input it multiplies
    assert "group 1: x[0,2] = 10   x[0,3] = 100" in out
    assert "W[2,0] = 5 (in 2→out 2)   W[2,1] = 6 (in 3→out 2)" in out
    assert "the weight 6×2×1×1 holds 12 numbers; with groups=1 it would be 6×6×1×1 = 36: groups=3 keeps 1/3" in flat
    assert "6 outputs × 2 products each = 12; with groups=1, 36 (this layer does 1/3 of the work)" in flat
    # where the digit trick stops working, it says so
    assert "Digits carry in 131000: 11000 (in 4) reaches the digits of 120000 (in 5)" in flat
    carry = next(part for part in out.split("\n\n") if part.startswith("Digits carry"))
    assert len(carry.splitlines()) <= 3  # a carry note names the two parts that collide, not every product
    # one value per element by default: every side agrees, so the comparisons wait for --checks
    assert "EVERY SIDE'S VALUE" not in out and "reference vs torch" not in out and "DIFFER" not in out
    assert "(Checked: reference, torch and expected agree with every sum above." in flat
    assert "y[n, o, i]" not in out  # no general formula (stride, dilation, padding) for a 1×1 layer
    _, checked = explain(capsys, str(ROOT / "cases" / "seed" / "groups3.yaml"), "--checks")
    assert re.search(r"y\[0,4,0,0\]\s+109000\s+109000\s+109000\s+109000\s+agree", checked)
    assert "ok   reference vs torch: all 6 elements agree" in checked


def test_partial_sums_per_channel_and_products_one_per_line(capsys) -> None:
    code, out = explain(capsys, str(ROOT / "cases" / "tutorial" / "03_grouped_kernel.yaml"))
    assert code == 0
    assert "y[0,0,0,0] = 330 = 30 (in 0) + 300 (in 1)" in out
    assert "y[0,1,0,0] = 33000 = 3000 (in 2) + 30000 (in 3)" in out
    block = out.split("y[0,1,0,0] = 33000")[1].split("\n\n")[0].splitlines()
    products = [line for line in block if re.match(r"^\s+(in 3: 30000 = |\+ )\d+×\d+ ", line) and "x[0,3," in line]
    assert len(products) == 4  # one line per kernel tap of input channel 3
    assert re.search(r"in 3: 30000 = 1×1000\s+tap 0,0: W\[1,1,0,0\]·x\[0,3,0,0\]", out)
    assert re.search(r"\+ 4×4000\s+tap 1,1: W\[1,1,1,1\]·x\[0,3,1,1\]", out)


def test_long_sums_keep_the_largest_products_and_say_what_is_left(capsys) -> None:
    code, out = explain(capsys, str(ROOT / "cases" / "tutorial" / "03_grouped_kernel.yaml"), "--max-terms", "2")
    assert code == 0
    assert re.search(r"in 3: 30000 = 3×3000 .*\n\s+\+ 4×4000 .*\n\s+\+ … \(2 more products, together 5000\)", out)


def _measured_connectivity(case: Case) -> np.ndarray:
    """(out, in) bool: does output channel o change when only input channel c is non-zero?
    Measured with torch (any op), all-ones weights and an input of ones in channel c only, one
    kernel window large (a transposed conv: one pixel), so wide layers stay quick."""
    tensors = make_tensors(case)
    geo = layout_of(case.conv, tensors.input.shape, tensors.weight.shape)
    window = (
        (1,) * geo.dims
        if case.conv.transposed
        else tuple(  # reflect padding needs more input than padding
            max(d * (k - 1) + 1, before + 1, after + 1)
            for d, k, before, after in zip(geo.dilation, geo.kernel, geo.pad_before, geo.pad_after, strict=False)
        )
    )
    c_in = case.conv.in_channels
    x = np.zeros((c_in, c_in, *window))  # one batch entry per input channel c, ones in channel c only
    x[np.arange(c_in), np.arange(c_in)] = 1.0
    no_bias = None if tensors.bias is None else np.zeros_like(tensors.bias)  # only the weights connect
    y = torch_forward(case, x.astype(tensors.input.dtype), np.ones_like(tensors.weight), no_bias)
    y = np.abs(y.astype(np.float64)).reshape(c_in, case.conv.out_channels, -1).sum(axis=2)  # (C_in, C_out)
    reads = (y != 0).T
    return reads


VALID_CASES = [
    case
    for case in load_cases([ROOT / "cases"])
    if isinstance(case, Case) and case.expect_error is None and case.conv.is_divisible
]


@pytest.mark.parametrize("case", VALID_CASES, ids=lambda c: c.name)
def test_grouping_reads_equals_the_connectivity_measured_on_one_hot_inputs(case: Case) -> None:
    conv = case.conv
    grouping = Grouping(conv.type, conv.groups, conv.in_channels, conv.out_channels)
    np.testing.assert_array_equal(grouping.reads(), _measured_connectivity(case))


def test_the_printed_connectivity_matrix_marks_reads_and_shows_groups_apart(capsys) -> None:
    _, out = explain(capsys, str(ROOT / "cases" / "seed" / "out18_groups2.yaml"))
    case = load_cases([ROOT / "cases" / "seed" / "out18_groups2.yaml"])[0]
    rows = re.findall(r"^  out (\d+)  group (\d+)  ([■· ]+)$", out, re.MULTILINE)
    assert len(rows) == 18
    printed = np.array([[cell == "■" for cell in marks.split()] for _, _, marks in rows])
    np.testing.assert_array_equal(printed, _measured_connectivity(case))
    assert [int(g) for _, g, _ in rows] == [o // 9 for o in range(18)]
    assert re.search(r"^\s+input group  0 0 0 1 1 1$", out, re.MULTILINE)
    _, dense = explain(capsys, str(ROOT / "cases" / "tutorial" / "01_dense.yaml"))
    assert re.search(r"^  out 0\s+■ ■$", dense, re.MULTILINE)  # full: every cell marked, no group digits


MAX_CHECKED_ELEMENTS = 96


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


# ---------------------------------------------------------------------------------------------
# Every op: transposed convolutions and 1-d/3-d


def _case(
    conv: ConvConfig, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, name: str = "direct"
) -> Case:
    """A Case built directly (the YAML loader of this branch knows Conv2d only)."""

    def spec(array: np.ndarray) -> TensorSpec:
        return TensorSpec("values", {}, tuple(array.shape), np.asarray(array, dtype=np.float64).reshape(-1))

    return Case(
        name=name,
        file=Path("direct.yaml"),
        line=1,
        conv=conv,
        input=spec(x),
        input_shape=tuple(x.shape),
        weight=spec(weight),
        bias=None if bias is None else spec(bias),
    )


def _torch(conv: ConvConfig, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    kwargs = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=conv.groups)
    if conv.transposed:
        kwargs["output_padding"] = conv.output_padding
    function = getattr(F, conv.functional_name)
    return function(
        torch.tensor(x), torch.tensor(weight), None if bias is None else torch.tensor(bias), **kwargs
    ).numpy()


def _result(case: Case, torch_out: np.ndarray) -> CaseResult:
    """A CaseResult as run_case makes it, with torch's output on both sides (this branch's runner
    speaks Conv2d only; explain needs just the tensors and the outputs)."""
    tensors = CaseTensors(
        case.input.values.reshape(case.input_shape),
        case.weight.values.reshape(case.weight.shape),
        None if case.bias is None else case.bias.values,
        None,
    )
    run = CaseRun(case, load_implementation(None), tensors, Outcome(output=torch_out), Outcome(output=torch_out))
    return CaseResult(name=case.name, file=str(case.file), status="passed", case=case, run=run)


def test_the_convtranspose2d_seed_shows_the_swapped_weight_layout(capsys, monkeypatch) -> None:
    """The done-when of the ops issue: 3.1 = 1×0.1 + 3×1 and 750 = 5×10 + 7×100, with their channels."""
    conv = ConvConfig(6, 6, 1, groups=3, bias=False, type="ConvTranspose2d")
    x = np.array([0.1, 1, 10, 100, 1000, 10000]).reshape(1, 6, 1, 1)
    weight = np.arange(1, 13, dtype=np.float64).reshape(6, 2, 1, 1)  # (in, out/groups, 1, 1): rows are INPUTS
    torch_out = _torch(conv, x.astype(np.float32), weight.astype(np.float32), None)
    np.testing.assert_allclose(torch_out.reshape(-1), [3.1, 4.2, 750, 860, 119000, 130000], rtol=1e-6)
    monkeypatch.setenv("COLUMNS", "80")
    text = render_text(build_explanation(_result(_case(conv, x, weight, name="seed/convtranspose2d"), torch_out)))
    assert "y[0,0,0,0] = 3.1 = 1×0.1 (in 0) + 3×1 (in 1)" in text
    assert "y[0,2,0,0] = 750 = 5×10 (in 2) + 7×100 (in 3)" in text
    assert "y[0,5,0,0] = 130000 = 10×1000 (in 4) + 12×10000 (in 5)" in text
    flat = " ".join(text.split())
    assert (
        "ConvTranspose2d keeps input channels first: W[c, j] belongs to input channel c's group g and feeds "
        "output channel g·out_channels/groups + j" in flat
    )
    assert "shape (6, 2, 1, 1) = (in_channels, out_channels/groups, kH, kW)" in flat
    assert "W[2,0] = 5 (in 2→out 2)   W[2,1] = 6 (in 2→out 3)" in text  # a row is an INPUT channel
    assert "(i + p − k·d) divisible by s" not in flat  # a 1×1 layer's sum needs no general formula
    assert max(len(line) for line in text.splitlines()) <= 80


TRANSPOSED_AND_ND = [
    # (type, in, out, groups, kernel, stride, padding, dilation, output_padding, spatial size)
    ("ConvTranspose1d", 2, 4, 2, 3, 3, 2, 2, 1, 5),
    ("ConvTranspose2d", 4, 6, 2, 3, 2, 1, 1, 1, 4),
    ("ConvTranspose2d", 6, 6, 6, 4, 2, 1, 1, 0, 3),  # depthwise k4 s2 upsampler
    ("ConvTranspose3d", 2, 2, 1, 2, 2, 0, 1, 0, 3),
    ("Conv1d", 4, 8, 4, 3, 1, 1, 1, 0, 7),
    ("Conv3d", 6, 3, 3, 3, 2, 1, 1, 0, 4),
]


@pytest.mark.parametrize("spec", TRANSPOSED_AND_ND, ids=lambda s: f"{s[0]}-g{s[3]}-k{s[4]}-s{s[5]}")
def test_element_sums_of_every_op_equal_torch(spec: tuple) -> None:
    op, c_in, c_out, groups, k, s, p, d, op_pad, size = spec
    conv = ConvConfig(c_in, c_out, k, stride=s, padding=p, dilation=d, groups=groups, type=op, output_padding=op_pad)
    dims = conv.spatial_dims
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, c_in) + (size,) * dims)
    w_shape = (c_in, c_out // groups) if conv.transposed else (c_out, c_in // groups)
    weight = rng.standard_normal(w_shape + (k,) * dims)
    bias = rng.standard_normal(c_out)
    expected = _torch(conv, x, weight, bias)
    case = _case(conv, x, weight, bias)
    tensors = CaseTensors(x, weight, bias, None)
    assert layout_of(conv, x.shape, weight.shape).output_shape == expected.shape
    for index in np.ndindex(*expected.shape):
        assert element_sum(case, tensors, index).total == pytest.approx(expected[index], abs=1e-9), index
    text = render_text(build_explanation(_result(case, expected)), width=80, strict=True)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert op in text and "DIFFER" not in text


def test_padding_modes_in_1d_and_3d_read_the_mirrored_inputs() -> None:
    rng = np.random.default_rng(2)
    for dims, mode in ((1, "reflect"), (3, "circular"), (1, "replicate")):
        conv = ConvConfig(
            4, 4, 3, padding=2 if dims == 1 else 1, groups=2, bias=False, padding_mode=mode, type=f"Conv{dims}d"
        )
        x, weight = rng.standard_normal((1, 4) + (5,) * dims), rng.standard_normal((4, 2) + (3,) * dims)
        layer = getattr(torch.nn, f"Conv{dims}d")(
            4, 4, 3, padding=conv.padding, groups=2, bias=False, padding_mode=mode
        ).double()
        layer.weight.data = torch.tensor(weight)
        expected = layer(torch.tensor(x)).detach().numpy()
        tensors = CaseTensors(x, weight, None, None)
        case = _case(conv, x, weight)
        totals = [element_sum(case, tensors, index).total for index in np.ndindex(*expected.shape)]
        np.testing.assert_allclose(totals, expected.reshape(-1), atol=1e-9)


# ---------------------------------------------------------------------------------------------
# For learners: width, wording, what is shown by default


def _width_cases() -> list[list[str]]:
    lines = [argv for path in SEED_FILES + TUTORIAL_FILES for argv in command_lines(path)]
    lines.append([str(ROOT / "cases" / "semantics" / "depthwise.yaml"), "--case", "semantics/depthwise_3x3"])
    lines.append(
        [str(ROOT / "cases" / "semantics" / "grouped_stride_padding_dilation.yaml"), "--case", "grouped_stride"]
    )
    return lines


WIDTH_CASES = _width_cases()


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.parametrize("argv", WIDTH_CASES, ids=lambda a: a[-1].split("/")[-1])
def test_every_line_fits_the_terminal_and_extra_checks_wait_for_the_flag(
    argv: list[str], columns: int, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out = explain(capsys, *argv)
    assert code == 0, out
    too_long = [line for line in out.splitlines() if len(line) > columns]
    assert not too_long, too_long
    assert not any(word in out for word in EXTRA_CHECK_WORDS), out


LAYOUT_CASES = [
    case
    for path in SEED_FILES + TUTORIAL_FILES + [ROOT / "cases" / "semantics", ROOT / "cases" / "networks"]
    for case in all_cases(path)
]


@pytest.mark.parametrize("case", LAYOUT_CASES, ids=lambda c: c.name)
def test_every_section_is_laid_out_to_fit_without_the_safety_net(case: Case) -> None:
    """strict=True: a line the layout did not fit raises instead of being hard-wrapped, so this
    fails where a section relies on the last-resort wrapping (which keeps the CLI in bounds)."""
    result = run_case(case, load_implementation(None))
    explanation = build_explanation(result)
    for width in (80, 100):
        for show_checks in (False, True):
            render_text(explanation, width=width, show_checks=show_checks, strict=True)


@pytest.mark.parametrize("argv", [WIDTH_CASES[0], [str(ROOT / "cases" / "tutorial" / "05_depth_multiplier.yaml")]])
def test_checks_flag_lists_the_harness_checks(argv: list[str], capsys) -> None:
    _, plain = explain(capsys, *argv)
    assert "--checks lists them" in plain
    code, out = explain(capsys, *argv, "--checks")
    assert code == 0
    assert all(word in out for word in ("metamorphic", "wiring probe", "channels_last")), out
    assert "--checks lists them" not in out


def test_a_wide_layer_is_cropped_not_overflowing(tmp_path: Path, capsys, monkeypatch) -> None:
    path = write_case(
        tmp_path,
        "conv: {in_channels: 48, out_channels: 96, kernel_size: 3, padding: 1, groups: 12}\n"
        "input: {random: {seed: 1}, shape: [1, 48, 12, 12]}\n",
    )
    monkeypatch.setenv("COLUMNS", "80")
    code, out = explain(capsys, str(path))
    assert code == 0, out
    assert max(len(line) for line in out.splitlines()) <= 80
    # the connectivity matrix keeps whole groups, the first ones and the last, and says so
    assert "(groups 2 … 10 are left out of both axes to fit: each reads only its own input channels" in " ".join(
        out.split()
    )
    assert re.search(r"^\s+input channel\s+0\s+1 .* 7\s+…\s+44\s+45\s+46\s+47$", out, re.M), out
    assert "… (9 more groups)" in out  # the layout shows the first groups and the last
    # and a default element comes from the last group, where the offset shows
    assert "(the last group, 11: its input channels start at 11·4 = 44)" in out
    last = next(
        (re.match(r"\s*y\[0,95,6,6\] = \S+ = (.*)", line) for line in joined_lines(out) if "y[0,95,6,6] =" in line),
        None,
    )
    assert last and "(in 44)" in last.group(1) and "(in 47)" in last.group(1)


WORDING_SLIPS = [
    r"\b1 (groups|products|channels|cases|outputs|elements|numbers|checks|weights)\b",
    r"group\(s\)",
    r"channel\(s\)",
    r"\b0 of allowed",
    r"counts 0…(\d+) within the group, not 0…\1\b",
    r"has the same\s*$",
]


@pytest.mark.parametrize("argv", WIDTH_CASES, ids=lambda a: a[-1].split("/")[-1])
def test_no_wording_slips(argv: list[str], capsys) -> None:
    _, out = explain(capsys, *argv)
    flat = " ".join(out.split())
    for slip in WORDING_SLIPS:
        assert not re.search(slip, flat, re.MULTILINE), slip
    assert plural(1, "group") == "1 group" and plural(3, "group") == "3 groups"


def test_dense_layer_words(capsys) -> None:
    _, out = explain(capsys, str(ROOT / "cases" / "tutorial" / "01_dense.yaml"))
    flat = " ".join(out.split())
    assert "every output channel reads every input channel: the ordinary (dense) convolution" in flat
    assert "within the group" not in flat and "depthwise" not in flat and "1/1" not in flat


def test_depth_multiplier_words(capsys) -> None:
    _, out = explain(capsys, str(ROOT / "cases" / "tutorial" / "05_depth_multiplier.yaml"))
    flat = " ".join(out.split())
    assert "a depthwise convolution" in flat and "depth multiplier out_channels/in_channels = 2" in flat
    assert "group 1: output channels 2-3 read input channel 1" in out
    assert "W[3,0] = 4 (in 1→out 3)" in out


def test_float32_rounding_is_explained_where_it_shows(capsys) -> None:
    _, plain = explain(capsys, str(ROOT / "cases" / "tutorial" / "05_depth_multiplier.yaml"))
    assert "Why an error" not in plain  # it explains the comparisons, which wait for --checks
    _, out = explain(capsys, str(ROOT / "cases" / "tutorial" / "05_depth_multiplier.yaml"), "--checks")
    flat = " ".join(out.split())
    assert re.search(
        r"Why an error of [0-9.]+e-06 when the values print alike: float32 keeps about 7 significant "
        r"digits, so near 40\.4 neighbouring float32 numbers are 3\.81e-06 apart",
        flat,
    ), flat
    _, exact = explain(capsys, str(ROOT / "cases" / "tutorial" / "03_grouped_kernel.yaml"))
    assert "Why an error" not in exact  # integers: every side is exact, nothing to explain


def test_default_elements_of_a_large_output_include_the_last_group(capsys) -> None:
    path = ROOT / "cases" / "semantics" / "grouped_stride_padding_dilation.yaml"
    case = next(c for c in all_cases(path) if "grouped_stride" in c.name)
    e = build_explanation(run_case(case, load_implementation(None)))
    groups = {element.sum.group for element in e.elements}
    assert {0, case.conv.groups - 1} <= groups
    last = next(element for element in e.elements if element.sum.group == case.conv.groups - 1)
    in_per_group = case.conv.in_channels // case.conv.groups
    assert [c.input_channel for c in last.sum.channels][0] == (case.conv.groups - 1) * in_per_group


# ---------------------------------------------------------------------------------------------
# Wrong values: an implementation's or a learner's


def test_a_wrong_implementation_shows_up_beside_the_explanation(capsys) -> None:
    code, out = explain(
        capsys, str(ROOT / "cases" / "seed" / "groups3.yaml"), "--impl", "tests.plugins.wrong_convs:interleaved_groups"
    )
    assert code == 0  # explain explains; `run` is the gate
    side = out.split("EVERY SIDE'S VALUE beside the sum")[1]
    # interleaved groups put group 1's first output (650) where output 1 (4.3) belongs
    assert "(interleaved_groups = tests.plugins.wrong_convs:interleaved_groups)" in side
    assert re.search(r"y\[0,1,0,0\]\s+650\s+4\.3\s+4\.3\s+4\.3\s+DIFFER: interleaved_groups$", side, re.M), side
    assert "FAIL tests.plugins.wrong_convs:interleaved_groups vs torch" in side


def test_a_failures_worst_element_is_explained_first(capsys) -> None:
    path = ROOT / "cases" / "semantics" / "grouped_stride_padding_dilation.yaml"
    impl = "tests.plugins.wrong_convs:interleaved_groups"
    result = run_case(load_cases([path])[0], load_implementation(impl))
    worst = result.checks[0].comparison.worst_index
    e = build_explanation(result)
    assert e.elements[0].sum.index == worst and e.elements[0].reason.startswith("worst element of")
    assert not all(e.elements[0].agrees(*e.tolerance).values())


def test_a_wrong_prediction_shows_the_sum_beside_it(tmp_path: Path, capsys) -> None:
    """Predict-then-check: the learner's `expected` is wrong in one element; the explanation and the
    report's hook (failure_explanation) write that element's sum beside the prediction."""
    path = write_case(
        tmp_path,
        "conv: {in_channels: 6, out_channels: 6, kernel_size: 1, groups: 3, bias: false}\n"
        "input: {values: [0.1, 1, 10, 100, 1000, 10000], shape: [1, 6, 1, 1]}\n"
        "weight: {arange: {start: 1}}\n"
        "expected: {values: [2.1, 4.3, 600, 870, 109000, 131000], shape: [1, 6, 1, 1]}\n",
    )
    result = run_case(load_cases([path])[0], load_implementation(None))
    lines = failure_explanation(result, width=80)
    assert lines[0].strip() == "the worst element explained: expected y[0,2,0,0] = 600, but the sum is:"
    assert lines[1].strip() == "y[0,2,0,0] = 650 = 5×10 (in 2) + 6×100 (in 3)"
    code, out = explain(capsys, str(path))
    assert "but expected says 600: the sum above gives 650" in out
    ok = run_case(load_cases([ROOT / "cases" / "seed" / "groups3.yaml"])[0], load_implementation(None))
    assert failure_explanation(ok) == []


def test_an_invalid_layer_is_explained_not_computed(capsys) -> None:
    code, out = explain(capsys, str(ROOT / "cases" / "errors" / "not_divisible.yaml"), "--case", "in_channels")
    assert code == 0
    flat = " ".join(out.split())
    assert "in_channels = 5 is not divisible by groups = 2 (5 % 2 = 1)" in flat
    assert "torch: refused: ValueError: in_channels must be divisible by groups" in flat


# ---------------------------------------------------------------------------------------------
# The command line


@pytest.mark.parametrize(
    "argv,words",
    [
        (["cases/seed/groups3.yaml", "--element", "0,6,0,0"], "o=6 is out of range: the output has shape"),
        (["cases/seed/groups3.yaml", "--element", "0,x"], "--element expects n,o,h,w"),
        (["cases/seed/groups3.yaml", "--max-terms", "0"], "--max-terms expects a positive integer"),
        (["cases/errors/not_divisible.yaml"], "cases; choose one with --case: errors/in_channels_not_divisible"),
        (["cases/errors/not_divisible.yaml", "--case", "nope"], "has no case named 'nope'"),
        (["cases/errors/not_divisible.yaml", "--case", "divisible"], "matches several cases"),
        (["cases/no_such.yaml"], "no such case file: cases/no_such.yaml"),
    ],
)
def test_bad_command_lines_are_usage_errors(argv: list[str], words: str, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out = explain(capsys, *argv)
    assert code == 2 and words in out, out


def test_element_indices_follow_the_spatial_dimensions() -> None:
    assert parse_element("1,2,3", (2, 4, 5)) == (1, 2, 3)  # a Conv1d output (n, o, l)
    assert parse_element("2,3", (1, 4, 5)) == (0, 2, 3)  # unbatched
    with pytest.raises(ValueError, match=r"d=4 is out of range: the output has shape \(n, o, d, h, w\)"):
        parse_element("0,0,4,0,0", (1, 2, 4, 4, 4))


def test_chosen_elements_negative_numbers_padding_and_bias(capsys) -> None:
    path = ROOT / "cases" / "semantics" / "depthwise.yaml"
    code, out = explain(
        capsys, str(path), "--case", "semantics/depthwise_3x3", "--element", "1,3,0,6", "--element", "0,0,2,3"
    )
    assert code == 0, out
    corner = out.split("y[1,3,0,6] = ")[1].split("\n    y[")[0]
    assert corner.count("·pad") == 5  # a corner of a 3x3 window with padding 1: 5 taps off the input
    assert "(bias)" in corner and re.search(r"\(-\d", corner)  # negatives are parenthesised


def test_a_broken_case_file_is_reported_with_its_location(tmp_path: Path, capsys) -> None:
    path = write_case(tmp_path, "conv: {in_channels: 2, out_channels: 2, kernel_size: 1, grops: 2}\ninput: [1, 2]\n")
    code, out = explain(capsys, str(path))
    assert code == 1
    assert f"{path}:1: conv.grops: unknown key 'grops' (did you mean 'groups'?)" in out


def test_plot_writes_the_pictures_as_svg_with_their_numbers_as_text(tmp_path: Path, capsys) -> None:
    code, out = explain(
        capsys,
        str(ROOT / "cases" / "seed" / "groups3.yaml"),
        "--plot",
        str(tmp_path / "pictures"),
        "--element",
        "0,2,0,0",
    )
    assert code == 0, out
    texts = {}
    for name in ("connectivity", "element"):
        path = tmp_path / "pictures" / f"{name}.svg"
        assert str(path) in out
        root = ElementTree.parse(path).getroot()
        assert root.tag.endswith("svg")
        texts[name] = {"".join(node.itertext()).strip() for node in root.iter() if node.tag.endswith("text")}
    assert {"group 0", "group 1", "group 2", "in 2 = 10", "out 2 = 650"} <= texts["connectivity"]
    # output 2's kernel over its group's inputs, and the sum
    assert {
        "100",
        "×6",
        "=600",
        "input channel 2",
        "input channel 3",
        "y[0,2,0,0] = 650",
        "in 3: 6×100 = 600",
    } <= texts["element"], texts["element"]


def test_an_empty_batch_is_explained_without_elements(capsys) -> None:
    code, out = explain(capsys, str(ROOT / "cases" / "regressions" / "empty_batch_depthwise.yaml"))
    assert code == 0, out
    flat = " ".join(out.split())
    assert "no element to write out (an empty batch or an empty output is valid" in flat
    assert "THE WEIGHT" in out and "CONNECTIVITY" in out and "y[" not in out


CONV_TRANSPOSE_SEED = ROOT / "cases" / "seed" / "convtranspose2d_groups3.yaml"


@pytest.mark.skipif(not CONV_TRANSPOSE_SEED.exists(), reason="the ConvTranspose2d seed case arrives with branch nd")
def test_explain_on_the_convtranspose2d_seed_file(capsys, monkeypatch) -> None:
    """The done-when of the ops issue, on the case file itself: 3.1 = 1×0.1 + 3×1 and 750 = 5×10 + 7×100."""
    monkeypatch.setenv("COLUMNS", "80")
    code, out = explain(capsys, str(CONV_TRANSPOSE_SEED))
    assert code == 0, out
    assert "y[0,0,0,0] = 3.1 = 1×0.1 (in 0) + 3×1 (in 1)" in out
    assert "y[0,2,0,0] = 750 = 5×10 (in 2) + 7×100 (in 3)" in out
    assert "W[c, j] belongs to input channel c's group g and feeds output channel" in " ".join(out.split())


def test_layout_limits_let_a_page_show_every_channel() -> None:
    case = next(
        c
        for c in all_cases(ROOT / "cases" / "tutorial" / "06_depthwise_separable.yaml")
        if c.name.endswith("1_depthwise")
    )
    result = run_case(case, load_implementation(None))
    terminal = build_explanation(result)
    assert terminal.input.hidden_groups == (2,)  # 4 groups of 3x3 grids: the terminal shows 0, 1 and the last
    page = build_explanation(result, layout_limits=(8, 8))
    assert [g.group for g in page.input.groups] == [0, 1, 2, 3] and not page.input.hidden_groups
    assert [b.label for g in page.weight.groups for b in g.blocks] == ["W[0,0]", "W[1,0]", "W[2,0]", "W[3,0]"]


def test_an_implementation_that_refuses_gets_no_column(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "refusing_conv.py").write_text(
        "def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):\n"
        "    raise ValueError('groups > 1 is not supported')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out = explain(
        capsys, str(ROOT / "cases" / "seed" / "groups3.yaml"), "--impl", "refusing_conv:conv2d", "--checks"
    )
    assert code == 0, out
    table = out.split("EVERY SIDE'S VALUE beside the sum")[1].split("\n\n")[0]
    assert re.search(r"^\s+element\s+torch\s+expected\s+sum\s+verdict$", table, re.MULTILINE), table
    assert "DIFFER" not in table and "groups > 1 is not supported" in out
    assert "y[0,2,0,0] = 650 = 5×10 (in 2) + 6×100 (in 3)" in out  # still explained, from torch's values


# ---------------------------------------------------------------------------------------------
# For learners: less noise (issue 16, item 6)


DEPTHWISE_24 = ROOT / "cases" / "regressions" / "pytorch_50042_depthwise24_stride2.yaml"


def test_repeated_group_lines_are_written_once_with_g(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    _, out = explain(capsys, str(DEPTHWISE_24), "--case", "regressions/pytorch_50042_depthwise24_stride2")
    groups = out.split("THE GROUPS")[1].split("CONNECTIVITY")[0]
    assert "group g: output channel g reads input channel g, for g = 0 … 23" in " ".join(groups.split())
    assert len(re.findall(r"^\s+group \d+:", groups, re.M)) == 0  # not 24 lines saying the same


@pytest.mark.parametrize("columns", [40, 80, 100])
def test_the_connectivity_matrix_fits_or_says_what_it_left_out(columns: int, capsys, monkeypatch) -> None:
    """Every row shown keeps its ■ (a cropped matrix used to cut outputs 19-23 off their inputs)."""
    monkeypatch.setenv("COLUMNS", str(columns))
    _, out = explain(capsys, str(DEPTHWISE_24), "--case", "regressions/pytorch_50042_depthwise24_stride2")
    matrix = out.split("CONNECTIVITY")[1].split("THE INPUT")[0]
    header = next(line for line in matrix.splitlines() if line.lstrip().startswith("input channel"))
    columns_shown = header.split("input channel")[1].split()
    rows = [line for line in matrix.splitlines() if re.match(r"\s+out \d+", line)]
    for row in rows:
        o = int(re.match(r"\s+out (\d+)", row).group(1))
        cells = row.split(f"group {o}", 1)[1].split()
        assert len(cells) == len(columns_shown)
        assert [c for c, cell in zip(columns_shown, cells, strict=True) if cell == "■"] == [str(o)]
    assert max(len(line) for line in matrix.splitlines()) <= columns
    if len(rows) < 24:
        assert "left out of both axes to fit" in " ".join(matrix.split())
        assert rows[-1].lstrip().startswith("out 23")  # the last group is always there


def test_a_one_by_one_layer_gets_no_general_formula_and_a_kernel_gets_its_windows(capsys) -> None:
    _, one = explain(capsys, str(ROOT / "cases" / "tutorial" / "02_grouped.yaml"))
    assert "y[n, o, i]" not in one and "i·s + k·d − p" not in one
    _, strided = explain(capsys, str(ROOT / "cases" / "tutorial" / "11_grouped_stride2.yaml"))
    assert "y[n, o, i]" in strided
    flat = " ".join(strided.split())
    for index, window in [
        ("0,0,0,0", "rows 0…2, columns 0…2"),
        ("0,0,0,1", "rows 0…2, columns 2…4"),
        ("0,1,1,0", "rows 2…4, columns 0…2"),
        ("0,1,1,1", "rows 2…4, columns 2…4"),
    ]:
        assert re.search(rf"y\[{index}\] = \d+ = .*? reads {window} of its group's input channels", flat), index
    _, padded = explain(capsys, str(ROOT / "cases" / "tutorial" / "08_predict.yaml"), "--case", "4_kernel", "--reveal")
    assert "reads rows 0…0, columns -1…1 of its group's input channels (column -1 is padding)" in " ".join(
        padded.split()
    )


def test_a_transposed_convolution_is_also_shown_as_its_scatter(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    _, out = explain(capsys, str(ROOT / "cases" / "tutorial" / "12_conv_transpose_stride2.yaml"))
    assert "x[0,0,1] = 10 → output channel 0, positions 2…4: 10×[1, 2, 3] = [10, 20, 30]" in out
    assert "x[0,2,2] = 200 → output channel 1, positions 4…6: 200×[1, 2, 3] = [200, 400, 600]" in out
    # an element where two windows overlap is written out, with both contributions
    assert "(where windows of neighbouring inputs overlap: their contributions add)" in out
    overlap = out.split("y[0,0,2] = 13013 = 13 (in 0) + 13000 (in 1)")[1].split("y[0,1,")[0]
    assert re.search(r"3×1\s+tap 2: W\[0,0,2\]·x\[0,0,0\]", overlap), overlap
    assert re.search(r"1×10\s+tap 0: W\[0,0,0\]·x\[0,0,1\]", overlap), overlap


def test_an_exercise_prints_question_marks_until_reveal(capsys, tmp_path: Path) -> None:
    path = ROOT / "cases" / "tutorial" / "08_predict.yaml"
    _, hidden = explain(capsys, str(path), "--case", "3_multiplier")
    assert re.findall(r"y\[0,\d,0,0\] = \?", hidden) == [f"y[0,{o},0,0] = ?" for o in range(6)]
    for giveaway in ("(in 1)", "→out", "read input channel", "CONNECTIVITY", "3c … 3c+2", "30 ="):
        assert giveaway not in hidden, giveaway
    assert "--reveal" in hidden
    _, shown = explain(capsys, str(path), "--case", "3_multiplier", "--reveal")
    assert "y[0,3,0,0] = 40 = 4×10 (in 1)" in shown and "= ?" not in shown
    # a learner's prediction written as `expected` is marked, without giving the answer away
    text = path.read_text(encoding="utf-8")
    doc = next(d for d in text.split("\n---\n") if "name: tutorial/08_predict/1_two_groups" in d)
    placeholder = "# expected: {values: [?, ?], shape: [1, 2, 1, 1]}"
    answer = torch_output(next(c for c in load_cases([path]) if getattr(c, "name", "").endswith("1_two_groups")))
    right, wrong = (f"{v:g}" for v in (answer.reshape(-1)[0], answer.reshape(-1)[1] + 1))
    doc = doc.replace(placeholder, f"expected: {{values: [{right}, {wrong}], shape: [1, 2, 1, 1]}}")
    _, marked = explain(capsys, str(write_case(tmp_path, doc)))
    assert f"y[0,0,0,0] = ?   (you wrote {right}: right)" in marked
    assert f"y[0,1,0,0] = ?   (you wrote {wrong}: not right)" in marked
    assert f"{answer.reshape(-1)[1]:g}" not in marked.split("OUTPUT ELEMENTS")[1]  # the answer stays hidden
    assert "1 prediction of 2 not right; --reveal writes out their sums." in " ".join(marked.split())


def test_torchs_warning_is_a_short_note_not_a_screenful(tmp_path: Path) -> None:
    """In a fresh process (torch warns once per process): the padding='same' even-kernel warning."""
    import subprocess
    import sys

    path = write_case(
        tmp_path,
        "conv: {in_channels: 4, out_channels: 4, kernel_size: [2, 4], padding: same, groups: 2}\n"
        "input: {random: {seed: 1}, shape: [1, 4, 4, 6]}\n",
    )
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "explain", str(path)],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "COLUMNS": "80"},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "UserWarning" not in done.stderr and "Convolution.cpp" not in done.stdout + done.stderr
    note = next(part for part in done.stdout.split("\n\n") if part.startswith("torch warned:"))
    assert "padding='same' with even kernel lengths" in note and len(note.splitlines()) <= 2, note


@pytest.mark.parametrize("argv", WIDTH_CASES, ids=lambda a: a[-1].split("/")[-1])
def test_notes_are_short_and_cite_only_values_written_out(argv: list[str], capsys) -> None:
    _, out = explain(capsys, *argv, "--checks")
    shown = {m.group(1) for m in re.finditer(r"y\[[\d,]+\] = (\S+) = ", out)}
    for part in out.split("\n\n"):
        if part.startswith("Digits carry"):
            assert len(part.splitlines()) <= 3, part
        if part.startswith("Why an error"):
            near = re.search(r"near (\S+) neighbouring", " ".join(part.split()))
            assert near and near.group(1) in shown, (near, shown)
