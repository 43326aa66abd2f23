"""The six ops in the harness: the case format (conv.type and each op's keys), the torch oracle,
the error bound, the extra checks and the gradient reports for Conv1d/3d and ConvTranspose1d/2d/3d."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from conformance.cases.errors import CaseError
from conformance.cases.loader import load_file
from conformance.cases.schema import CONV_TYPES, ConvConfig, conv_output_shape
from conformance.judging.tolerance import forward_bound, op_name
from conformance.reporting.indices import describe_gradient_index
from conformance.running.implementations import load_implementation
from conformance.running.runner import PASSED, make_tensors, run_case
from conformance.running.torch_oracle import (
    build_module,
    oracle_call,
    oracle_notes_shown,
    torch_forward,
    torch_forward_variant,
)
from tests.helpers import assert_is_case, load_one

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = load_implementation(None)


def problems(item) -> list[str]:
    assert isinstance(item, CaseError), f"expected the case to be refused, got {item}"
    return [f"{'.'.join(map(str, p.key_path))}: {p.message}" for p in item.problems]


def bug(name: str):
    return load_implementation(importlib.import_module(f"tests.plugins.nd_bugs.{name}"))


# --- the case format ---------------------------------------------------------------------------


def test_the_weight_shape_and_arguments_follow_the_op() -> None:
    conv = ConvConfig(4, 6, (3, 1, 2), stride=2, output_padding=(1, 0, 1), groups=2, type="ConvTranspose3d")
    assert conv.weight_shape() == (4, 3, 3, 1, 2)  # (in, out/groups, *k): input channels first
    assert conv.weight_layout == "(in_channels, out_channels/groups, kD, kH, kW)"
    assert list(conv.functional_kwargs()) == ["stride", "padding", "output_padding", "groups", "dilation"]
    assert ConvConfig(4, 6, 3, groups=2, type="Conv1d").weight_shape() == (6, 2, 3)
    assert list(ConvConfig(4, 6, 3, type="Conv1d", padding_mode="reflect").functional_kwargs()) == [
        "stride",
        "padding",
        "dilation",
        "groups",
        "padding_mode",
    ]
    for op in CONV_TYPES:  # torch_kwargs builds the module itself, and its weight has our shape
        conv = ConvConfig(4, 6, 3, groups=2, type=op)
        assert tuple(getattr(torch.nn, op)(**conv.torch_kwargs()).weight.shape) == conv.weight_shape()


def test_a_case_of_each_op_loads_with_its_keys(tmp_path: Path) -> None:
    case = assert_is_case(
        load_one(
            tmp_path,
            """
        conv: {type: ConvTranspose1d, in_channels: 4, out_channels: 2, kernel_size: [3], stride: [2],
               output_padding: 1, groups: 2}
        input: {random: {}, shape: [4, 5]}
    """,
        )
    )
    assert (case.conv.functional_name, case.conv.spatial_dims, case.conv.transposed) == ("conv_transpose1d", 1, True)
    assert make_tensors(case).weight.shape == (4, 1, 3)
    assert run_case(case, REFERENCE).status == PASSED


@pytest.mark.parametrize(
    "text,where,words",
    [
        (
            "conv: {in_channels: 2, out_channels: 2, kernel_size: 1, output_padding: 1}",
            "conv.output_padding",
            "Conv2d takes no 'output_padding' (only ConvTranspose1d/2d/3d do)",
        ),
        (
            "conv: {type: ConvTranspose2d, in_channels: 2, out_channels: 2, kernel_size: 1, output_paddin: 1}",
            "conv.output_paddin",
            "did you mean 'output_padding'?",
        ),
        (
            "conv: {type: Conv3D, in_channels: 2, out_channels: 2, kernel_size: 1}",
            "conv.type",
            "did you mean 'Conv3d'?",
        ),
        (
            "conv: {type: Conv3d, in_channels: 2, out_channels: 2, kernel_size: [1, 2]}",
            "conv.kernel_size",
            "a list [d, h, w] of 3 integers, got list [1, 2]",
        ),
        (
            "conv: {type: Conv1d, in_channels: 2, out_channels: 2, kernel_size: 1, stride: [1, 1]}",
            "conv.stride",
            "a list [l] of 1 integer",
        ),
        (
            "conv: {type: ConvTranspose2d, in_channels: 2, out_channels: 2, kernel_size: 1, padding: same}",
            "conv.padding",
            "ConvTranspose2d takes no string padding",
        ),
        (
            "conv: {type: ConvTranspose2d, in_channels: 4, out_channels: 6, kernel_size: 1, groups: 2}\n"
            "weight: {fill: 1, shape: [6, 2, 1, 1]}",
            "weight",
            "expected (in_channels, out_channels/groups, kH, kW) = [4, 3, 1, 1] for ConvTranspose2d",
        ),
    ],
)
def test_each_op_refuses_keys_and_shapes_it_does_not_take(tmp_path: Path, text: str, where: str, words: str) -> None:
    found = problems(load_one(tmp_path, text + "\ninput: {fill: 1, shape: [1, 2, 1, 1]}\n"))
    assert any(p.startswith(f"{where}: ") and words in p for p in found), found


def test_a_padding_mode_torch_refuses_for_transposed_ops_is_left_to_torch(tmp_path: Path) -> None:
    """The refusal is torch's and the implementation's, so an error case can test it."""
    case = assert_is_case(
        load_one(
            tmp_path,
            """
        conv: {type: ConvTranspose3d, in_channels: 2, out_channels: 2, kernel_size: 1, padding_mode: circular}
        input: {fill: 1, shape: [1, 2, 2, 2, 2]}
        expect_error: {match: 'Only "zeros" padding mode is supported for ConvTranspose3d'}
    """,
        )
    )
    assert case.conv.functional_kwargs()["padding_mode"] == "circular"
    assert run_case(case, REFERENCE).status == PASSED  # both refused, with torch's words


LAYERS = [  # (conv, input shape): every op, odd strides, paddings, dilations and output paddings
    (ConvConfig(4, 6, 3, stride=2, padding=1, dilation=2, groups=2, type="Conv1d"), (2, 4, 11)),
    (ConvConfig(4, 6, 4, padding="same", groups=2, type="Conv1d"), (4, 9)),
    (ConvConfig(2, 4, (3, 2), stride=(2, 1), padding=(1, 0), type="Conv2d"), (1, 2, 7, 5)),
    (ConvConfig(3, 3, (1, 3, 2), stride=(1, 2, 3), dilation=(2, 1, 1), groups=3, type="Conv3d"), (1, 3, 5, 6, 7)),
    (ConvConfig(4, 2, 3, stride=3, padding=1, output_padding=2, groups=2, type="ConvTranspose1d"), (1, 4, 5)),
    (
        ConvConfig(
            4,
            6,
            (3, 2),
            stride=(2, 3),
            padding=(1, 0),
            output_padding=(1, 2),
            dilation=(1, 2),
            groups=2,
            type="ConvTranspose2d",
        ),
        (4, 3, 4),
    ),
    (ConvConfig(2, 2, (2, 3, 1), stride=(2, 1, 3), output_padding=(1, 0, 2), type="ConvTranspose3d"), (1, 2, 2, 3, 2)),
]


@pytest.mark.parametrize("conv,input_shape", LAYERS)
def test_output_shapes_agree_with_torch(conv: ConvConfig, input_shape: tuple) -> None:
    module = getattr(torch.nn, conv.type)(**conv.torch_kwargs())
    with torch.no_grad():
        torch_shape = tuple(module(torch.ones(input_shape)).shape)
    assert conv_output_shape(conv, input_shape) == torch_shape


def test_output_shape_refuses_what_torch_refuses() -> None:
    with pytest.raises(ValueError, match="output padding must be smaller"):
        conv_output_shape(ConvConfig(2, 2, 3, stride=2, output_padding=2, type="ConvTranspose1d"), (1, 2, 4))
    with pytest.raises(ValueError, match="3 or 4 dimensions"):
        conv_output_shape(ConvConfig(2, 2, 3, type="Conv2d"), (1, 2, 4, 4, 4))
    with pytest.raises(ValueError, match="reflect padding 3 does not fit"):
        conv_output_shape(ConvConfig(2, 2, 1, padding=3, padding_mode="reflect", type="Conv1d"), (1, 2, 3))


# --- the torch oracle and the error bound ------------------------------------------------------


def test_the_oracle_is_the_cases_torch_module_and_the_seed_shows_the_transposed_layout() -> None:
    (case,) = load_file(ROOT / "cases/seed/convtranspose2d_groups3.yaml")
    tensors = make_tensors(case)
    assert type(build_module(case, tensors.weight, None)).__mro__[1] is torch.nn.ConvTranspose2d
    output = torch_forward(case, tensors.input, tensors.weight, None).ravel()
    np.testing.assert_allclose(output, [3.1, 4.2, 750, 860, 119000, 130000], rtol=1e-6)
    # y0 = x0*W[0,0] + x1*W[1,0]: rows of the weight are input channels (Conv2d would give 2.1)
    assert np.isclose(output[0], 0.1 * tensors.weight[0, 0, 0, 0] + 1 * tensors.weight[1, 0, 0, 0])


def test_torch_s_note_on_even_same_padding_is_kept_off_the_terminal_and_other_warnings_show() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with oracle_call():
            warnings.warn(
                "Using padding='same' with even kernel lengths and odd dilation may require a zero-padded copy "
                "of the input be created (Triggered internally at Convolution.cpp:1101.)",
                UserWarning,
                stacklevel=1,
            )
            warnings.warn("anything else torch says", UserWarning, stacklevel=1)
        warnings.warn("Using padding='same' with even kernel lengths and odd dilation ... outside", stacklevel=1)
    assert [str(warning.message) for warning in seen] == [
        "anything else torch says",
        "Using padding='same' with even kernel lengths and odd dilation ... outside",
    ]
    with warnings.catch_warnings(record=True) as seen, oracle_notes_shown():  # what `conformance explain` asks
        warnings.simplefilter("always")
        with oracle_call():
            warnings.warn("Using padding='same' with even kernel lengths and odd dilation may ...", stacklevel=1)
    assert len(seen) == 1
    # the case that made torch say it on every run of the library: a fresh process prints nothing on stderr
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "cases/semantics/conv1d.yaml", "-k", "same_unbatched", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.strip().endswith("1 passed, 0 failed")


def test_channels_last_is_torch_s_own_for_3d_and_not_run_for_1d(tmp_path: Path) -> None:
    conv3d = assert_is_case(
        load_one(
            tmp_path,
            """
        conv: {type: Conv3d, in_channels: 4, out_channels: 4, kernel_size: 2, groups: 2}
        input: {random: {}, shape: [2, 4, 3, 3, 3]}
    """,
        )
    )
    tensors = make_tensors(conv3d)
    contiguous = torch_forward(conv3d, tensors.input, tensors.weight, tensors.bias)
    channels_last = torch_forward_variant(conv3d, tensors.input, tensors.weight, tensors.bias, "channels_last")
    np.testing.assert_allclose(channels_last, contiguous, rtol=1e-5, atol=1e-6)
    conv1d = assert_is_case(
        load_one(
            tmp_path,
            """
        conv: {type: Conv1d, in_channels: 4, out_channels: 4, kernel_size: 2, groups: 2}
        input: {random: {}, shape: [2, 4, 5]}
    """,
        )
    )
    (check,) = [c for c in run_case(conv1d, REFERENCE).checks if c.name == "torch[channels_last]"]
    assert check.passed and "torch has no channels-last memory format for Conv1d" in check.summary


def test_a_transposed_bound_counts_the_products_of_each_output_element() -> None:
    """ConvTranspose1d, k3, stride 2: output position p is reached by the taps t with
    (p - t) even and inside the input, so K alternates 1, 1, 2, 1, 2, ... (times C_in/G)."""
    x, weight = np.ones((1, 4, 4)), np.ones((4, 1, 3))
    kwargs = {"stride": 2, "padding": 0, "output_padding": 0, "groups": 2, "dilation": 1}
    assert op_name(kwargs, weight) == "conv_transpose1d"
    bound = forward_bound("float32", kwargs, x, weight, None)
    brute = np.zeros(9)
    for i in range(4):
        for t in range(3):
            brute[i * 2 + t] += 1
    np.testing.assert_array_equal(bound.terms[0, 0], 2 * brute)  # 2 input channels per group
    np.testing.assert_array_equal(bound.magnitude[0, 0], 2 * brute)  # all ones: B = K


@pytest.mark.parametrize("path", sorted((ROOT / "cases/networks").glob("nd_*.yaml")))
def test_the_bound_rejects_a_planted_error_of_a_few_ulps_times_k(path: Path) -> None:
    from conformance.judging.verdict import compare_forward

    for case in load_file(path):
        tensors = make_tensors(case)
        torch_out = torch_forward(case, tensors.input, tensors.weight, tensors.bias)
        bound = forward_bound(case.dtype, case.conv.functional_kwargs(), tensors.input, tensors.weight, tensors.bias)
        allowed = bound.for_sides(2).allowed()
        assert compare_forward(case, tensors, torch_out, torch_out, actual_name="a", expected_name="b").passed
        wrong = torch_out.copy()
        wrong.flat[7] += 3 * allowed.flat[7]
        assert not compare_forward(case, tensors, wrong, torch_out, actual_name="a", expected_name="b").passed


# --- the extra checks on every op --------------------------------------------------------------

OP_CASES = {
    "Conv1d": "conv: {type: Conv1d, in_channels: 6, out_channels: 4, kernel_size: 3, stride: 2, groups: 2}\n"
    "input: {random: {}, shape: [2, 6, 9]}",
    "Conv3d": "conv: {type: Conv3d, in_channels: 4, out_channels: 6, kernel_size: [2, 1, 2], groups: 2}\n"
    "input: {random: {}, shape: [1, 4, 3, 2, 4]}",
    "ConvTranspose1d": "conv: {type: ConvTranspose1d, in_channels: 6, out_channels: 4, kernel_size: 3, stride: 2,"
    " output_padding: 1, groups: 2}\ninput: {random: {}, shape: [2, 6, 4]}",
    "ConvTranspose2d": "conv: {type: ConvTranspose2d, in_channels: 4, out_channels: 6, kernel_size: [2, 3], stride: 2,"
    " padding: 1, groups: 2}\ninput: {random: {}, shape: [4, 3, 3]}",
    "ConvTranspose3d": "conv: {type: ConvTranspose3d, in_channels: 4, out_channels: 4, kernel_size: 2,"
    " stride: [2, 1, 1],"
    " groups: 2}\ninput: {random: {}, shape: [1, 4, 2, 3, 2]}",
}
EXTRA_CHECKS = {"metamorphic:block-diagonal", "metamorphic:per-group", "metamorphic:permutation", "wiring"}


@pytest.mark.parametrize("op", sorted(OP_CASES))
def test_every_extra_check_runs_and_holds_for_the_reference(tmp_path: Path, op: str) -> None:
    result = run_case(assert_is_case(load_one(tmp_path, OP_CASES[op])), REFERENCE)
    names = {check.name for check in result.checks}
    assert EXTRA_CHECKS <= names, names
    assert result.status == PASSED, result.message


@pytest.mark.parametrize("op", ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"])
def test_interleaved_transposed_groups_are_caught_without_torch(tmp_path: Path, op: str) -> None:
    result = run_case(assert_is_case(load_one(tmp_path, OP_CASES[op])), bug("transposed_outputs_interleaved"))
    failed = {check.name for check in result.checks if not check.passed}
    assert {"wiring", "metamorphic:per-group", "metamorphic:block-diagonal"} <= failed, failed


def test_channels_read_in_the_wrong_order_within_a_group_break_the_permutation_relation(tmp_path: Path) -> None:
    """A transposed op that reads its input channels in reverse order within each group (but keeps
    the weight's rows) is seen by relation (c) -- the permutation moves the weight's FIRST axis."""
    import types

    import reference_impl

    def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, **kw):
        per_group = input.shape[-3] // groups
        order = [g * per_group + (per_group - 1 - j) for g in range(groups) for j in range(per_group)]
        return reference_impl.conv_transpose2d(
            np.take(input, order, axis=-3), weight, bias, stride, padding, output_padding, groups, dilation, **kw
        )

    module = types.ModuleType("reversed_within_groups")
    module.conv_transpose2d = conv_transpose2d
    case = assert_is_case(
        load_one(
            tmp_path,
            OP_CASES["ConvTranspose2d"]
            .replace("in_channels: 4", "in_channels: 6")
            .replace("shape: [4, 3, 3]", "shape: [6, 3, 3]"),
        )
    )
    result = run_case(case, load_implementation(module))
    failed = {check.name for check in result.checks if not check.passed}
    assert "metamorphic:permutation" in failed and "wiring" not in failed, failed
    assert all(c.passed for c in run_case(case, REFERENCE).checks)


def test_gradient_reports_name_the_transposed_weight_by_input_channel(tmp_path: Path) -> None:
    case = assert_is_case(load_one(tmp_path, OP_CASES["ConvTranspose2d"]))
    text = describe_gradient_index(case, "grad_weight", (3, 1, 0, 2))
    assert text == ("dw[c=3, j=1, p=0, q=2]: input channel 3 is in group 1 of 2; its column j=1 feeds output channel 4")
    conv3d = assert_is_case(load_one(tmp_path, OP_CASES["Conv3d"]))
    assert describe_gradient_index(conv3d, "grad_input", (0, 2, 1, 0, 3)).startswith("dx[n=0, c=2, d=1, h=0, w=3]")


# --- plug-in modules ---------------------------------------------------------------------------


def test_a_correct_six_op_module_passes_and_a_conv2d_only_one_skips_the_other_ops() -> None:
    from conformance.cases.loader import load_cases
    from conformance.running.runner import SKIPPED
    from tests.plugins import torch_functional_convs

    cases = [
        case
        for case in load_cases(
            [ROOT / "cases/seed", ROOT / "cases/errors/ops.yaml", ROOT / "cases/tutorial/09_conv_transpose_groups.yaml"]
        )
    ]
    assert {case.conv.type for case in cases} == set(CONV_TYPES)
    six = load_implementation(torch_functional_convs)
    assert {case.name: run_case(case, six).status for case in cases} == {case.name: PASSED for case in cases}

    import types

    only_conv2d = types.ModuleType("only_conv2d")
    only_conv2d.conv2d = torch_functional_convs.conv2d
    results = [run_case(case, load_implementation(only_conv2d)) for case in cases]
    for case, result in zip(cases, results, strict=False):
        if case.conv.type == "Conv2d":
            assert result.status == PASSED, result.message
        else:
            assert result.status == SKIPPED and result.message == f"only_conv2d defines no {case.conv.functional_name}"
