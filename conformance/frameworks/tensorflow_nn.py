"""Built-in ``tensorflow``: ``tf.nn.conv2d`` on NHWC, its group count inferred from the filter.

``tf.nn.conv2d`` has no groups argument: it computes a grouped convolution when the filter's input
depth is a divisor of the input's channels, groups = C_in / filter_in. A case whose ``groups`` is
not that number (0, negative, not dividing C_in) cannot be passed: Unsupported. Filter: torch's
OIHW ``(C_out, C_in/g, kH, kW)`` -> HWIO by ``tf.transpose(w, (2, 3, 1, 0))``. Layout, padding and
errors: tf_common.py. Bias: ``tf.nn.bias_add`` on the NHWC output.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..outcomes import Unsupported
from .layer import pair, require_batched
from .tf_common import import_tensorflow, nhwc_padded, tf_verdicts, tf_version

ARRAYS = "numpy"


def version() -> str:
    return tf_version()


def conv2d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1, padding_mode: str = "zeros") -> np.ndarray:
    tf = import_tensorflow()
    require_batched(input, "tf.nn.conv2d")
    channels, filter_in = np.shape(input)[1] if np.ndim(input) > 1 else 0, np.shape(weight)[1]
    if groups < 1 or filter_in * groups != channels:
        raise Unsupported(f"tf.nn.conv2d has no groups argument: it infers groups = C_in / filter_in = "
                          f"{channels}/{filter_in}, so groups={groups} cannot be passed")
    with tf_verdicts("tf.nn.conv2d"):
        x, pads = nhwc_padded(tf, input, weight, padding, dilation, padding_mode)
        kernel = tf.transpose(tf.constant(weight), (2, 3, 1, 0))  # OIHW -> HWIO
        output = tf.nn.conv2d(x, kernel, strides=(1, *pair(stride), 1), padding=pads,
                              dilations=(1, *pair(dilation), 1), data_format="NHWC")
        if bias is not None:
            output = tf.nn.bias_add(output, tf.constant(bias), data_format="NHWC")
        return tf.transpose(output, (0, 3, 1, 2)).numpy()  # NHWC -> NCHW
