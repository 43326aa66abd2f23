"""Built-in ``onnx-reference``: the same one-node ONNX ``Conv`` model as ``onnxruntime``
(onnx_model.py), evaluated by ``onnx.reference.ReferenceEvaluator``, ONNX's own Python
implementation of the operator specification (slow on large layers: pure NumPy loops).

Errors (:func:`judge_error`): the evaluator refuses a bad model or attribute with a ``raise``
statement of its own (a refusal); a ValueError or IndexError that NumPy raises while the evaluator
computes (``cannot reshape array of size 36 into shape (1,2,12)`` inside its grouped ConvTranspose)
is its numerics failing: ``crashed``, not a refusal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.frameworks.adapter_errors import judge_numerics
from conformance.frameworks.layer import functional_conv_transposes, functional_convs
from conformance.frameworks.onnx_model import conv_model, conv_transpose_model

ARRAYS = "numpy"


def version() -> str:
    import onnx

    return f"onnx {onnx.__version__} (onnx.reference.ReferenceEvaluator)"


def environment() -> dict[str, str]:
    import onnx

    from conformance.frameworks.onnx_model import OPSET

    return {"onnx.version": onnx.__version__, "onnx.opset": str(OPSET)}


def judge_error(error: BaseException) -> str | None:
    return judge_numerics(error, "onnx")


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
    from onnx.reference import ReferenceEvaluator

    model, feeds = conv_model(input, weight, bias, stride, padding, dilation, groups, padding_mode, dims)
    return np.asarray(ReferenceEvaluator(model).run(None, feeds)[0])


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
    from onnx.reference import ReferenceEvaluator

    model, feeds = conv_transpose_model(input, weight, bias, stride, padding, output_padding, groups, dilation, dims)
    return np.asarray(ReferenceEvaluator(model).run(None, feeds)[0])


# The torch.nn.functional signatures, one per rank, each calling the one op of that kind above.
conv1d, conv2d, conv3d = functional_convs(_conv)
conv_transpose1d, conv_transpose2d, conv_transpose3d = functional_conv_transposes(_conv_transpose)
