"""TensorFlow's conventions, shared by ``tensorflow``, ``tensorflow-no-onednn``, ``tensorflow-depthwise``
and ``keras``.

oneDNN: TensorFlow's x86 CPU build carries two kernel sets for Conv2D, its own and oneDNN's
(``_MklNativeConv2D``). Which one runs is decided once, when TensorFlow is imported, from
``TF_ENABLE_ONEDNN_OPTS`` or, when that is unset, from the processor (on by default only where the
CPU has AVX-512 VNNI/BF16 or AMX). The two sets disagree on some layers (an empty batch, a 2-D
input), so a verdict must never depend on the processor: each adapter pins the variable before
importing TensorFlow (:func:`import_tensorflow`), over whatever the environment says, and checks
that the pin took (a TensorFlow imported earlier in the same process with the other setting
cannot be switched: that is the adapter's error, :class:`OneDnnPinNotApplied`).

Layouts: TensorFlow's CPU kernels compute NHWC (NCHW only with oneDNN), so the input goes
NCHW -> NHWC by ``tf.transpose(x, (0, 2, 3, 1))`` and the output back by ``(0, 3, 1, 2)``.
Explicit padding is a list per NHWC dimension: ``[[0, 0], [top, bottom], [left, right], [0, 0]]``.
``tf.pad`` has "REFLECT" (torch's reflect) and "SYMMETRIC" (which repeats the edge value: no torch
mode), but no replicate and no circular: those are Unsupported. TensorFlow's deliberate errors
(``InvalidArgumentError``: a bad shape or argument) become ValueError, its ``UnimplementedError``
Unsupported; the message is TensorFlow's own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from conformance.frameworks.adapter_errors import judge_adapter_error
from conformance.frameworks.layer import check_padding_mode, explicit_padding, kernel_hw
from conformance.judging.outcomes import ADAPTER_ERROR, Unsupported

TF_PAD_MODES = {"zeros": "CONSTANT", "reflect": "REFLECT"}
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


class OneDnnPinNotApplied(RuntimeError):
    """TensorFlow was already imported in this process with the other oneDNN setting."""


def import_tensorflow(onednn: bool) -> Any:
    """TensorFlow, imported with its oneDNN kernels pinned on or off (see the module docstring)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no banner per process on stderr
    if "tensorflow" not in sys.modules:
        os.environ[ONEDNN_VARIABLE] = "1" if onednn else "0"  # the adapter's pin wins over the environment's
    import tensorflow as tf

    if onednn_enabled() != onednn:
        raise OneDnnPinNotApplied(
            f"TensorFlow was imported in this process with oneDNN {'on' if not onednn else 'off'} before this "
            f"adapter could pin it {'on' if onednn else 'off'} ({ONEDNN_VARIABLE} is read once, at import): "
            "run this column in its own process (the matrix and `conformance run` do)"
        )
    return tf


def onednn_enabled() -> bool:
    """Whether the TensorFlow imported in this process runs its oneDNN kernels."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def tf_version(onednn: bool) -> str:
    tf = import_tensorflow(onednn)
    return f"tensorflow {tf.__version__}, CPU, NHWC, oneDNN {'on' if onednn else 'off'} ({ONEDNN_VARIABLE} pinned)"


def tf_environment(onednn: bool) -> dict[str, str]:
    """The settings that change TensorFlow's answer, as pinned and as found after the import."""
    tf = import_tensorflow(onednn)
    return {
        "tensorflow.version": tf.__version__,
        "tensorflow.onednn": "on" if onednn_enabled() else "off",
        "tensorflow.onednn_pin": f"{ONEDNN_VARIABLE}={'1' if onednn else '0'}",
        "tensorflow.threads.intra_op": str(tf.config.threading.get_intra_op_parallelism_threads()),
    }


def judge_tf_error(error: BaseException) -> str | None:
    """A failed oneDNN pin, or a line of the adapter failing, is the adapter's own error; the rest
    follows the default rule (TensorFlow's errors are already translated by :func:`tf_verdicts`)."""
    return ADAPTER_ERROR if isinstance(error, OneDnnPinNotApplied) else judge_adapter_error(error)


@contextmanager
def tf_verdicts(tf: Any, op: str) -> Iterator[None]:
    try:
        yield
    except tf.errors.UnimplementedError as exc:
        raise Unsupported(f"{op}: {type(exc).__name__}: {exc.message}") from exc
    except tf.errors.InvalidArgumentError as exc:
        raise ValueError(f"{op}: {type(exc).__name__}: {exc.message}") from exc


def nhwc_padded(tf: Any, input: Any, weight: Any, padding: Any, dilation: Any, padding_mode: str) -> tuple[Any, list]:
    """(the NHWC input, already padded for a padding mode; the conv's explicit NHWC padding list)."""
    mode = check_padding_mode(padding_mode, TF_PAD_MODES, "tf.pad")
    (top, bottom), (left, right) = explicit_padding(padding, kernel_hw(weight), dilation)
    x = tf.transpose(tf.convert_to_tensor(input), (0, 2, 3, 1))  # NCHW -> NHWC
    pads = [[0, 0], [top, bottom], [left, right], [0, 0]]
    if padding_mode != "zeros":
        return tf.pad(x, pads, mode=mode), [[0, 0], [0, 0], [0, 0], [0, 0]]
    return x, pads
