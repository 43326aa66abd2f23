"""Built-in ``keras``: ``keras.layers.Conv2D(groups=groups)`` on the TensorFlow backend, called eagerly.

Layouts: ``data_format="channels_last"`` (the CPU default), so the input goes NCHW -> NHWC by
``keras.ops.transpose(x, (0, 2, 3, 1))`` and the output back. Kernel: Keras's ``(kH, kW, C_in/g,
C_out)`` is torch's weight transposed ``(2, 3, 1, 0)``. Padding: Conv2D knows only "valid" and
"same"; explicit amounts go through a ``ZeroPadding2D(((top, bottom), (left, right)))`` layer in
front. Keras has no reflect/replicate/circular padding layer: those modes are Unsupported.
Keras checks the layer when it is built (a ValueError, its refusal); TensorFlow's errors from
the backend are translated as for ``tensorflow``, and TensorFlow's oneDNN kernels are pinned on, as
there (tf_common.py). torch's unbatched ``(C, H, W)`` input gets its batch axis from
``keras.ops.expand_dims``, removed from the output by ``keras.ops.squeeze``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from conformance.frameworks.layer import check_padding_mode, explicit_padding, kernel_hw, pair
from conformance.frameworks.tf_common import import_tensorflow, judge_tf_error, tf_environment, tf_verdicts

ARRAYS = "numpy"
ONEDNN = True


def _keras(onednn: bool) -> Any:
    os.environ["KERAS_BACKEND"] = "tensorflow"  # pinned: another backend is another framework
    import_tensorflow(onednn)  # TensorFlow first, so its oneDNN pin is in place before Keras imports it
    import keras

    return keras


def keras_version(onednn: bool) -> str:
    keras = _keras(onednn)
    return (
        f"keras {keras.__version__} (backend {keras.backend.backend()}), channels_last, "
        f"oneDNN {'on' if onednn else 'off'} (pinned)"
    )


def keras_environment(onednn: bool) -> dict[str, str]:
    keras = _keras(onednn)
    return {"keras.version": keras.__version__, "keras.backend": keras.backend.backend(), **tf_environment(onednn)}


def version() -> str:
    return keras_version(ONEDNN)


def environment() -> dict[str, str]:
    return keras_environment(ONEDNN)


def judge_error(error: BaseException) -> str | None:
    return judge_tf_error(error)


def keras_conv2d(onednn: bool, module: str) -> Callable[..., np.ndarray]:
    """``conv2d`` with torch.nn.functional's signature through a Keras Conv2D layer, TensorFlow's
    oneDNN pinned ``onednn``; named as an attribute of ``module`` (the adapter a repro imports)."""

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
        keras = _keras(onednn)
        check_padding_mode(padding_mode, {"zeros": "zeros"}, "Keras (only ZeroPadding2D)")
        same = padding == "same"
        (top, bottom), (left, right) = (
            ((0, 0), (0, 0)) if same else explicit_padding(padding, kernel_hw(weight), dilation)
        )
        with tf_verdicts(import_tensorflow(onednn), "keras.layers.Conv2D"):
            return _call_layer(keras, input, weight, bias, stride, dilation, groups, same, (top, bottom, left, right))

    conv2d.__module__ = module
    return conv2d


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
    unbatched = len(x.shape) == 3
    if unbatched:  # torch's (C, H, W): the batch axis torch itself would add
        x = keras.ops.expand_dims(x, 0)
    if len(x.shape) == 4:  # another rank has no layout to convert: the layer judges it as it is
        x = keras.ops.transpose(x, (0, 2, 3, 1))  # NCHW -> NHWC
    if (top, bottom, left, right) != (0, 0, 0, 0):
        x = keras.layers.ZeroPadding2D(
            ((top, bottom), (left, right)), data_format="channels_last", dtype=layer.dtype_policy
        )(x)
    layer.build(tuple(x.shape))
    kernel = np.transpose(weight, (2, 3, 1, 0))  # OIHW -> (kH, kW, C_in/g, C_out): a layout, set as the layer's weights
    layer.set_weights([kernel] if bias is None else [kernel, np.asarray(bias)])
    output = keras.ops.transpose(layer(x), (0, 3, 1, 2))  # NHWC -> NCHW
    return keras.ops.convert_to_numpy(keras.ops.squeeze(output, 0) if unbatched else output)


conv2d = keras_conv2d(ONEDNN, __name__)
