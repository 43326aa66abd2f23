"""Gating someone else's convolution (issue 10): native arrays, refusals judged by exception type,
a kind for every failure, xfail files, the empty selection, the Python API and repro scripts."""

from __future__ import annotations

import dataclasses
import json
import pickle
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import torch

from conformance import Unsupported, check, load_implementation
from conformance.cases.loader import load_cases
from conformance.cli import main
from conformance.judging.outcomes import ImplementationCrashed
from conformance.reporting.terminal import format_failure
from conformance.running.arrays import from_native, to_native
from conformance.running.implementations import ImplementationLoadError
from conformance.running.runner import run_case
from tests.helpers import assert_is_case, write_case
from tests.plugins import gate_numpy, gate_torch

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"
NUMPY_PLUGIN = "tests.plugins.gate_numpy:conv2d"
TORCH_PLUGIN = "tests.plugins.gate_torch"
TORCH_REFUSAL = "tests.plugins.gate_torch.LayerRejected"
INTERLEAVED = "tests.plugins.wrong_convs:interleaved_groups"
SUBSET = [str(CASES / "seed"), str(CASES / "semantics"), str(CASES / "errors")]
# The Conv2d seed cases (the library's seed folder also holds the other ops' seeds, issue 13).
SEED_FILES = [str(CASES / "seed" / name) for name in ("groups2.yaml", "groups3.yaml", "out18_groups2.yaml")]


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def run_json(capsys, tmp_path: Path, *argv: str) -> tuple[int, str, dict]:
    report = tmp_path / f"results-{len(list(tmp_path.glob('results-*')))}.json"
    code, out = run(capsys, "run", *argv, "--json", str(report))
    return code, out, json.loads(report.read_text())


def statuses(document: dict) -> dict[str, tuple[str, str | None]]:
    return {case["name"]: (case["status"], case["kind"]) for case in document["cases"]}


def one_case(path: Path, name: str):
    return next(assert_is_case(c) for c in load_cases([path]) if c.name == name)


# --- correct plug-ins, each wording refusals its own way, pass the whole library -----------------------


@pytest.mark.slow
def test_a_correct_numpy_plugin_with_its_own_refusal_wording_passes_the_library(capsys, tmp_path: Path) -> None:
    code, out, document = run_json(capsys, tmp_path, "-q", "--impl", NUMPY_PLUGIN)  # no PATH: the bundled library
    assert code == 0, out[-3000:]
    verdicts = statuses(document)
    passed = [name for name, (status, _) in verdicts.items() if status == "passed"]
    assert len(passed) >= 200
    skipped = [case for case in document["cases"] if case["status"] == "skipped"]
    assert all("is one function, a conv2d: no conv" in case["message"] for case in skipped)  # only other ops
    errors = [name for name in verdicts if name.startswith("errors/")]
    assert len(errors) >= 20  # the invalid layers were refused in numpy_gate's words, and that counts
    from conformance.cases.library import library_version

    assert document["library"]["version"] == library_version()
    assert document["library"]["cases"] == library_version()  # the bundled library itself, unmodified
    assert document["implementation"]["arrays"] == "numpy"


@pytest.mark.slow
def test_a_correct_torch_tensor_plugin_module_passes_the_library(capsys, tmp_path: Path) -> None:
    code, out, document = run_json(capsys, tmp_path, "-q", "--impl", TORCH_PLUGIN, "--refusal-type", TORCH_REFUSAL)
    assert code == 0, out[-3000:]
    assert len(document["cases"]) >= 200 and {c["status"] for c in document["cases"]} == {"passed"}
    assert document["implementation"]["arrays"] == "torch"  # the module's ARRAYS
    assert document["implementation"]["refusal_types"] == [TORCH_REFUSAL]


def test_an_exception_type_not_named_as_a_refusal_is_a_crash(capsys) -> None:
    code, out = run(capsys, "run", "-q", str(CASES / "errors" / "not_divisible.yaml"), "--impl", TORCH_PLUGIN)
    assert code == 1
    assert "crashed instead of refusing the layer: LayerRejected: gate_torch cannot run this layer" in out
    assert out.strip().splitlines()[-1].endswith(" crashed)")
    assert " wrong" not in out.strip().splitlines()[-1]


