"""Backward cases end to end: the case keys, plug-in backwards (right, wrong, missing), --device."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from conformance.cases.loader import load_file
from conformance.cli import main
from conformance.reporting.terminal import format_failure
from conformance.running.implementations import load_implementation
from conformance.running.runner import make_tensors, run_case
from conformance.running.torch_oracle import build_module, to_numpy, to_torch, torch_backward
from tests.helpers import assert_is_case, load_one

ROOT = Path(__file__).resolve().parent.parent
GRADIENTS = ROOT / "cases" / "gradients"
SEED_BACKWARD = str(GRADIENTS / "seed_backward.yaml")
NEEDS_GPU = pytest.mark.skipif(
    not torch.cuda.is_available(), reason=f"needs a CUDA GPU; torch {torch.__version__} sees none here"
)


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def case_named(path: Path, name: str):
    return next(case for case in load_file(path) if getattr(case, "name", None) == name)


def test_grad_output_defaults_to_random_with_the_output_shape_and_its_own_seed(tmp_path: Path) -> None:
    case = assert_is_case(
        load_one(
            tmp_path,
            """
        name: g
        conv: {in_channels: 4, out_channels: 6, kernel_size: 3, stride: 2, groups: 2}
        input: {random: {}, shape: [2, 4, 7, 9]}
        backward: true
    """,
        )
    )
    tensors = make_tensors(case)
    assert tensors.grad_output.shape == (2, 6, 3, 4) and tensors.grad_output.dtype == np.float32
    assert not np.array_equal(tensors.grad_output.ravel()[:10], tensors.input.ravel()[:10])
    np.testing.assert_array_equal(tensors.grad_output, make_tensors(case).grad_output)


@pytest.mark.parametrize(
    "text,words",
    [
        ("grad_output: {fill: 1}", "grad_output: 'grad_output' needs backward: true"),
        ("backward: yes please", "backward: expected true or false"),
        ("backward: true\nexpect_error: true", "backward: backward cannot be combined with expect_error"),
        (
            "backward: true\ngrad_output: {fill: 1, shape: [1, 2, 3, 3]}",
            "grad_output: shape [1, 2, 3, 3] does not match the output's shape [1, 2, 2, 2]",
        ),
        (
            "backward: true\nexpected_gradients: {grad_inptu: [1]}",
            "unknown key 'grad_inptu' (did you mean 'grad_input'?)",
        ),
        ("backward: true\nexpected_gradients: {grad_bias: [1, 2]}", "a grad_bias is given but conv.bias is false"),
        (
            "backward: true\nexpected_gradients: {grad_weight: [1, 2, 3]}",
            "3 values do not fill the layer's shape [2, 1, 2, 2] (8 elements)",
        ),
    ],
)
def test_bad_backward_keys_are_named(tmp_path: Path, text: str, words: str) -> None:
    item = load_one(
        tmp_path,
        "conv: {in_channels: 2, out_channels: 2, kernel_size: 2, groups: 2, bias: false}\n"
        f"input: {{fill: 1, shape: [1, 2, 3, 3]}}\n{text}\n",
    )
    assert words in str(item), str(item)


def test_seed_gradients_spell_out_the_groups(capsys) -> None:
    """The golden gradients of the seed cases pass for the reference and torch, in the CLI."""
    code, out = run(capsys, "run", SEED_BACKWARD)
    assert code == 0, out
    assert out.strip().splitlines()[-1] == "3 passed, 0 failed"


@pytest.mark.slow
def test_a_plugin_without_backward_is_skipped_with_the_reason(tmp_path: Path, capsys) -> None:
    report = tmp_path / "results.json"
    code, out = run(
        capsys, "run", SEED_BACKWARD, "--impl", "tests.plugins.wrong_convs:recording", "--json", str(report)
    )
    assert code == 0, out
    assert (
        "SKIP  gradients/seed_groups3" in out
        and "backward skipped: tests.plugins.wrong_convs:recording offers "
        "no backward (give it a `backward` attribute or define recording_backward beside it"
    ) in out
    assert out.strip().splitlines()[-1] == "0 passed, 0 failed, 3 skipped"
    data = json.loads(report.read_text())
    assert data["summary"]["skipped"] == 3 and {c["status"] for c in data["cases"]} == {"skipped"}


@pytest.mark.slow
def test_a_plugin_without_backward_still_fails_a_wrong_forward(capsys) -> None:
    code, out = run(capsys, "run", SEED_BACKWARD, "--impl", "tests.plugins.wrong_convs:interleaved_groups")
    assert code == 1 and out.strip().splitlines()[-1] == "0 passed, 3 failed (3 wrong_values)"


@pytest.mark.slow
def test_backward_found_as_an_attribute_or_beside_the_function(capsys) -> None:
    assert (
        load_implementation("tests.plugins.backward_convs:attribute").backward_name
        == "tests.plugins.backward_convs:attribute.backward"
    )
    assert load_implementation("reference_impl:conv2d_loops").backward_name == "reference_impl:conv2d_loops_backward"
    code, out = run(capsys, "run", SEED_BACKWARD, "--impl", "tests.plugins.backward_convs:attribute")
    assert code == 0 and out.strip().splitlines()[-1] == "3 passed, 0 failed", out


def test_the_wrong_depthwise_weight_gradient_of_pytorch_50042_is_caught() -> None:
    case = case_named(GRADIENTS / "depthwise24_stride2_ones.yaml", "gradients/depthwise24_stride2_ones_float32")
    result = run_case(case, load_implementation("tests.plugins.backward_convs:last_row_mirrored"))
    report = format_failure(result)
    assert result.status == "failed"
    name = "tests.plugins.backward_convs:last_row_mirrored"
    # The last kernel row [6, 9, 9] became the first [4, 6, 6] in all 24 channels: 72 taps.
    assert f"grad_weight: {name} vs torch: 72 of 216 elements differ" in report
    assert (
        "worst element dw[o=0, c=0, p=2, q=0]: output channel 0 is in group 0 of 24; its tap c=0 reads input channel 0"
    ) in report
    assert f"{name} = 4, torch = 6, expected = 6" in report
    assert f"grad_weight: {name} vs expected: 72 of 216 elements differ" in report
    assert "ok   grad_input" in report and "ok   torch vs expected" not in report


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_the_oracle_s_gradients_are_those_of_output_backward_bit_for_bit(tmp_path: Path, dtype: str) -> None:
    case = assert_is_case(
        load_one(
            tmp_path,
            f"""
        conv: {{type: ConvTranspose2d, in_channels: 4, out_channels: 6, kernel_size: 3, stride: 2, groups: 2}}
        input: {{random: {{}}, shape: [2, 4, 5, 4]}}
        dtype: {dtype}
        backward: true
    """,
        )
    )
    tensors = make_tensors(case)
    module = build_module(case, tensors.weight, tensors.bias, requires_grad=True)
    x = to_torch(tensors.input, case).requires_grad_(True)
    module(x).backward(to_torch(tensors.grad_output, case))  # the plain way
    plain = [to_numpy(t) for t in (x.grad, module.weight.grad, module.bias.grad)]
    oracle = torch_backward(case, tensors.grad_output, tensors.input, tensors.weight, tensors.bias)
    assert all(np.array_equal(a, b, equal_nan=True) and a.dtype == b.dtype for a, b in zip(plain, oracle, strict=True))
    with pytest.raises(RuntimeError, match=r"Mismatch in shape: grad_output\[0\] has a shape of"):
        torch_backward(case, tensors.grad_output[:1], tensors.input, tensors.weight, tensors.bias)  # would broadcast


def test_the_oracle_s_backward_does_not_import_sympy() -> None:
    # output.backward(dy) imports torch.fx's symbolic shapes, hence sympy (~0.4 s of a run) for its shape check
    code = (
        "import sys; from conformance.cases.loader import load_file;"
        "from conformance.running.runner import make_tensors;"
        "from conformance.running.torch_oracle import torch_backward;"
        f"case = load_file({SEED_BACKWARD!r})[0]; t = make_tensors(case);"
        "torch_backward(case, t.grad_output, t.input, t.weight, t.bias); print('sympy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_an_expected_gradient_that_is_wrong_fails_torch_too(tmp_path: Path) -> None:
    case = assert_is_case(
        load_one(
            tmp_path,
            """
        conv: {in_channels: 2, out_channels: 2, kernel_size: 1, groups: 2, bias: true}
        input: {values: [1, 10], shape: [1, 2, 1, 1]}
        weight: [3, 4]
        backward: true
        grad_output: {fill: 1}
        expected_gradients: {grad_input: {values: [3, 4], shape: [1, 2, 1, 1]}, grad_bias: [1, 2]}
    """,
        )
    )
    report = format_failure(run_case(case, load_implementation(None)))
    assert "FAIL grad_bias: torch vs expected: 1 of 2 elements differ" in report
    assert "worst element db[o=1]: output channel 1 is in group 1 of 2" in report
    assert "ok   grad_input: torch vs expected" in report


@pytest.mark.parametrize("mode,fails", [("zeros", False), ("reflect", True), ("replicate", True), ("circular", True)])
def test_a_backward_that_ignores_the_padding_mode_is_caught(mode: str, fails: bool) -> None:
    case = case_named(GRADIENTS / "padding_modes.yaml", f"gradients/padding_{mode}_stride2")
    result = run_case(case, load_implementation("tests.plugins.backward_convs:zero_padding_backward"))
    report = format_failure(result)
    assert (result.status == "failed") == fails, report
    if fails:
        assert "FAIL grad_input: tests.plugins.backward_convs:zero_padding_backward vs torch" in report
        # Zero padding also changes what the weight taps on the border read: both gradients break.
        assert "worst element dx[n=" in report and "FAIL grad_weight" in report and "ok   grad_bias" in report


def test_a_backward_returning_the_wrong_things_is_named(tmp_path: Path) -> None:
    case = case_named(GRADIENTS / "grouped_stride_dilation.yaml", "gradients/grouped_stride_dilation_float32")
    result = run_case(case, load_implementation("tests.plugins.backward_convs:returns_two"))
    assert result.status == "failed"
    assert result.message == (
        "tests.plugins.backward_convs:returns_two_backward must return "
        "(grad_input, grad_weight, grad_bias), got a tuple of 2"
    )


def test_pytest_skips_backward_cases_for_a_plugin_without_one(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["conformance.pytest_plugin"]')
    pytester.makeini("[pytest]\nconformance_cases = cases\n")
    (pytester.mkdir("cases") / "grad.yaml").write_text(
        textwrap.dedent("""
        name: grad/one
        conv: {in_channels: 2, out_channels: 2, kernel_size: 1, groups: 2}
        input: {random: {}, shape: [1, 2, 2, 2]}
        backward: true
    """).lstrip()
    )
    result = pytester.runpytest("-rs", "--conv-impl", "tests.plugins.wrong_convs:recording")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*backward skipped: tests.plugins.wrong_convs:recording offers no backward*"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no GPU")
def test_device_cuda_without_a_gpu_is_a_clear_usage_error(capsys, pytester: pytest.Pytester) -> None:
    code, out = run(capsys, "run", SEED_BACKWARD, "--device", "cuda")
    assert code == 2 and "--device cuda: no CUDA GPU is usable here" in out
    pytester.makeconftest('pytest_plugins = ["conformance.pytest_plugin"]')
    pytester.makeini("[pytest]\nconformance_cases = cases\n")
    result = pytester.runpytest("--conv-device", "cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_backend_flags_are_recorded_in_every_result(tmp_path: Path, capsys) -> None:
    report = tmp_path / "r.json"
    run(capsys, "run", SEED_BACKWARD, "-k", "groups3", "--json", str(report))
    (entry,) = json.loads(report.read_text())["cases"]
    assert entry["backend"]["device"] == "cpu"
    assert {"tf32_matmul", "tf32_cudnn", "cudnn_deterministic", "cudnn_benchmark"} <= set(entry["backend"])


@NEEDS_GPU
def test_cuda_runs_the_gradient_cases_with_tf32_off(tmp_path: Path, capsys) -> None:
    report = tmp_path / "cuda.json"
    code, out = run(
        capsys, "run", str(GRADIENTS), str(ROOT / "cases" / "precision"), "--device", "cuda", "--json", str(report)
    )
    assert code == 0, out
    data = json.loads(report.read_text())
    assert all(c["backend"]["device"] == "cuda" and not c["backend"]["tf32_cudnn"] for c in data["cases"])
