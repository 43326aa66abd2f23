"""Built-in ``torch-onnx-legacy``: ``torch.onnx.export(nn.Conv2d, dynamo=False)`` (the TorchScript
exporter), the exported model run in ONNX Runtime on CPU. Same module and runner as ``torch-onnx``
(torch_onnx_export.py); only the exporter differs."""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.frameworks.torch_onnx_export import export_and_run

ARRAYS = "numpy"


def version() -> str:
    import onnxruntime
    import torch

    return (
        f"torch {torch.__version__} onnx exporter (dynamo=False, TorchScript) -> onnxruntime {onnxruntime.__version__}"
    )


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
    return export_and_run(False, input, weight, bias, stride, padding, dilation, groups, padding_mode)