# --- native arrays ---------------------------------------------------------------------------------------

HALF_CASE = """
name: half/{dtype}
dtype: {dtype}
conv: {{in_channels: 4, out_channels: 6, kernel_size: 3, groups: 2, padding: 1}}
input: {{random: {{}}, shape: [2, 4, 5, 6]}}
"""


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_torch_plugin_gets_tensors_in_the_case_dtype_and_any_layout_is_read_back(tmp_path: Path, dtype: str) -> None:
    case = assert_is_case(load_cases([write_case(tmp_path, HALF_CASE.format(dtype=dtype))])[0])
    gate_torch.received.clear()
    impl = load_implementation(f"{TORCH_PLUGIN}:recording_conv2d")
    result = run_case(case, impl)
    assert result.status == "passed", format_failure(result)
    assert gate_torch.received[0] == ("Tensor", f"torch.{dtype}", "cpu")


@pytest.mark.parametrize(
    "dtype, numpy_name",
    [("float16", "float16"), ("bfloat16", "bfloat16"), ("float32", "float32"), ("float64", "float64")],
)
def test_numpy_plugin_gets_the_case_dtype_not_float32(tmp_path: Path, dtype: str, numpy_name: str) -> None:
    case = assert_is_case(load_cases([write_case(tmp_path, HALF_CASE.format(dtype=dtype))])[0])
    gate_numpy.received.clear()
    result = run_case(case, load_implementation("tests.plugins.gate_numpy:recording"))
    assert result.status == "passed", format_failure(result)
    assert gate_numpy.received[0] == {"input": numpy_name, "weight": numpy_name, "bias": numpy_name}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_float32_result_for_a_half_precision_case_is_wrong_dtype(tmp_path: Path, dtype: str) -> None:
    """Even for bfloat16, whose values the harness holds in float32 arrays."""
    case = assert_is_case(load_cases([write_case(tmp_path, HALF_CASE.format(dtype=dtype))])[0])
    result = run_case(case, load_implementation("tests.plugins.gate_numpy:returns_float32"))
    assert (result.status, result.kind) == ("failed", "wrong_dtype")
    assert f"returned dtype float32, expected {dtype}" in result.message


def test_conversions_round_trip_exactly_and_name_the_dtype_that_came_back() -> None:
    values = np.array([1.0, 1.0078125, -3.140625, 0.0], dtype=np.float32)  # bfloat16 numbers, in float32 storage
    as_bf16 = to_native(values, "bfloat16", "numpy")
    assert as_bf16.dtype == ml_dtypes.bfloat16
    tensor = to_native(values, "bfloat16", "torch")
    assert tensor.dtype == torch.bfloat16 and tensor.is_contiguous()
    for native in (as_bf16, tensor, tensor.requires_grad_(True)):
        back, name = from_native(native)
        assert name == "bfloat16" and back.dtype == np.float32 and np.array_equal(back, values)
    assert from_native(torch.ones(2, 3).t())[0].shape == (3, 2)
    with pytest.raises(TypeError, match="returned a NoneType, not an array"):
        from_native(None)


@pytest.mark.slow
def test_arrays_and_device_are_checked_when_loading(capsys) -> None:
    with pytest.raises(ImplementationLoadError, match="NumPy arrays live on the cpu"):
        load_implementation(NUMPY_PLUGIN, device="cuda")
    if not torch.cuda.is_available():
        code, out = run(capsys, "run", str(CASES / "seed"), "--impl", TORCH_PLUGIN, "--impl-device", "cuda")
        assert code == 2 and "no CUDA GPU is usable here" in out
    assert load_implementation(TORCH_PLUGIN, arrays="numpy").arrays == "numpy"  # --arrays beats the module's ARRAYS
    try:
        import jax  # noqa: F401
    except ImportError:
        code, out = run(capsys, "run", str(CASES / "seed"), "--impl", NUMPY_PLUGIN, "--arrays", "jax")
        assert code == 2 and "--arrays jax needs JAX" in out


# --- op lookup, built-ins, options a worker can rebuild from -------------------------------------------


