"""Built-in ``tensorflow``: ``tf.nn.conv2d`` on NHWC, its group count inferred from the filter.

``tf.nn.conv2d`` has no groups argument: it computes a grouped convolution when the filter's input
depth is a divisor of the input's channels, groups = C_in / filter_in. A case whose ``groups`` is
not that number (0, negative, not dividing C_in) cannot be passed: Unsupported. An input of
another rank than 4 (or torch's unbatched 3) is passed as it is, for TensorFlow to judge. Filter: torch's
OIHW ``(C_out, C_in/g, kH, kW)`` -> HWIO by ``tf.transpose(w, (2, 3, 1, 0))``. Layout, padding and
errors: tf_common.py. Bias: ``tf.nn.bias_add`` on the NHWC output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.frameworks.layer import pair, require_batched
from conformance.frameworks.tf_common import import_tensorflow, nhwc_padded, tf_verdicts, tf_version
from conformance.judging.outcomes import Unsupported

ARRAYS = "numpy"


def version() -> str:
    return tf_version()


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
    tf = import_tensorflow()
    require_batched(input, "tf.nn.conv2d")
    if np.ndim(input) != 4:
        return _wrong_rank(tf, input, weight, stride, padding, dilation)
    channels, filter_in = np.shape(input)[1] if np.ndim(input) > 1 else 0, np.shape(weight)[1]
    if groups < 1 or filter_in * groups != channels:
        raise Unsupported(
            f"tf.nn.conv2d has no groups argument: it infers groups = C_in / filter_in = "
            f"{channels}/{filter_in}, so groups={groups} cannot be passed"
        )
    with tf_verdicts("tf.nn.conv2d"):
        x, pads = nhwc_padded(tf, input, weight, padding, dilation, padding_mode)
        kernel = tf.transpose(tf.constant(weight), (2, 3, 1, 0))  # OIHW -> HWIO
        output = tf.nn.conv2d(
            x,
            kernel,
            strides=(1, *pair(stride), 1),
            padding=pads,
            dilations=(1, *pair(dilation), 1),
            data_format="NHWC",
        )
        if bias is not None:
            output = tf.nn.bias_add(output, tf.constant(bias), data_format="NHWC")
        return tf.transpose(output, (0, 3, 1, 2)).numpy()  # NHWC -> NCHW


def _wrong_rank(tf: Any, input: Any, weight: Any, stride: Any, padding: Any, dilation: Any) -> np.ndarray:
    """An input that is neither (N, C, H, W) nor (C, H, W) has no layout to convert: it goes to
    ``tf.nn.conv2d`` as it is, for TensorFlow to judge (a 2-D input aborts the process: a failed
    CHECK in oneDNN's Conv2D, tensorflow/tensorflow#111453)."""
    from conformance.frameworks.layer import explicit_padding, kernel_hw

    (top, bottom), (left, right) = explicit_padding(padding, kernel_hw(weight), dilation)
    with tf_verdicts("tf.nn.conv2d"):
        kernel = tf.transpose(tf.constant(weight), (2, 3, 1, 0))  # OIHW -> HWIO
        return tf.nn.conv2d(
            tf.constant(input),
            kernel,
            strides=(1, *pair(stride), 1),
            padding=[[0, 0], [top, bottom], [left, right], [0, 0]],
            dilations=(1, *pair(dilation), 1),
        ).numpy()
