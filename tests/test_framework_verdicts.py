"""Issue 19's framework verdicts: errors judged by where they were raised (``judge_error``), the
settings each adapter pins and records (``environment()``), what a porter would write (the batch
axis, circular padding from Slice/Concat, OpenVINO bf16), and the framework-only repro scripts.
Tests of an uninstalled framework are skipped with its install command."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from conformance.frameworks import status
from conformance.frameworks.adapter_errors import judge_adapter_error, judge_numerics, raise_origin
from conformance.judging.outcomes import ADAPTER_ERROR, CRASHED, KINDS
from conformance.running.implementations import load_implementation

ROOT = Path(__file__).resolve().parents[1]


def _installed_or_skip(name: str) -> None:
    availability = status(name)
    if not availability.installed:
        pytest.skip(f"{name}: {availability.reason}; install: {availability.install_command}")


def test_adapter_error_is_a_failure_kind() -> None:
    assert ADAPTER_ERROR in KINDS


def test_a_numpy_error_inside_a_framework_is_a_crash_but_its_own_raise_is_not() -> None:
    def numerics() -> None:
        np.reshape(np.zeros(3), (1, 2, 3))  # NumPy raises: the computation broke

    def refusal() -> None:
        raise ValueError("group must divide the channels")  # a decision

    with pytest.raises(ValueError) as broken:
        numerics()
    with pytest.raises(ValueError) as refused:
        refusal()
    assert raise_origin(broken.value).in_numpy  # type: ignore[union-attr]
    assert judge_numerics(broken.value, "onnx") == CRASHED
    assert judge_numerics(refused.value, "onnx") is None  # the default rule: a ValueError is a refusal


def test_a_failing_adapter_line_is_an_adapter_error(tmp_path: Path) -> None:
    # an adapter's own translation line (not a raise) failing: its bug, not the framework's
    from conformance.frameworks import adapter_errors

    adapter_file = Path(adapter_errors.ADAPTERS_FOLDER) / "_test_translation.py"
    code = compile("def translate(dtype):\n    return {'float32': 1}[dtype]\n", str(adapter_file), "exec")
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - a function whose frames say it lives among the adapters
    with pytest.raises(KeyError) as raised:
        namespace["translate"]("bfloat16")
    # linecache cannot read a file that does not exist: then the statement is unknown, not a raise
    assert judge_adapter_error(raised.value) == ADAPTER_ERROR
    # a native framework's C++ error surfaces on the adapter's calling line just so: for such an
    # adapter only its translating() blocks count, the same exception is the framework's
    assert judge_adapter_error(raised.value, native=True) is None
    assert judge_numerics(raised.value, "onnx") == ADAPTER_ERROR


def test_one_rule_for_both_kinds_of_adapter() -> None:
    # the marker works for a Python framework's adapter too, and judge_numerics keeps it
    from conformance.frameworks.adapter_errors import AdapterTranslationError, judge_native_error, translating
    from conformance.judging.outcomes import Unsupported

    with pytest.raises(AdapterTranslationError) as marked:
        with translating("jax"):
            [][0]
    assert judge_adapter_error(marked.value) == judge_native_error(marked.value) == ADAPTER_ERROR
    assert judge_numerics(marked.value, "jax") == ADAPTER_ERROR
    with pytest.raises(Unsupported) as unsupported:  # the adapter's deliberate verdict is no adapter error
        with translating("jax"):
            raise Unsupported("no such padding mode")
    assert judge_adapter_error(unsupported.value) is None and judge_native_error(unsupported.value) is None
    with pytest.raises(ValueError) as refused:  # a framework's raise, outside any adapter: the default rule
        np.reshape(np.zeros(3), (2, 2))
    assert judge_adapter_error(refused.value) is None and judge_native_error(refused.value) is None


def test_a_module_hook_judges_its_errors_and_reports_its_environment(tmp_path: Path) -> None:
    plugin = tmp_path / "hooked_plugin.py"
    plugin.write_text(
        textwrap.dedent("""
        def conv2d(input, weight, bias=None, **kw):
            raise TypeError("rank must be 4")

        def judge_error(error):
            return "refused" if isinstance(error, TypeError) else None

        def environment():
            return {"mylib.kernels": "fast", "mylib.threads": 1}
        """)
    )
    impl = load_implementation(str(plugin))
    assert impl.judge_exception(TypeError("rank")) == "refused"
    assert impl.judge_exception(KeyError("k")) == "crashed"  # None from the hook: the default rule
    assert impl.environment() == {"mylib.kernels": "fast", "mylib.threads": "1"}


@pytest.mark.slow
def test_jax_rank_refusal_is_a_refusal_not_a_crash() -> None:
    _installed_or_skip("jax")
    impl = load_implementation("jax")
    with pytest.raises(TypeError, match="ndim") as raised:
        impl.functions["conv2d"](np.ones((4, 6)), np.ones((4, 2, 1, 1)), groups=2)
    assert impl.judge_exception(raised.value) == "refused"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["jax", "openvino"])
def test_unbatched_grouped_layer_gets_its_batch_axis(name: str) -> None:
    _installed_or_skip(name)
    conv2d = load_implementation(name).functions["conv2d"]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5, 7)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), groups=2, padding=1).numpy()
    np.testing.assert_allclose(conv2d(x, w, None, 1, 1, 1, 2), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_openvino_circular_padding_is_composed_from_slice_and_concat() -> None:
    _installed_or_skip("openvino")
    conv2d = load_implementation("openvino").functions["conv2d"]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 5, 6)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    layer = torch.nn.Conv2d(4, 6, 3, padding=(2, 1), groups=2, bias=False, padding_mode="circular")
    layer.weight.data = torch.from_numpy(w)
    expected = layer(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(conv2d(x, w, None, 1, (2, 1), 1, 2, "circular"), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_openvino_computes_bfloat16_with_its_bf16_type() -> None:
    _installed_or_skip("openvino")
    import ml_dtypes

    conv2d = load_implementation("openvino").functions["conv2d"]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 4, 5, 5)).astype(ml_dtypes.bfloat16)
    w = rng.standard_normal((4, 2, 3, 3)).astype(ml_dtypes.bfloat16)
    output = conv2d(x, w, None, 1, 0, 1, 2)
    expected = torch.nn.functional.conv2d(
        torch.from_numpy(x.astype(np.float32)), torch.from_numpy(w.astype(np.float32)), groups=2
    ).numpy()
    assert output.dtype == ml_dtypes.bfloat16
    np.testing.assert_allclose(output.astype(np.float32), expected, rtol=0.05, atol=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["openvino", "openvino-bf16"])
def test_openvino_records_the_precision_it_pinned(name: str) -> None:
    _installed_or_skip(name)
    facts = load_implementation(name).environment()
    assert facts["openvino.inference_precision_hint"] == ("f32" if name == "openvino" else "bf16")
    assert facts["openvino.inference_precision"] in ("f32", "bf16", "f16")


_ONEDNN_PROBE = (
    "from conformance.running.implementations import load_implementation; "
    "print(load_implementation('{name}').environment()['tensorflow.onednn'])"
)


@pytest.mark.slow
@pytest.mark.parametrize("setting", [None, "0", "1"])
def test_tensorflow_pins_onednn_over_the_environment(setting: str | None) -> None:
    _installed_or_skip("tensorflow")
    environment = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        environment["TF_ENABLE_ONEDNN_OPTS"] = setting
    for name, expected in (("tensorflow", "on"), ("tensorflow-no-onednn", "off")):
        printed = subprocess.run(
            [sys.executable, "-c", _ONEDNN_PROBE.format(name=name)],
            capture_output=True,
            text=True,
            env=environment,
            cwd=ROOT,
            check=True,
        ).stdout
        assert printed.strip().splitlines()[-1] == expected, (name, setting)


@pytest.mark.slow
def test_tensorflow_finding_repro_runs_without_torch_or_conformance(tmp_path: Path) -> None:
    _installed_or_skip("tensorflow")
    from conformance.cli import main

    repro = tmp_path / "repro"
    main(
        [
            "matrix",
            str(ROOT / "cases" / "frameworks" / "empty_batch_without_bias.yaml"),
            "--impl",
            "tensorflow",
            "-q",
            "--repro",
            str(repro),
        ]
    )
    scripts = sorted((repro / "tensorflow").glob("*.py"))
    assert [script.name for script in scripts] == ["frameworks__empty_batch_grouped_without_bias.py"]
    text = scripts[0].read_text()
    assert str(ROOT) not in text and str(tmp_path) not in text  # relocatable: no absolute paths
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for file in (repro / "tensorflow").iterdir():
        (moved / file.name).write_bytes(file.read_bytes())
    blocker = tmp_path / "blocker"
    for package in ("torch", "conformance"):
        (blocker / package).mkdir(parents=True)
        (blocker / package / "__init__.py").write_text("raise ImportError('not available to a repro')\n")
    ran = subprocess.run(
        [sys.executable, str(moved / scripts[0].name)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(blocker)),
    )
    assert ran.returncode == 1, ran.stderr[-2000:]
    assert "shapes differ: tensorflow (0, 6, 7, 5), expected (torch) (0, 4, 6, 2)" in ran.stdout


def test_the_docs_matrix_counts_are_generated_from_the_measured_json() -> None:
    # docs/frameworks.md's counts are never typed by hand: the block is the script's output
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import frameworks_counts
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    import json

    summary = json.loads((ROOT / "docs" / "measurements" / "matrix-summary.json").read_text())
    block = frameworks_counts.markdown(summary)
    assert block in (ROOT / "docs" / "frameworks.md").read_text()
    assert {column["name"] for column in summary["columns"]} >= {"tensorflow", "tensorflow-no-onednn", "jax"}


def test_a_column_measured_on_its_own_replaces_or_joins_the_summarys_columns() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import frameworks_counts
    finally:
        sys.path.remove(str(ROOT / "scripts"))

    def column(name: str, passed: int) -> dict:
        return {"name": name, "counts": {"passed": passed}}

    summary = {"cases": 3, "settings": {}, "columns": [column("jax", 3), column("iree", 1)]}
    merged = frameworks_counts.merge(summary, {"cases": 3, "columns": [column("iree", 2), column("mlx", 3)]})
    assert merged["columns"] == [column("iree", 2), column("jax", 3), column("mlx", 3)]
    assert summary["columns"][1] == column("iree", 1)  # the summary itself is not changed
    with pytest.raises(SystemExit, match="count 2 cases, the summary 3"):
        frameworks_counts.merge(summary, {"cases": 2, "columns": []})