def test_a_module_is_looked_up_by_op_and_a_missing_op_is_skipped_with_the_reason() -> None:
    case = one_case(CASES / "seed", "seed/groups3")
    impl = load_implementation(TORCH_PLUGIN)
    assert sorted(impl.functions) == sorted(
        ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
    )
    assert impl.backward_name_for(case) == "tests.plugins.gate_torch:conv2d_backward"
    assert impl.functions["conv2d"] is gate_torch.conv2d
    only_conv2d = load_implementation("tests.plugins.gate_numpy")  # its other functions are not op names
    assert sorted(only_conv2d.functions) == ["conv2d"]
    as_conv1d = dataclasses.replace(case, conv=dataclasses.replace(case.conv, type="Conv1d"))
    result = run_case(as_conv1d, only_conv2d)
    assert (result.status, result.kind, result.message) == (
        "skipped",
        None,
        "tests.plugins.gate_numpy defines no conv1d",
    )
    result = run_case(as_conv1d, load_implementation(NUMPY_PLUGIN))
    assert result.message == (
        "tests.plugins.gate_numpy:conv2d is one function, a conv2d: no conv1d "
        "(give a module defining conv1d to check it)"
    )


def test_options_are_picklable_and_rebuild_the_same_implementation() -> None:
    impl = load_implementation(TORCH_PLUGIN, refusal_types=(TORCH_REFUSAL,))
    options = pickle.loads(pickle.dumps(impl.options))
    assert options == {"arrays": "torch", "device": "cpu", "refusal_types": (TORCH_REFUSAL,)}
    again = load_implementation(impl.spec, **options)
    assert again.functions == impl.functions and again.refusal_types == (gate_torch.LayerRejected,)
    assert again.judge_exception(gate_torch.LayerRejected("no")) == "refused"
    assert impl.judge_exception(ImplementationCrashed("signal 11")) == "crashed"
    assert impl.judge_exception(Unsupported("no 7x7")) == "unsupported"
    assert impl.judge_exception(KeyError("k")) == "crashed"


def test_builtin_names_come_from_conformance_frameworks(monkeypatch) -> None:
    import types

    fake = types.ModuleType("conformance.frameworks")
    fake.BUILTINS = {"fakeframework": TORCH_PLUGIN}
    monkeypatch.setitem(sys.modules, "conformance.frameworks", fake)
    impl = load_implementation("fakeframework")
    assert impl.name == "fakeframework" and impl.arrays == "torch" and "conv2d" in impl.functions


# --- every failure has a kind ----------------------------------------------------------------------------


@pytest.mark.slow
def test_an_interleaved_groups_plugin_fails_with_wrong_values(capsys, tmp_path: Path) -> None:
    code, out, document = run_json(capsys, tmp_path, *SUBSET, "-q", "--impl", INTERLEAVED)
    assert code == 1
    failed = {name: kind for name, (status, kind) in statuses(document).items() if status == "failed"}
    assert "seed/groups3" in failed and set(failed.values()) == {"wrong_values"}
    assert document["summary"]["kinds"] == {"wrong_values": len(failed)}
    assert f" failed ({len(failed)} wrong_values)" in out.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_plugin_raising_type_error_on_invalid_layers_fails_as_crashed(capsys, tmp_path: Path) -> None:
    code, out, document = run_json(
        capsys, tmp_path, *SUBSET, "-q", "--impl", "tests.plugins.gate_numpy:crashes_on_invalid"
    )
    assert code == 1
    verdicts = {name: verdict for name, verdict in statuses(document).items() if verdict[0] != "skipped"}  # other ops
    invalid = [name for name in verdicts if name.startswith("errors/")]
    assert len(invalid) >= 20 and all(verdicts[name] == ("failed", "crashed") for name in invalid)
    assert all(status == "passed" for name, (status, _) in verdicts.items() if name not in invalid)
    assert "TypeError: unsupported operand type(s) for +: 'NoneType' and 'int'" in out  # the plug-in's exception
    assert f"({len(invalid)} crashed)" in out.strip().splitlines()[-1]


