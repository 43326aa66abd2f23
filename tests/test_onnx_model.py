"""The shared ONNX model builder (conformance/frameworks/onnx_model.py, columns onnxruntime,
onnx-reference and iree) and what the iree column pins on top of it: torch's unbatched input gets
its batch axis from ONNX's own Unsqueeze/Squeeze, and circular padding is either ONNX's
``Pad(mode="wrap")`` or torch.onnx's Slice + Concat, both computing torch's circular padding. The
graphs are evaluated by ``onnx.reference`` (ONNX's own evaluator; skipped without onnx); the iree
tests compile with iree-compile (slow tier)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from conformance.frameworks import BUILTINS, status
from conformance.frameworks.onnx_model import CIRCULAR_TRANSLATIONS, conv_model

ROOT = Path(__file__).resolve().parents[1]

# (dims, input shape, weight shape, padding, dilation, groups): uneven "same" pads, unbatched inputs
CIRCULAR_LAYERS = [
    (2, (2, 4, 5, 6), (6, 2, 3, 3), 1, 1, 2),
    (2, (1, 3, 6, 8), (3, 1, 3, 4), "same", (2, 1), 3),  # before != after on the last axis: (1, 2)
    (1, (2, 3, 8), (6, 1, 3), 2, 2, 3),  # the dilated depth multiplier (gradients/conv1d_...)
    (1, (3, 7), (3, 3, 2), "same", 1, 1),  # unbatched (C, W), same with an even kernel: (0, 1)
    (3, (2, 3, 3, 4), (4, 2, 2, 2, 3), 1, 1, 1),  # unbatched (C, D, H, W)
]


def _torch_circular(dims: int, x: np.ndarray, w: np.ndarray, padding: Any, dilation: Any, groups: int) -> np.ndarray:
    conv = getattr(torch.nn, f"Conv{dims}d")(
        w.shape[1] * groups, w.shape[0], w.shape[2:], padding=padding, dilation=dilation, groups=groups,
        padding_mode="circular", bias=False, dtype=torch.float64,
    )  # fmt: skip
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
        return conv(torch.from_numpy(x)).numpy()


def _evaluate(model: Any, feeds: dict[str, np.ndarray]) -> np.ndarray:
    from onnx.reference import ReferenceEvaluator

    return np.asarray(ReferenceEvaluator(model).run(None, feeds)[0])


@pytest.mark.parametrize("circular", CIRCULAR_TRANSLATIONS)
@pytest.mark.parametrize("layer", CIRCULAR_LAYERS, ids=lambda layer: f"conv{layer[0]}d-{layer[1]}-{layer[3]}")
def test_both_circular_translations_compute_torchs_circular_padding(circular: str, layer: tuple) -> None:
    pytest.importorskip("onnx")
    dims, input_shape, weight_shape, padding, dilation, groups = layer
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(input_shape), rng.standard_normal(weight_shape)
    model, feeds = conv_model(x, w, None, 1, padding, dilation, groups, "circular", dims, circular=circular)
    operators = [node.op_type for node in model.graph.node]
    if circular == "Pad":
        assert "Pad" in operators and "Concat" not in operators
    else:  # torch.onnx's form: no Pad node at all, Slice + Concat
        assert "Pad" not in operators and {"Slice", "Concat"} <= set(operators)
    assert ("Unsqueeze" in operators) == (len(input_shape) == dims + 1)  # the batch axis: ONNX's own op
    np.testing.assert_allclose(_evaluate(model, feeds), _torch_circular(dims, x, w, padding, dilation, groups))


def test_an_unknown_circular_translation_is_an_error_not_a_silent_default() -> None:
    x, w = np.zeros((1, 2, 4, 4)), np.zeros((2, 1, 3, 3))
    with pytest.raises(ValueError, match="circular='wrap'"):
        conv_model(x, w, None, 1, 1, 1, 2, "circular", 2, circular="wrap")


def test_no_xfail_file_pins_a_verdict_that_depends_on_a_time_limit() -> None:
    # A compile killed at a time limit says how fast the machine was, not what the framework does
    # (docs/frameworks.md, "Pinned code paths"): no column may pin one.
    for path in sorted((ROOT / "xfail").glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text()) or []:
            assert "did not finish within" not in str(entry.get("reason", "")), (path.name, entry["case"])


def _iree_or_skip() -> None:
    availability = status("iree")
    if not availability.installed:
        pytest.skip(f"iree: {availability.reason}; install: {availability.install_command}")


@pytest.mark.slow
def test_iree_pins_slice_concat_and_compiles_circular_layers_in_seconds() -> None:
    _iree_or_skip()
    import importlib
    import time

    adapter = importlib.import_module(BUILTINS["iree"])
    assert adapter.environment()["iree.circular_padding"] == adapter.CIRCULAR_PADDING == "Slice+Concat"
    rng = np.random.default_rng(1)
    for dims, input_shape, weight_shape, padding, dilation, groups in CIRCULAR_LAYERS[:4]:
        x, w = rng.standard_normal(input_shape), rng.standard_normal(weight_shape)
        started = time.monotonic()
        output = getattr(adapter, f"conv{dims}d")(x, w, None, 1, padding, dilation, groups, padding_mode="circular")
        assert time.monotonic() - started < 60  # 1-2 s here; the Pad "wrap" form never finishes
        np.testing.assert_allclose(output, _torch_circular(dims, x, w, padding, dilation, groups), rtol=1e-10)


@pytest.mark.slow
def test_iree_still_hangs_on_onnx_pad_wrap_iree_issue_24585() -> None:
    """Sentinel for the reason the iree column pins Slice + Concat: iree-compile (3.13) never finishes
    a model with ``Pad(mode="wrap")`` (torch-mlir's torch-decompose-complex-ops loops on the imported
    ``aten.pad`` "circular"; iree-org/iree#24585). A one-layer model compiles in 1-2 s here, so one
    that finishes within the limit means a release fixed it: then pin ``CIRCULAR_PADDING = "Pad"``
    (ONNX's own op for it), re-measure the column and delete this test."""
    _iree_or_skip()
    from iree.compiler.tools.binaries import find_tool

    from conformance.frameworks import iree_onnx

    x, w = np.zeros((1, 2, 4, 4), dtype=np.float32), np.zeros((2, 2, 3, 3), dtype=np.float32)
    model, _ = conv_model(x, w, None, 1, 1, 1, 1, "circular", 2, circular="Pad")
    command = [find_tool("iree-compile"), "-", "--iree-input-type=onnx", "--iree-hal-target-backends=llvm-cpu"]
    command += [f"--iree-llvmcpu-embedded-linker-path={find_tool('iree-lld')}", *iree_onnx.COMPILE_FLAGS]
    command += ["--compile-to=input"]  # the hang is in the input conversion; stop there if it ends
    try:
        done = subprocess.run(command, input=iree_onnx._import(model).encode(), capture_output=True, timeout=15)
    except subprocess.TimeoutExpired:
        return  # still hangs: the pin stays
    pytest.fail(f"iree-compile finished a Pad 'wrap' model (status {done.returncode}): #24585 may be fixed")
