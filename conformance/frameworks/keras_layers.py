"""Built-in ``keras``: ``keras.layers.Conv2D(groups=groups)`` on the TensorFlow backend, called eagerly.

Layouts: ``data_format="channels_last"`` (the CPU default), so the input goes NCHW -> NHWC by
``keras.ops.transpose(x, (0, 2, 3, 1))`` and the output back. Kernel: Keras's ``(kH, kW, C_in/g,
C_out)`` is torch's weight transposed ``(2, 3, 1, 0)``. Padding: Conv2D knows only "valid" and
"same"; explicit amounts go through a ``ZeroPadding2D(((top, bottom), (left, right)))`` layer in
front. Keras has no reflect/replicate/circular padding layer: those modes are Unsupported.
Keras checks the layer when it is built (a ValueError, its refusal); TensorFlow's errors from
the backend are translated as for ``tensorflow`` (tf_common.py).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from conformance.frameworks.layer import check_padding_mode, explicit_padding, kernel_hw, pair, require_batched
from conformance.frameworks.tf_common import tf_verdicts

ARRAYS = "numpy"


def _keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def version() -> str:
    keras = _keras()
    return f"keras {keras.__version__} (backend {keras.backend.backend()}), channels_last"


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
    keras = _keras()
    require_batched(input, "keras.layers.Conv2D")
    check_padding_mode(padding_mode, {"zeros": "zeros"}, "Keras (only ZeroPadding2D)")
    same = padding == "same"
    (top, bottom), (left, right) = ((0, 0), (0, 0)) if same else explicit_padding(padding, kernel_hw(weight), dilation)
    with tf_verdicts("keras.layers.Conv2D"):
        return _call_layer(keras, input, weight, bias, stride, dilation, groups, same, (top, bottom, left, right))


def _call_layer(
    keras: Any,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    dilation: Any,
    groups: int,
    same: bool,
    pads: tuple[int, int, int, int],
) -> np.ndarray:
    top, bottom, left, right = pads
    out_channels = int(np.shape(weight)[0])
    layer = keras.layers.Conv2D(
        out_channels,
        kernel_hw(weight),
        strides=pair(stride),
        padding="same" if same else "valid",
        dilation_rate=pair(dilation),
        groups=groups,
        use_bias=bias is not None,
        data_format="channels_last",
        dtype=str(np.asarray(input).dtype),
    )
    x = keras.ops.convert_to_tensor(input)
    if len(x.shape) == 4:  # another rank has no layout to convert: the layer judges it as it is
        x = keras.ops.transpose(x, (0, 2, 3, 1))  # NCHW -> NHWC
    if (top, bottom, left, right) != (0, 0, 0, 0):
        x = keras.layers.ZeroPadding2D(
            ((top, bottom), (left, right)), data_format="channels_last", dtype=layer.dtype_policy
        )(x)
    layer.build(tuple(x.shape))
    kernel = np.transpose(weight, (2, 3, 1, 0))  # OIHW -> (kH, kW, C_in/g, C_out): a layout, set as the layer's weights
    layer.set_weights([kernel] if bias is None else [kernel, np.asarray(bias)])
    return keras.ops.convert_to_numpy(keras.ops.transpose(layer(x), (0, 3, 1, 2)))  # NHWC -> NCHW
