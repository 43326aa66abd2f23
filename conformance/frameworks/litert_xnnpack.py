"""Built-in ``litert``: a one-layer model from TensorFlow's TFLite converter, run by the LiteRT
interpreter with the interpreter's default CPU delegate, XNNPACK.
litert_model.py: the model, layouts, padding and errors."""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.frameworks.adapter_errors import judge_native_error
from conformance.frameworks.litert_model import XNNPACK, conv2d_litert, litert_environment, litert_version

ARRAYS = "numpy"
judge_error = judge_native_error  # the adapter hook: a failure inside translating() is adapter_error


def version() -> str:
    return litert_version(XNNPACK)


def environment() -> dict[str, str]:
    return litert_environment(XNNPACK)


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
    return conv2d_litert(XNNPACK, input, weight, bias, stride, padding, dilation, groups, padding_mode)
