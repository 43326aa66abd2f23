"""Built-in ``openvino``: OpenVINO's ``GroupConvolution`` on the CPU plugin with
``INFERENCE_PRECISION_HINT=f32``, so float32 cases compute in float32 whatever the processor
(the CPU plugin otherwise may run bf16 where the processor has it: see ``openvino-auto``).
Graph, layouts and pads: openvino_graph.py."""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.frameworks.openvino_graph import group_convolution, ov_version

ARRAYS = "numpy"
CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def version() -> str:
    return ov_version("f32 (INFERENCE_PRECISION_HINT)")


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
    return group_convolution(input, weight, bias, stride, padding, dilation, groups, padding_mode, CONFIG)
