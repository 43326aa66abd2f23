"""The shared ONNX model builder (conformance/frameworks/onnx_model.py, columns onnxruntime,
onnx-reference and iree) and what the iree column pins on top of it: torch's unbatched input gets
its batch axis from ONNX's own Unsqueeze/Squeeze, and circular padding is either ONNX's
``Pad(mode="wrap")`` or torch.onnx's Slice + Concat, both computing torch's circular padding. The
graphs are evaluated by ``onnx.reference`` (ONNX's own evaluator; skipped without onnx); the iree
tests compile with iree-compile (slow tier)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from conformance.frameworks.onnx_model import CIRCULAR_TRANSLATIONS, conv_model

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
