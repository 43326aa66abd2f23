"""Built-in ``onnxruntime``: a one-node ONNX ``Conv(group=groups)`` built by hand
(conformance/frameworks/onnx_model.py: layouts and pads order there), run by ONNX Runtime's CPU
execution provider with its default graph optimizations. The runtime's NOT_IMPLEMENTED becomes
Unsupported, its FAIL / INVALID_ARGUMENT a refusal (ort_errors.py)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .onnx_model import conv_model, conv_transpose_model
from .layer import require_batched
from .ort_errors import run_in_onnxruntime

ARRAYS = "numpy"


def version() -> str:
    import onnx
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__} (onnx {onnx.__version__}), CPUExecutionProvider"


def conv1d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1, padding_mode: str = "zeros") -> np.ndarray:
    return _conv(1, input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv2d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1, padding_mode: str = "zeros") -> np.ndarray:
    return _conv(2, input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv3d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1, padding_mode: str = "zeros") -> np.ndarray:
    return _conv(3, input, weight, bias, stride, padding, dilation, groups, padding_mode)


def _conv(dims: int, input: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any, groups: int,
          padding_mode: str) -> np.ndarray:
    require_batched(input, "ONNX Conv", dims)
    model, feeds = conv_model(input, weight, bias, stride, padding, dilation, groups, padding_mode, dims)
    return np.asarray(run_in_onnxruntime(model.SerializeToString(), feeds))


def conv_transpose1d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> np.ndarray:
    return _conv_transpose(1, input, weight, bias, stride, padding, output_padding, groups, dilation)

def conv_transpose2d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> np.ndarray:
    return _conv_transpose(2, input, weight, bias, stride, padding, output_padding, groups, dilation)

def conv_transpose3d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> np.ndarray:
    return _conv_transpose(3, input, weight, bias, stride, padding, output_padding, groups, dilation)


def _conv_transpose(dims: int, input: Any, weight: Any, bias: Any, stride: Any, padding: Any, output_padding: Any,
                    groups: int, dilation: Any) -> np.ndarray:
    require_batched(input, "ONNX ConvTranspose", dims)
    model, feeds = conv_transpose_model(input, weight, bias, stride, padding, output_padding, groups, dilation, dims)
    return np.asarray(run_in_onnxruntime(model.SerializeToString(), feeds))
