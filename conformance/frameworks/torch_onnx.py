"""Built-in ``torch-onnx``: ``torch.onnx.export(nn.Conv2d, dynamo=True)`` (the torch.export-based
exporter, onnxscript), the exported model run in ONNX Runtime on CPU. The exporter writes the
Conv's ``group`` and pads itself: this adapter only builds the module (torch_module.py) and runs
what comes out (torch_onnx_export.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.frameworks.torch_onnx_export import export_and_run

ARRAYS = "numpy"


def version() -> str:
    import onnxruntime
    import onnxscript
    import torch

    exporter = f"torch {torch.__version__} onnx exporter (dynamo=True, onnxscript {onnxscript.__version__})"
    return f"{exporter} -> onnxruntime {onnxruntime.__version__}"


def conv2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    return export_and_run(True, input, weight, bias, stride, padding, dilation, groups, padding_mode)