@pytest.mark.slow
def test_accepted_invalid_and_refused_valid_are_told_apart(capsys, tmp_path: Path) -> None:
    code, _, document = run_json(
        capsys, tmp_path, str(CASES / "errors"), "-q", "--impl", "tests.plugins.wrong_convs:accepts_anything"
    )
    kinds = {kind for status, kind in statuses(document).values() if status != "skipped"}  # skipped: other ops
    assert code == 1 and kinds == {"accepted_invalid"}
    code, out, document = run_json(
        capsys, tmp_path, *SEED_FILES, "-q", "--impl", "tests.plugins.gate_numpy:refuses_grouped"
    )
    assert code == 1 and {kind for _, kind in statuses(document).values()} == {"refused_valid"}
    assert "refused the layer: ValueError: refuses_grouped: groups > 1 is not allowed here, but torch computed" in out
    code, out, document = run_json(
        capsys,
        tmp_path,
        *SEED_FILES,
        "-q",
        "--impl",
        TORCH_PLUGIN,
        "--arrays",
        "numpy",
        "--refusal-type",
        TORCH_REFUSAL,
    )  # tensors expected, arrays got
    assert code == 1 and {kind for _, kind in statuses(document).values()} == {"crashed"}
    assert "AssertionError: the gate passes tensors" in out


@pytest.mark.slow
def test_match_judges_torch_only_unless_strict_errors(capsys) -> None:
    errors = str(CASES / "errors" / "invalid_layers.yaml")
    code, out = run(capsys, "run", errors, "-q", "--impl", NUMPY_PLUGIN)
    assert code == 0, out
    code, out = run(capsys, "run", errors, "-q", "--impl", NUMPY_PLUGIN, "--strict-errors")
    assert code == 1
    assert (
        "tests.plugins.gate_numpy:conv2d's error does not match /groups must be a positive integer/ "
        "(--strict-errors): ValueError: numpy_gate rejects this layer" in out
    )
    assert "torch refused: ValueError: groups must be a positive integer" in out  # both sides' exceptions shown


@pytest.mark.slow
def test_a_stale_match_pattern_is_an_error_of_the_case(capsys, tmp_path: Path) -> None:
    write_case(
        tmp_path,
        """
        name: stale/match
        conv: {in_channels: 4, out_channels: 4, kernel_size: 1, groups: 3}
        input: {fill: 1, shape: [1, 4, 2, 2]}
        expect_error: {match: "words torch never used"}
    """,
    )
    code, out = run(capsys, "run", str(tmp_path / "cases"), "--impl", NUMPY_PLUGIN)
    assert code == 1 and "ERROR: case stale/match" in out and "the case's match is stale" in out


# --- unsupported, xfail files, the empty selection ------------------------------------------------------

PADDING_MODES = str(CASES / "semantics" / "padding_modes.yaml")


@pytest.mark.slow
def test_unsupported_fails_unless_allowed_or_listed(capsys, tmp_path: Path) -> None:
    plugin = "tests.plugins.gate_numpy:zeros_padding_only"
    code, out, document = run_json(capsys, tmp_path, PADDING_MODES, "-q", "--impl", plugin)
    unsupported = [name for name, (status, kind) in statuses(document).items() if kind == "unsupported"]
    assert code == 1 and len(unsupported) >= 3
    assert "Unsupported: padding_mode='reflect' is not implemented" in out
    code, out, document = run_json(capsys, tmp_path, PADDING_MODES, "-q", "--impl", plugin, "--allow-unsupported")
    assert code == 0 and all(statuses(document)[name] == ("skipped", "unsupported") for name in unsupported)
    xfail = tmp_path / "known.yaml"
    xfail.write_text(
        "".join(
            f'- case: "*padding_mode={mode}*"\n  reason: zeros padding only\n'
            for mode in ("reflect", "replicate", "circular")
        )
    )
    code, out, document = run_json(capsys, tmp_path, PADDING_MODES, "-q", "--impl", plugin, "--xfail", str(xfail))
    assert code == 0 and all(statuses(document)[name] == ("xfailed", "unsupported") for name in unsupported)


