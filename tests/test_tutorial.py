"""The tutorial's claims, checked: steps that feed each other really do, the depthwise-separable pair
really is a restricted dense convolution with the saving its description states, stacked groups
really stay apart until a 1×1 or a shuffle, and the predict-then-check exercises answer a wrong
prediction with the element's sum.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from conformance.cases.loader import load_cases
from conformance.cases.schema import Case
from conformance.running.implementations import load_implementation
from conformance.running.runner import make_tensors, run_case
from conformance.teaching.explain import build_explanation
from conformance.teaching.explain_text import failure_explanation
from reference_impl import conv2d
from tests.helpers import torch_conv2d, write_case

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "cases" / "tutorial"
CASES = {case.name: case for case in load_cases([TUTORIAL]) if isinstance(case, Case)}
FEEDS = re.compile(r"Its input is the output of (tutorial/\S+?)\.?\s")


def torch_output(case: Case) -> np.ndarray:
    tensors = make_tensors(case)
    conv = case.conv
    return torch_conv2d(
        tensors.input,
        tensors.weight,
        tensors.bias,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.padding_mode,
    )


def chained() -> list[tuple[str, str]]:
    """(case, the case whose output it takes as input), as the descriptions say."""
    pairs = []
    for name, case in CASES.items():
        match = FEEDS.search(case.description + " ")
        if match:
            pairs.append((name, match.group(1)))
    return pairs


def test_the_new_steps_are_there_and_chained() -> None:
    names = set(CASES)
    assert {
        "tutorial/06_separable/1_depthwise",
        "tutorial/06_separable/2_pointwise",
        "tutorial/06_separable/3_dense",
        "tutorial/07_stacked/5_grouped_after_shuffle",
        "tutorial/08_predict/4_kernel_and_padding",
    } <= names
    assert len(chained()) == 5  # 06: 1 -> 2; 07: 1 -> 2 -> 3, 2 -> 4 -> 5


@pytest.mark.parametrize("pair", chained(), ids=lambda p: p[0])
def test_a_step_takes_exactly_the_output_of_the_step_it_names(pair: tuple[str, str]) -> None:
    name, source = pair
    assert source in CASES, f"{name} names {source}, which is not a tutorial case"
    np.testing.assert_array_equal(make_tensors(CASES[name]).input, torch_output(CASES[source]))


def _through(names: list[str], x: np.ndarray) -> np.ndarray:
    """x (N, C, H, W) through the layers of the named cases in turn, with their weights."""
    for name in names:
        case = CASES[name]
        tensors = make_tensors(case)
        conv = case.conv
        x = conv2d(x, tensors.weight, tensors.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    return x


def _depends(names: list[str], channels: int) -> np.ndarray:
    """(out, in) bool: does final output channel o change with input channel c? One-hot inputs."""
    reads = []
    for c in range(channels):
        x = np.zeros((1, channels, 1, 1))
        x[0, c] = 1.0
        reads.append(_through(names, x)[0, :, 0, 0] != 0)
    return np.array(reads).T


def test_stacked_grouped_layers_never_mix_groups_until_a_1x1_or_a_shuffle_does() -> None:
    stacked = ["tutorial/07_stacked/1_grouped", "tutorial/07_stacked/2_grouped_again"]
    block_diagonal = np.kron(np.eye(2, dtype=bool), np.ones((2, 2), dtype=bool))
    np.testing.assert_array_equal(_depends(stacked, 4), block_diagonal)
    full = np.ones((4, 4), dtype=bool)
    np.testing.assert_array_equal(_depends(stacked + ["tutorial/07_stacked/3_pointwise_mixes"], 4), full)
    shuffled = stacked + ["tutorial/07_stacked/4_shuffle", "tutorial/07_stacked/5_grouped_after_shuffle"]
    np.testing.assert_array_equal(_depends(shuffled, 4), full)
    # without the shuffle, the same third grouped layer would still keep the groups apart
    np.testing.assert_array_equal(
        _depends(stacked + ["tutorial/07_stacked/5_grouped_after_shuffle"], 4), block_diagonal
    )


def test_the_separable_pair_is_the_dense_layer_with_restricted_kernels_and_the_stated_saving() -> None:
    depthwise, pointwise, dense = (
        CASES[f"tutorial/06_separable/{n}"] for n in ("1_depthwise", "2_pointwise", "3_dense")
    )
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5))  # any input, not only the tutorial's
    separable = _through([depthwise.name, pointwise.name], x)
    np.testing.assert_allclose(separable, _through([dense.name], x), rtol=1e-12, atol=1e-12)
    costs = [
        build_explanation(run_case(case, load_implementation(None))).cost for case in (depthwise, pointwise, dense)
    ]
    assert costs[0].weights + costs[1].weights == 44 and costs[2].weights == 72
    assert costs[0].multiply_adds + costs[1].multiply_adds == 44 and costs[2].multiply_adds == 72
    # the 512-channel numbers of the description: k²·C_in + C_in·C_out against k²·C_in·C_out
    k, c = 3, 512
    assert (k * k * c, c * c, k * k * c + c * c, k * k * c * c) == (4608, 262144, 266752, 2359296)
    assert round(k * k * c * c / (k * k * c + c * c), 1) == 8.8
    words = " ".join(pointwise.description.split())
    assert "4,608 + 262,144 = 266,752" in words and "2,359,296, 8.8 times fewer" in words


EXERCISES = [case for name, case in CASES.items() if name.startswith("tutorial/08_predict/")]


@pytest.mark.parametrize("case", EXERCISES, ids=lambda c: c.name.rsplit("/", 1)[-1])
def test_an_exercise_ships_without_its_answer_and_checks_a_prediction(case: Case, tmp_path: Path) -> None:
    assert case.expected is None and "exercise" in case.tags
    text = (TUTORIAL / "08_predict.yaml").read_text(encoding="utf-8")
    document = next(doc for doc in text.split("\n---\n") if f"name: {case.name}\n" in doc)
    placeholder = re.search(r"^# expected: \{values: \[([?, ]+)\], shape: (\[[\d, ]+\])\}", document, re.MULTILINE)
    assert placeholder, "each exercise shows the line to fill in"
    answer = torch_output(case)
    assert placeholder.group(1).count(
        "?"
    ) == answer.size and f"[{', '.join(map(str, answer.shape))}]" == placeholder.group(2)

    def predict(values: np.ndarray) -> object:
        """What a learner does: uncomment the expected line and write the prediction into it."""
        filled = document.replace(
            placeholder.group(0), f"expected: {{values: {values.reshape(-1).tolist()}, shape: {placeholder.group(2)}}}"
        )
        return run_case(load_cases([write_case(tmp_path, filled)])[0], load_implementation(None))

    right = predict(answer)
    assert right.status == "passed" and failure_explanation(right) == []
    wrong = answer.copy()
    wrong.reshape(-1)[-1] += 1  # a slip in the last element
    result = predict(wrong)
    assert result.status == "failed"
    lines = failure_explanation(result, width=80)
    index = ",".join(str(i) for i in np.unravel_index(answer.size - 1, answer.shape))
    assert lines[0].strip().startswith(f"the worst element explained: expected y[{index}] = ")
    assert re.match(rf"^\s+y\[{index}\] = {answer.reshape(-1)[-1]:g} = ", lines[1]), lines


def test_every_step_header_counts_the_whole_path() -> None:
    files = sorted(TUTORIAL.glob("*.yaml"))
    for number, path in enumerate(files, start=1):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith(f"# Learning path, step {number} of {len(files)}"), (path.name, first)


# multiplication written with an x (1x9, 2 x 4, g*out): descriptions write × (sizes such as 3x3 stay)
TIMES_WITH_X = re.compile(r"[\d\])]x[\d(W](?=\S*\s*[+=])|(?<=[=+]\s)[\d.]+x[\d(W]|(?<=[\w)\]]) x (?=[\w(\[])|\w\*\w")


@pytest.mark.parametrize("path", sorted((ROOT / "cases").rglob("*.yaml")), ids=lambda p: str(p.relative_to(ROOT)))
def test_descriptions_write_multiplication_as_times(path: Path) -> None:
    for case in load_cases([path]):
        if isinstance(case, Case):  # a broken case has no description; its own test reports it
            assert not TIMES_WITH_X.search(case.description), (case.name, TIMES_WITH_X.search(case.description))


def test_the_stride_2_step_reads_one_window_per_output_and_names_its_centre() -> None:
    case = CASES["tutorial/11_grouped_stride2"]
    x = make_tensors(case).input[0]
    codes = np.add.outer(10 * np.arange(5), np.arange(5))
    np.testing.assert_array_equal(x[0], codes)  # channel 0 holds 10·row + column, as the description says
    np.testing.assert_array_equal(x[1], 1000 * codes)
    y = torch_output(case)[0]
    centres = [[11, 13], [31, 33]]  # stride 2: windows start at rows/columns 0 and 2
    np.testing.assert_array_equal(y[0], 9 * 1001 * np.array(centres))
    np.testing.assert_array_equal(y[1], np.full((2, 2), 9009))
    words = " ".join(case.description.split())
    assert "99099, then 117117, 279279 and 297297" in words and "9×1 + 9×1000 = 9009" in words


def test_the_transposed_stride_2_step_scatters_overlapping_windows() -> None:
    case = CASES["tutorial/12_conv_transpose_stride2"]
    tensors = make_tensors(case)
    x, w = tensors.input[0], tensors.weight
    y = np.zeros((2, 7))
    for c in range(4):  # scatter by hand: input position q writes x·W[c, 0] at 2q … 2q + 2
        for q in range(3):
            y[c // 2, 2 * q : 2 * q + 3] += x[c, q] * w[c, 0]
    assert tensors.expected is not None
    np.testing.assert_array_equal(y, tensors.expected[0])
    assert y[0].tolist() == [1001, 2002, 13013, 20020, 130130, 200200, 300300]
    assert "(3 − 1) × 2 + 3 = 7" in " ".join(case.description.split())
