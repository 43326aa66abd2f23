"""Built-in ``tensorflow-depthwise``: ``tf.nn.depthwise_conv2d``, for depthwise and depth-multiplier
layers (groups == C_in, C_out = C_in * multiplier); any other layer is Unsupported. TensorFlow's
oneDNN kernels are pinned on, as for ``tensorflow`` (tf_common.py).

Filter: torch's ``(C * mult, 1, kH, kW)`` holds output channel ``c * mult + m`` at row ``c * mult + m``;
TensorFlow's ``(kH, kW, C, mult)`` holds it at ``[..., c, m]``: ``tf.reshape(w, (C, mult, kH, kW))``
then ``tf.transpose(.., (2, 3, 0, 1))`` (reading the rows as ``(mult, C)`` instead is the classic
depth-multiplier ordering bug). torch's unbatched ``(C, H, W)`` input gets its batch axis from
``tf.expand_dims``, removed from the output by ``tf.squeeze``. Layout, padding and errors: tf_common.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from conformance.frameworks.layer import pair
from conformance.frameworks.tf_common import (
    import_tensorflow,
    judge_tf_error,
    nhwc_padded,
    tf_environment,
    tf_verdicts,
    tf_version,
)
from conformance.judging.outcomes import Unsupported

ARRAYS = "numpy"
ONEDNN = True


def version() -> str:
    return tf_version(ONEDNN)


def environment() -> dict[str, str]:
    return tf_environment(ONEDNN)


def judge_error(error: BaseException) -> str | None:
    return judge_tf_error(error)


def depthwise_conv2d(onednn: bool, module: str) -> Callable[..., np.ndarray]:
    """``conv2d`` with torch.nn.functional's signature through ``tf.nn.depthwise_conv2d``, oneDNN
    pinned ``onednn``; named as an attribute of ``module`` (the adapter a repro imports)."""

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
        tf = import_tensorflow(onednn)
        unbatched = np.ndim(input) == 3
        channels = np.shape(input)[0 if unbatched else 1] if np.ndim(input) > 1 else 0
        out_channels, filter_in = np.shape(weight)[0], np.shape(weight)[1]
        if groups != channels or filter_in != 1 or channels < 1 or out_channels % channels:
            raise Unsupported(
                f"tf.nn.depthwise_conv2d computes only depthwise layers (groups == C_in, C_out a "
                f"multiple of C_in); this one has C_in={channels}, C_out={out_channels}, groups={groups}"
            )
        multiplier = out_channels // channels
        with tf_verdicts(tf, "tf.nn.depthwise_conv2d"):
            batched = tf.expand_dims(tf.constant(input), 0) if unbatched else tf.constant(input)
            x, pads = nhwc_padded(tf, batched, weight, padding, dilation, padding_mode)
            kernel_h, kernel_w = np.shape(weight)[2:]
            # (C*mult, 1, kH, kW) -> (C, mult, kH, kW) -> (kH, kW, C, mult)
            kernel = tf.transpose(
                tf.reshape(tf.constant(weight), (channels, multiplier, kernel_h, kernel_w)), (2, 3, 0, 1)
            )
            output = tf.nn.depthwise_conv2d(
                x, kernel, strides=(1, *pair(stride), 1), padding=pads, dilations=pair(dilation), data_format="NHWC"
            )
            if bias is not None:
                output = tf.nn.bias_add(output, tf.constant(bias), data_format="NHWC")
            output = tf.transpose(output, (0, 3, 1, 2))  # NHWC -> NCHW
            return (tf.squeeze(output, 0) if unbatched else output).numpy()

    conv2d.__module__ = module
    return conv2d


conv2d = depthwise_conv2d(ONEDNN, __name__)
