"""Built-in ``onnx-reference``: the same one-node ONNX ``Conv`` model as ``onnxruntime``
(onnx_model.py), evaluated by ``onnx.reference.ReferenceEvaluator``, ONNX's own Python
implementation of the operator specification (slow on large layers: pure NumPy loops)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .onnx_model import conv_model, conv_transpose_model
from .layer import require_batched

ARRAYS = "numpy"


def version() -> str:
    import onnx

    return f"onnx {onnx.__version__} (onnx.reference.ReferenceEvaluator)"


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
    from onnx.reference import ReferenceEvaluator

    require_batched(input, "ONNX Conv", dims)
    model, feeds = conv_model(input, weight, bias, stride, padding, dilation, groups, padding_mode, dims)
    return np.asarray(ReferenceEvaluator(model).run(None, feeds)[0])


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
    from onnx.reference import ReferenceEvaluator

    require_batched(input, "ONNX ConvTranspose", dims)
    model, feeds = conv_transpose_model(input, weight, bias, stride, padding, output_padding, groups, dilation, dims)
    return np.asarray(ReferenceEvaluator(model).run(None, feeds)[0])
