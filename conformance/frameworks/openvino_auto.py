"""Built-in ``openvino-auto``: the same GroupConvolution model as ``openvino``, compiled with the CPU
plugin's default configuration, so the inference precision is the runtime's choice for this
processor (bf16 or f16 where it has them), as users get it without a hint."""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.frameworks.openvino_graph import group_convolution, ov_version

ARRAYS = "numpy"


def version() -> str:
    import openvino as ov

    precision = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
    return ov_version(f"default ({precision} on this processor)")


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
    return group_convolution(input, weight, bias, stride, padding, dilation, groups, padding_mode, {})
