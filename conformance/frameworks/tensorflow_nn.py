"""Built-in ``tensorflow``: ``tf.nn.conv2d`` on NHWC, its group count inferred from the filter, with
TensorFlow's oneDNN kernels pinned on (``tensorflow-no-onednn``, tensorflow_nn_no_onednn.py, is the
same adapter with them pinned off; tf_common.py says why both are columns).

``tf.nn.conv2d`` has no groups argument: it computes a grouped convolution when the filter's input
depth is a divisor of the input's channels, groups = C_in / filter_in. A case whose ``groups`` is
not that number (0, negative, not dividing C_in) cannot be passed: Unsupported. torch's unbatched
``(C, H, W)`` input gets its batch axis from ``tf.expand_dims`` (what torch does itself), removed
again from the output by ``tf.squeeze``. An input of another rank is passed as it is, for
TensorFlow to judge. Filter: torch's OIHW ``(C_out, C_in/g, kH, kW)`` -> HWIO by
``tf.transpose(w, (2, 3, 1, 0))``. Layout, padding and errors: tf_common.py. Bias:
``tf.nn.bias_add`` on the NHWC output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from conformance.frameworks.layer import explicit_padding, kernel_hw, pair
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


def tf_conv2d(onednn: bool, module: str) -> Callable[..., np.ndarray]:
    """``conv2d`` with torch.nn.functional's signature, through TensorFlow with oneDNN pinned
    ``onednn``; named as an attribute of ``module`` (the adapter a repro script imports)."""

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
        if np.ndim(input) not in (3, 4):
            return _wrong_rank(tf, input, weight, stride, padding, dilation)
        channels, filter_in = np.shape(input)[-3], np.shape(weight)[1]
        if groups < 1 or filter_in * groups != channels:
            raise Unsupported(
                f"tf.nn.conv2d has no groups argument: it infers groups = C_in / filter_in = "
                f"{channels}/{filter_in}, so groups={groups} cannot be passed"
            )
        with tf_verdicts(tf, "tf.nn.conv2d"):
            batched = tf.expand_dims(tf.constant(input), 0) if unbatched else tf.constant(input)
            x, pads = nhwc_padded(tf, batched, weight, padding, dilation, padding_mode)
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
            output = tf.transpose(output, (0, 3, 1, 2))  # NHWC -> NCHW
            return (tf.squeeze(output, 0) if unbatched else output).numpy()

    conv2d.__module__ = module
    return conv2d


def _wrong_rank(tf: Any, input: Any, weight: Any, stride: Any, padding: Any, dilation: Any) -> np.ndarray:
    """An input that is neither (N, C, H, W) nor (C, H, W) has no layout to convert: it goes to
    ``tf.nn.conv2d`` as it is, for TensorFlow to judge (with oneDNN, a 2-D input aborts the process:
    a failed CHECK in oneDNN's Conv2D, tensorflow/tensorflow#111453)."""
    (top, bottom), (left, right) = explicit_padding(padding, kernel_hw(weight), dilation)
    with tf_verdicts(tf, "tf.nn.conv2d"):
        kernel = tf.transpose(tf.constant(weight), (2, 3, 1, 0))  # OIHW -> HWIO
        return tf.nn.conv2d(
            tf.constant(input),
            kernel,
            strides=(1, *pair(stride), 1),
            padding=[[0, 0], [top, bottom], [left, right], [0, 0]],
            dilations=(1, *pair(dilation), 1),
        ).numpy()


conv2d = tf_conv2d(ONEDNN, __name__)
