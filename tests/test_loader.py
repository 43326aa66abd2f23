"""Case loading: the format, and a clear error for every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conformance.cases.errors import CaseError
from conformance.cases.loader import load_cases, load_file
from conformance.cases.tensors import MAX_TENSOR_ELEMENTS
from conformance.running.runner import make_tensors
from tests.helpers import assert_is_case, load_one, write_case

SEED = """
name: seed/groups3
conv: {in_channels: 6, out_channels: 6, kernel_size: 1, groups: 3, bias: false}
input: {values: [0.1, 1, 10, 100, 1000, 10000], shape: [1, 6, 1, 1]}
weight: {arange: {start: 1}}
expected: {values: [2.1, 4.3, 650, 870, 109000, 131000], shape: [1, 6, 1, 1]}
"""


def problems(item) -> list[str]:
    assert isinstance(item, CaseError), f"expected a CaseError, got {item!r}"
    return [f"{p.line}:{'.'.join(map(str, p.key_path))}: {p.message}" for p in item.problems]


def one_problem(tmp_path: Path, text: str) -> str:
    found = problems(load_one(tmp_path, text))
    assert len(found) == 1, found
    return found[0]


def test_seed_case_loads_with_derived_shapes(tmp_path: Path) -> None:
    case = assert_is_case(load_one(tmp_path, SEED))
    tensors = make_tensors(case)
    assert tensors.weight.shape == (6, 2, 1, 1)  # (out_channels, in_channels/groups, kH, kW)
    assert tensors.weight.ravel().tolist() == list(range(1, 13))
    assert tensors.input.dtype == np.float32 and tensors.bias is None
    assert case.rtol_atol == (1.3e-6, 1e-5)


def test_default_name_is_the_path_under_cases(tmp_path: Path) -> None:
    path = write_case(
        tmp_path,
        "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\ninput: {fill: 1, shape: [1, 1, 1, 1]}\n",
        name="sub/dir/my_case.yaml",
    )
    assert assert_is_case(load_file(path)[0]).name == "sub/dir/my_case"


def test_numbers_without_a_dot_are_numbers(tmp_path: Path) -> None:
    case = assert_is_case(
        load_one(
            tmp_path,
            """
        conv: {in_channels: 1, out_channels: 1, kernel_size: 1}
        input: {values: [1e5, 1e-1, -2E+2, .5e1, .nan, -.inf], shape: [1, 1, 2, 3]}
        tolerance: {rtol: 1e-3, atol: 1e-6}
    """,
        )
    )
    values = make_tensors(case).input.astype(np.float64).ravel()
    np.testing.assert_allclose(values[:4], [1e5, 0.1, -200, 5], rtol=1e-6)
    assert np.isnan(values[4]) and values[5] == -np.inf
    assert case.rtol_atol == (1e-3, 1e-6)


def test_bare_list_is_values_and_nested_lists_infer_the_shape(tmp_path: Path) -> None:
    case = assert_is_case(
        load_one(
            tmp_path,
            """
        conv: {in_channels: 1, out_channels: 2, kernel_size: 1}
        input: [[[[1, 2], [3, 4]]]]
        weight: [5, 6]
        bias: [0.5, -0.5]
    """,
        )
    )
    tensors = make_tensors(case)
    assert tensors.input.shape == (1, 1, 2, 2) and tensors.weight.shape == (2, 1, 1, 1)
    assert tensors.bias.tolist() == [0.5, -0.5]


def test_random_tensors_are_reproducible_and_differ_by_role(tmp_path: Path) -> None:
    text = """
        conv: {in_channels: 2, out_channels: 2, kernel_size: 3}
        input: {random: {}, shape: [1, 2, 4, 4]}
    """
    first, second = (make_tensors(assert_is_case(load_one(tmp_path, text))) for _ in range(2))
    np.testing.assert_array_equal(first.input, second.input)
    np.testing.assert_array_equal(first.weight, second.weight)
    assert not np.array_equal(first.input.ravel()[:18], first.weight.ravel())
    assert first.input.min() >= -1 and first.input.max() < 1


def test_random_with_an_explicit_seed_is_numpy_default_rng(tmp_path: Path) -> None:
    case = assert_is_case(
        load_one(
            tmp_path,
            """
        conv: {in_channels: 1, out_channels: 1, kernel_size: 1}
        input: {random: {seed: 3, distribution: normal}, shape: [1, 1, 2, 2]}
    """,
        )
    )
    expected = np.random.default_rng(3).normal(0, 1, 4).astype(np.float32).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(make_tensors(case).input, expected)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    message = one_problem(
        tmp_path,
        """
        conv: {in_channels: 1, out_channels: 1, kernel_size: 1}
        input: [1, 2
    """,
    )
    assert message.startswith("3:") and "YAML syntax error" in message


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    message = one_problem(
        tmp_path,
        """
        conv: {in_channels: 6, out_channels: 6, kernel_size: 1, group: 3}
        input: {fill: 1, shape: [1, 6, 1, 1]}
    """,
    )
    assert message.startswith("1:conv.group:") and "did you mean 'groups'?" in message


@pytest.mark.parametrize(
    "text,where,words",
    [
        (
            "conv: {in_channels: six, out_channels: 6, kernel_size: 1}\ninput: {fill: 1, shape: [1, 6, 1, 1]}",
            "conv.in_channels",
            "expected an integer, got str 'six'",
        ),
        (
            "conv: {in_channels: 6, out_channels: 6, kernel_size: [1, 2, 3]}\ninput: {fill: 1, shape: [1, 6, 1, 1]}",
            "conv.kernel_size",
            "pair [h, w]",
        ),
        (
            "conv: {in_channels: 6, out_channels: 6, kernel_size: 1, bias: 1}\ninput: {fill: 1, shape: [1, 6, 1, 1]}",
            "conv.bias",
            "expected true or false",
        ),
        (
            "conv: {in_channels: 6, out_channels: 6, kernel_size: 1, padding_mode: reflekt}\n"
            "input: {fill: 1, shape: [1, 6, 1, 1]}",
            "conv.padding_mode",
            "did you mean 'reflect'?",
        ),
        (
            "conv: {in_channels: 6, out_channels: 6, kernel_size: 1}\n"
            "input: {fill: 1, shape: [1, 6, 1, 1]}\ndtype: float8",
            "dtype",
            "expected one of float32, float64",
        ),
        (
            "conv: {in_channels: 6, out_channels: 6, kernel_size: 1}\ninput: {fill: 1, shape: [1, -6, 1, 1]}",
            "input.shape",
            "non-negative integers",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\n"
            "input: {values: [1, 2, 3, 4, 5], shape: [1, 1, 2, 3]}",
            "input.values",
            "5 values do not fill shape [1, 1, 2, 3] (6 elements)",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\n"
            "input: {values: [1, two, 3], shape: [1, 1, 1, 3]}",
            "input.values.1",
            "expected a number, got str 'two'",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\ninput: {values: [1, nan], shape: [1, 1, 1, 2]}",
            "input.values.1",
            "write .nan",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\ninput: {values: [1, true], shape: [1, 1, 1, 2]}",
            "input.values.1",
            "expected a number, got bool",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\ninput: [[[[1, 2], [3]]]]",
            "input.values.0.0.1",
            "ragged nesting",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\n"
            "input: {fill: 1, arange: {}, shape: [1, 1, 1, 1]}",
            "input",
            "found arange and fill",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\ninput: {shape: [1, 1, 1, 1]}",
            "input",
            "found none",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\ninput: {fill: 1}",
            "input",
            "a generator needs shape",
        ),
        (
            "conv: {in_channels: 6, out_channels: 6, kernel_size: 1, groups: 3}\n"
            "input: {fill: 1, shape: [1, 6, 1, 1]}\n"
            "weight: {fill: 1, shape: [6, 6, 1, 1]}",
            "weight",
            "expected (out_channels, in_channels/groups, kH, kW) = [6, 2, 1, 1]",
        ),
        (
            "conv: {in_channels: 6, out_channels: 6, kernel_size: 1, groups: 3}\n"
            "input: {fill: 1, shape: [1, 6, 1, 1]}\n"
            "weight: [1, 2, 3]",
            "weight",
            "3 values do not fill the layer's shape [6, 2, 1, 1]",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1, bias: false}\n"
            "input: {fill: 1, shape: [1, 1, 1, 1]}\nbias: [1]",
            "bias",
            "conv.bias is false",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\ninput: {fill: 1, shape: [4096, 1, 4096, 2]}",
            "input.shape",
            f"over the limit of {MAX_TENSOR_ELEMENTS:,}",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1, padding: 3000}\n"
            "input: {fill: 1, shape: [4, 1, 1, 1]}",
            "conv",
            "the output would have",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\n"
            "input: {random: {distribution: cauchy}, shape: [1, 1, 1, 1]}",
            "input.random.distribution",
            "uniform, normal, integers",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\n"
            "input: {fill: 1, shape: [1, 1, 1, 1]}\nexpect_error: {match: '(['}",
            "expect_error.match",
            "not a valid regular expression",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\n"
            "input: {fill: 1, shape: [1, 1, 1, 1]}\ntags: [has space]",
            "tags.0",
            "pytest mark",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\n"
            "input: {fill: 1, shape: [1, 1, 1, 1]}\ntolerance: {rtol: -1}",
            "tolerance.rtol",
            ">= 0",
        ),
        (
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\n"
            "conv: {in_channels: 2}\ninput: {fill: 1, shape: [1, 1, 1, 1]}",
            "conv",
            "duplicate key",
        ),
        (
            "conv: {in_channels: 1, kernel_size: 1}\ninput: {fill: 1, shape: [1, 1, 1, 1]}",
            "conv.out_channels",
            "missing required key 'out_channels'",
        ),
        ("input: {fill: 1, shape: [1, 1, 1, 1]}", "conv", "missing required key 'conv'"),
        ("- just a list", "", "a case must be a mapping"),
    ],
)
def test_bad_input_is_named_precisely(tmp_path: Path, text: str, where: str, words: str) -> None:
    found = problems(load_one(tmp_path, text))
    assert any(f":{where}: " in p and words in p for p in found), found


def test_all_problems_of_a_document_are_reported_together(tmp_path: Path) -> None:
    found = problems(
        load_one(
            tmp_path,
            """
        conv: {in_channels: 6, out_channels: 6, kernel_size: 1, group: 3}
        input: {values: [1, x], shape: [1, 1, 1, 2]}
        dtype: int8
    """,
        )
    )
    assert len(found) == 3, found


def test_python_tags_are_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    message = one_problem(
        tmp_path,
        f"""
        conv: !!python/object/apply:os.system ["touch {marker}"]
        input: {{fill: 1, shape: [1, 1, 1, 1]}}
    """,
    )
    assert "is not allowed" in message and not marker.exists()


def test_a_broken_document_does_not_hide_the_others(tmp_path: Path) -> None:
    path = write_case(
        tmp_path,
        """
        name: first
        conv: {in_channels: 1, out_channels: 1, kernel_size: 1}
        input: {fill: 1, shape: [1, 1, 1, 1]}
        ---
        name: broken
        conv: {in_channels: 1, out_channels: 1, kernel_size: one}
        input: {fill: 1, shape: [1, 1, 1, 1]}
        ---
        conv: {in_channels: 1, out_channels: 1, kernel_size: 1}
        input: {fill: 1, shape: [1, 1, 1, 1]}
    """,
    )
    first, broken, third = load_file(path)
    assert assert_is_case(first).name == "first"
    assert isinstance(broken, CaseError) and broken.case_name == "broken"
    assert broken.problems[0].line == 6
    assert assert_is_case(third).name == "case#2"


def test_a_syntax_error_keeps_the_documents_before_it(tmp_path: Path) -> None:
    path = write_case(
        tmp_path,
        """
        conv: {in_channels: 1, out_channels: 1, kernel_size: 1}
        input: {fill: 1, shape: [1, 1, 1, 1]}
        ---
        conv: [unclosed
    """,
    )
    items = load_file(path)
    assert_is_case(items[0])
    assert isinstance(items[-1], CaseError) and "YAML syntax error" in str(items[-1])


def test_duplicate_names_across_files_are_an_error(tmp_path: Path) -> None:
    body = (
        "name: same\nconv: {in_channels: 1, out_channels: 1, kernel_size: 1}\ninput: {fill: 1, shape: [1, 1, 1, 1]}\n"
    )
    write_case(tmp_path, body, "a.yaml")
    write_case(tmp_path, body, "b.yaml")
    first, second = load_cases([tmp_path / "cases"])
    assert_is_case(first)
    assert "duplicate case name 'same'" in str(second)


def test_error_message_shows_a_snippet(tmp_path: Path) -> None:
    error = load_one(
        tmp_path, "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\ninput: {fill: x, shape: [1, 1, 1, 1]}\n"
    )
    text = error.format(snippets=True)
    assert "case.yaml:2: input.fill: expected a number" in text
    assert ">    2 | input: {fill: x" in text


def test_invalid_layers_are_accepted_when_an_error_is_expected(tmp_path: Path) -> None:
    case = assert_is_case(
        load_one(
            tmp_path,
            """
        conv: {in_channels: 5, out_channels: 4, kernel_size: 1, groups: 2, padding_mode: mirror}
        input: {fill: 1, shape: [1, 5, 2, 2]}
        expect_error: {match: divisible}
    """,
        )
    )
    assert case.expect_error.match == "divisible"
    assert make_tensors(case).weight.shape == (4, 2, 1, 1)