@pytest.mark.slow
def test_an_xfail_file_of_exactly_the_failures_is_green_and_a_passing_entry_is_xpass(capsys, tmp_path: Path) -> None:
    code, _, document = run_json(capsys, tmp_path, *SUBSET, "-q", "--impl", INTERLEAVED)
    failing = [name for name, (status, _) in statuses(document).items() if status == "failed"]
    assert code == 1 and len(failing) >= 4
    entries = "".join(
        f'- case: "{name}"\n  reason: interleaved output groups\n  link: https://example.org/1\n' for name in failing
    )
    known = tmp_path / "known.yaml"
    known.write_text(entries)
    code, out, document = run_json(capsys, tmp_path, *SUBSET, "-q", "--impl", INTERLEAVED, "--xfail", str(known))
    assert code == 0, out[-2000:]
    assert {statuses(document)[name] for name in failing} == {("xfailed", "wrong_values")}
    assert f", {len(failing)} xfailed" in out.strip().splitlines()[-1]

    stale = tmp_path / "stale.yaml"  # a second file: one passing case, one entry matching nothing
    stale.write_text(
        "- case: semantics/depthwise_3x3\n  reason: thought it failed\n- case: semantics/nowhere*\n  reason: a typo\n"
    )
    code, out, document = run_json(
        capsys, tmp_path, *SUBSET, "-q", "--impl", INTERLEAVED, "--xfail", str(known), "--xfail", str(stale)
    )
    assert code == 1
    assert statuses(document)["semantics/depthwise_3x3"] == ("xpassed", None)
    assert "XPASSED: case semantics/depthwise_3x3" in out and "remove the entry" in out
    assert f"xfail entry matches no case: 'semantics/nowhere*' ({stale}:3, reason: a typo)" in out
    assert document["xfail"]["unused"] == [
        {"case": "semantics/nowhere*", "selects": "semantics/nowhere*", "reason": "a typo", "location": f"{stale}:3"}
    ]
    assert "1 xpassed" in out.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "text, words",
    [
        ("- case: a\n", "missing key 'reason'"),
        ("- case: a\n  reason: b\n  linq: c\n", ":3: [0].linq: unknown key 'linq'"),
        ("case: a\n", "expected a list of entries"),
        ("- case: [a]\n  reason: b\n", "case: expected a non-empty string"),
    ],
)
def test_a_bad_xfail_file_is_a_usage_error_naming_file_line_and_key(
    capsys, tmp_path: Path, text: str, words: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out = run(capsys, "run", str(CASES / "seed"), "--xfail", str(path))
    assert code == 2 and str(path) in out and words in out


def test_an_empty_selection_exits_5(capsys) -> None:
    code, out = run(capsys, "run", str(CASES / "seed"), "-k", "nothing-matches")
    assert code == 5
    assert "no case selected" in out and "matching -k 'nothing-matches'" in out


def test_a_run_whose_every_case_was_skipped_checked_nothing_and_exits_5(capsys) -> None:
    transposed = str(CASES / "seed" / "convtranspose1d_groups3.yaml")  # a conv2d-only plug-in skips it
    code, out = run(capsys, "run", transposed, "--impl", "tests.plugins.gate_numpy:conv2d", "--no-isolate")
    assert code == 5 and "nothing was checked" in out
    from conformance import check

    assert not check("tests.plugins.gate_numpy:conv2d", cases=[transposed]).passed


# --- reports: JUnit, threads --------------------------------------------------------------------------------


@pytest.mark.slow
def test_junit_has_kinds_xfails_and_the_library_version(capsys, tmp_path: Path) -> None:
    known = tmp_path / "known.yaml"
    known.write_text("- case: seed/groups2\n  reason: known\n")
    junit = tmp_path / "out.xml"
    code, _ = run(capsys, "run", *SEED_FILES, "--impl", INTERLEAVED, "--xfail", str(known), "--junit", str(junit))
    assert code == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    by_name = {case.get("name"): case for case in suite.iter("testcase")}
    assert by_name["seed/groups3"].find("failure").get("type") == "wrong_values"
    assert by_name["seed/groups2"].find("skipped").get("message").startswith("xfail (wrong_values): expected failure")
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    from conformance.cases.library import library_version

    assert properties["library_version"] == library_version() and properties["arrays"] == "numpy"
    assert properties["cases"].startswith("custom+cases.")  # three files, not the whole library
    assert (suite.get("failures"), suite.get("skipped")) == ("2", "1")


def test_threads_are_one_setting_and_recorded(capsys, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    code, out, document = run_json(capsys, tmp_path, str(CASES / "seed"), "--threads", "1")
    assert code == 0
    assert document["threads"]["requested"] == 1 and document["threads"]["torch"] == 1
    assert document["threads"]["blas"] in (1, None)
    assert "threads: torch 1" in out
    assert torch.get_num_threads() == before  # restored after the run


# --- the Python API ---------------------------------------------------------------------------------------


def test_check_api_passes_a_correct_function_and_fails_a_wrong_one(tmp_path: Path) -> None:
    cases = [*SEED_FILES, CASES / "errors" / "not_divisible.yaml"]
    good = check(gate_numpy.conv2d, cases=cases)
    assert good.passed is True and len(good) >= 5
    assert {(r.status, r.kind) for r in good} == {("passed", None)}
    assert str(good).splitlines()[-1].startswith("tests.plugins.gate_numpy:conv2d: ") and "failed" in str(good)

    bad = check(INTERLEAVED, cases=cases)
    assert bad.passed is False
    rows = {r.name: (r.status, r.kind) for r in bad}
    assert rows["seed/groups3"] == ("failed", "wrong_values")
    text = str(bad)
    assert "FAILED: case seed/groups3" in text and "output channel 2 is in group 1 of 3" in text
    assert text.splitlines()[-1].endswith("(3 wrong_values)")

    known = tmp_path / "known.yaml"
    known.write_text('- case: "seed/*"\n  reason: known\n')
    assert check(INTERLEAVED, cases=cases, xfail=known).passed is True
    assert check(gate_torch.conv2d, arrays="torch", cases=SEED_FILES).passed is True
    nothing = check(gate_numpy.conv2d, cases=cases, keyword="nothing-matches")
    assert nothing.passed is False and "no case selected" in str(nothing)


# --- repro scripts ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_repro_writes_a_standalone_script_that_prints_the_disagreement(capsys, tmp_path: Path) -> None:
    repro = tmp_path / "repro"
    code, out = run(capsys, "run", SEED_FILES[1], "--impl", INTERLEAVED, "--repro", str(repro))
    assert code == 1
    script = repro / "seed__groups3.py"
    assert (repro / "seed__groups3.npz").is_file()
    assert f"repro: python {script}" in out
    rerun = next(line.split("rerun: ", 1)[1] for line in out.splitlines() if "rerun: " in line)
    assert rerun.startswith("conformance run ") and "--impl " + INTERLEAVED in rerun

    assert str(tmp_path) not in script.read_text() and str(CASES.parent) not in script.read_text()  # relocatable
    elsewhere = tmp_path / "elsewhere"  # the folder moved: the script reads its data from beside itself
    repro.rename(elsewhere)
    script = elsewhere / script.name
    # run where the plug-in module is importable by name, as `--impl` found it (here: the project folder)
    done = subprocess.run([sys.executable, str(script)], cwd=CASES.parent, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "DISAGREE" in done.stdout
    assert "4 of 6 elements differ beyond the allowance; worst at (0, 2, 0, 0)" in done.stdout
    assert "torch 650" in done.stdout  # y[0, 2] = 5*10 + 6*100, the seed's known value

    code, out = run(capsys, *shlex.split(rerun)[1:])  # the printed command reruns just that case
    assert code == 1 and out.strip().splitlines()[-1] == "0 passed, 1 failed (1 wrong_values)"


@pytest.mark.slow
def test_repro_of_a_crash_on_an_invalid_layer(capsys, tmp_path: Path) -> None:
    repro = tmp_path / "repro"
    code, _ = run(
        capsys,
        "run",
        str(CASES / "errors" / "not_divisible.yaml"),
        "-q",
        "--impl",
        "tests.plugins.gate_numpy:crashes_on_invalid",
        "--repro",
        str(repro),
    )
    scripts = sorted(repro.glob("*.py"))
    assert code == 1 and scripts
    done = subprocess.run([sys.executable, str(scripts[0])], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "raised TypeError" in done.stdout and "(crashed)" in done.stdout
    assert "DISAGREE: torch refuses the layer, the implementation crashed" in done.stdout


# --- the same implementation options in probe, explain, bench and fuzz ----------------------------------------


def test_other_commands_take_the_implementation_options(capsys) -> None:
    seed = str(CASES / "seed" / "groups3.yaml")
    code, out = run(capsys, "probe", seed, "--impl", TORCH_PLUGIN, "--refusal-type", TORCH_REFUSAL)
    assert code == 0 and "implementation tests.plugins.gate_torch" in out and "block-diagonal as groups demands" in out
    code, out = run(capsys, "explain", seed, "--impl", "tests.plugins.gate_numpy:conv2d", "--arrays", "numpy")
    assert code == 0 and "tests.plugins.gate_numpy:conv2d" in out
    code, out = run(capsys, "bench", str(CASES / "seed"), "-k", "nothing-matches", "--impl", TORCH_PLUGIN)
    assert code == 5 and "no case selected" in out


def test_a_fuzz_worker_rebuilds_the_implementation_from_its_options() -> None:
    from conformance.commands.fuzz import _campaign_in_worker

    options = load_implementation(TORCH_PLUGIN, refusal_types=(TORCH_REFUSAL,)).options
    result = _campaign_in_worker(TORCH_PLUGIN, 3, 0, 1.0, options)  # all invalid: refused as LayerRejected
    assert result.examples == 3 and result.finding is None
    without = _campaign_in_worker(TORCH_PLUGIN, 3, 0, 1.0)  # the same seed, LayerRejected not named: a crash
    assert without.finding is not None


def test_a_jax_plugin_gets_jax_arrays_in_the_case_dtype(capsys, tmp_path: Path) -> None:
    pytest.importorskip("jax", reason="JAX is the optional extra [jax] (make frameworks installs it)")
    for dtype in ("float16", "bfloat16", "float64"):
        write_case(tmp_path, HALF_CASE.format(dtype=dtype), f"{dtype}.yaml")
    code, out, document = run_json(
        capsys, tmp_path, *SEED_FILES, str(tmp_path / "cases"), "-q", "--impl", "tests.plugins.gate_jax"
    )
    assert code == 0, out[-3000:]
    assert document["implementation"]["arrays"] == "jax"
    # passed, so each result came back in the case's own dtype (a float32 result would be wrong_dtype)
    assert statuses(document) == {
        name: ("passed", None)
        for name in (
            "seed/groups2",
            "seed/groups3",
            "seed/out18_groups2",
            "half/float16",
            "half/bfloat16",
            "half/float64",
        )
    }


def test_repro_locates_an_implementation_from_its_spec_alone() -> None:
    """For an implementation whose functions live in a worker process (--isolate)."""
    from conformance.reporting.repro import spec_location

    assert spec_location("mylib.conv:conv2d", "conv2d") == {
        "module": "mylib.conv",
        "file": None,
        "root": str(Path.cwd()),
        "attribute": "conv2d",
    }
    assert spec_location("mylib", "conv_transpose2d")["attribute"] == "conv_transpose2d"
    assert spec_location("plugins/mine.py:f", "conv2d")["file"] == str(Path("plugins/mine.py").resolve())
    assert spec_location(None, "conv2d")["module"] == "reference_impl"


@pytest.mark.slow
def test_repro_of_a_wrong_gradient_compares_each_gradient(capsys, tmp_path: Path) -> None:
    repro = tmp_path / "repro"
    code, _ = run(
        capsys,
        "run",
        str(CASES / "gradients" / "depthwise24_stride2_ones.yaml"),
        "-q",
        "-k",
        "float32",
        "--impl",
        "tests.plugins.backward_convs:last_row_mirrored",
        "--repro",
        str(repro),
    )
    assert code == 1
    done = subprocess.run(
        [sys.executable, str(repro / "gradients__depthwise24_stride2_ones_float32.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = {line.split(":")[0]: line for line in done.stdout.splitlines()}
    assert lines["output"].startswith("output: 0 of ") and lines["grad_input"].startswith("grad_input: 0 of ")
    assert "elements differ beyond the allowance" in lines["grad_weight"]
    assert not lines["grad_weight"].startswith("grad_weight: 0 of ")  # the mirrored last kernel row
    assert done.stdout.strip().endswith("DISAGREE")
