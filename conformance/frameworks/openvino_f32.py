"""Built-in ``openvino``: OpenVINO's ``GroupConvolution`` on the CPU plugin with
``INFERENCE_PRECISION_HINT=f32``, so float32 cases compute in float32 whatever the processor
(the CPU plugin otherwise runs bf16 where the processor has it: see ``openvino-bf16``).
Graph, layouts and pads: openvino_graph.py."""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.frameworks.adapter_errors import judge_adapter_error
from conformance.frameworks.openvino_graph import group_convolution, ov_environment, ov_version, precision_config

ARRAYS = "numpy"
PRECISION = "f32"


def version() -> str:
    return ov_version(PRECISION)


def environment() -> dict[str, str]:
    return ov_environment(PRECISION)


def judge_error(error: BaseException) -> str | None:
    return judge_adapter_error(error)


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
    return group_convolution(
        input, weight, bias, stride, padding, dilation, groups, padding_mode, precision_config(PRECISION)
    )
