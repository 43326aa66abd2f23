"""Built-in ``onnxruntime``: a one-node ONNX ``Conv(group=groups)`` built by hand
(conformance/frameworks/onnx_model.py: layouts and pads order there), run by ONNX Runtime's CPU
execution provider with its default graph optimizations. The runtime's NOT_IMPLEMENTED becomes
Unsupported, its FAIL / INVALID_ARGUMENT a refusal (ort_errors.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.frameworks.adapter_errors import judge_adapter_error
from conformance.frameworks.layer import functional_conv_transposes, functional_convs
from conformance.frameworks.onnx_model import conv_model, conv_transpose_model
from conformance.frameworks.ort_errors import run_in_onnxruntime

ARRAYS = "numpy"


def version() -> str:
    import onnx
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__} (onnx {onnx.__version__}), CPUExecutionProvider"


def environment() -> dict[str, str]:
    import onnxruntime

    return {
        "onnxruntime.version": onnxruntime.__version__,
        "onnxruntime.provider": "CPUExecutionProvider",
        "onnxruntime.graph_optimization": "default (ORT_ENABLE_ALL)",
    }


def judge_error(error: BaseException) -> str | None:
    return judge_adapter_error(error)


def _conv(
    dims: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    padding_mode: str,
) -> np.ndarray:
    model, feeds = conv_model(input, weight, bias, stride, padding, dilation, groups, padding_mode, dims)
    return np.asarray(run_in_onnxruntime(model.SerializeToString(), feeds))


def _conv_transpose(
    dims: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: int,
    dilation: Any,
) -> np.ndarray:
    model, feeds = conv_transpose_model(input, weight, bias, stride, padding, output_padding, groups, dilation, dims)
    return np.asarray(run_in_onnxruntime(model.SerializeToString(), feeds))


# The torch.nn.functional signatures, one per rank, each calling the one op of that kind above.
conv1d, conv2d, conv3d = functional_convs(_conv)
conv_transpose1d, conv_transpose2d, conv_transpose3d = functional_conv_transposes(_conv_transpose)
