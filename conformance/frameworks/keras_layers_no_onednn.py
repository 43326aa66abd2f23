"""Built-in ``keras-no-onednn``: the ``keras`` adapter (keras_layers.py) with TensorFlow's oneDNN kernels
pinned off (``TF_ENABLE_ONEDNN_OPTS=0``); tf_common.py says why both are columns."""

from __future__ import annotations

from conformance.frameworks.keras_layers import keras_conv2d, keras_environment, keras_version
from conformance.frameworks.tf_common import judge_tf_error

ARRAYS = "numpy"
ONEDNN = False


def version() -> str:
    return keras_version(ONEDNN)


def environment() -> dict[str, str]:
    return keras_environment(ONEDNN)


def judge_error(error: BaseException) -> str | None:
    return judge_tf_error(error)


conv2d = keras_conv2d(ONEDNN, __name__)
