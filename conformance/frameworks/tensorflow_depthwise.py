"""Built-in ``tensorflow-depthwise``: ``tf.nn.depthwise_conv2d``, for depthwise and depth-multiplier
layers (groups == C_in, C_out = C_in * multiplier); any other layer is Unsupported.

Filter: torch's ``(C * mult, 1, kH, kW)`` holds output channel ``c * mult + m`` at row ``c * mult + m``;
TensorFlow's ``(kH, kW, C, mult)`` holds it at ``[..., c, m]``: ``tf.reshape(w, (C, mult, kH, kW))``
then ``tf.transpose(.., (2, 3, 0, 1))`` (reading the rows as ``(mult, C)`` instead is the classic
depth-multiplier ordering bug). Layout, padding and errors: tf_common.py.
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
    require_batched(input, "tf.nn.depthwise_conv2d")
    channels = np.shape(input)[1] if np.ndim(input) > 1 else 0
    out_channels, filter_in = np.shape(weight)[0], np.shape(weight)[1]
    if groups != channels or filter_in != 1 or channels < 1 or out_channels % channels:
        raise Unsupported(
            f"tf.nn.depthwise_conv2d computes only depthwise layers (groups == C_in, C_out a "
            f"multiple of C_in); this one has C_in={channels}, C_out={out_channels}, groups={groups}"
        )
    multiplier = out_channels // channels
    with tf_verdicts("tf.nn.depthwise_conv2d"):
        x, pads = nhwc_padded(tf, input, weight, padding, dilation, padding_mode)
        kernel_h, kernel_w = np.shape(weight)[2:]
        # (C*mult, 1, kH, kW) -> (C, mult, kH, kW) -> (kH, kW, C, mult)
        kernel = tf.transpose(tf.reshape(tf.constant(weight), (channels, multiplier, kernel_h, kernel_w)), (2, 3, 0, 1))
        output = tf.nn.depthwise_conv2d(
            x, kernel, strides=(1, *pair(stride), 1), padding=pads, dilations=pair(dilation), data_format="NHWC"
        )
        if bias is not None:
            output = tf.nn.bias_add(output, tf.constant(bias), data_format="NHWC")
        return tf.transpose(output, (0, 3, 1, 2)).numpy()  # NHWC -> NCHW
