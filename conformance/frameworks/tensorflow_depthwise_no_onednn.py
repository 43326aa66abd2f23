"""Built-in ``tensorflow-depthwise-no-onednn``: the ``tensorflow-depthwise`` adapter
(tensorflow_depthwise.py) with TensorFlow's oneDNN kernels pinned off (``TF_ENABLE_ONEDNN_OPTS=0``);
tf_common.py says why both are columns."""

from __future__ import annotations

from conformance.frameworks.tensorflow_depthwise import depthwise_conv2d
from conformance.frameworks.tf_common import judge_tf_error, tf_environment, tf_version

ARRAYS = "numpy"
ONEDNN = False


def version() -> str:
    return tf_version(ONEDNN)


def environment() -> dict[str, str]:
    return tf_environment(ONEDNN)


def judge_error(error: BaseException) -> str | None:
    return judge_tf_error(error)


conv2d = depthwise_conv2d(ONEDNN, __name__)
