"""TensorFlow's conventions, shared by ``tensorflow`` and ``tensorflow-depthwise``.

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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from conformance.frameworks.layer import check_padding_mode, explicit_padding, kernel_hw
from conformance.judging.outcomes import Unsupported

TF_PAD_MODES = {"zeros": "CONSTANT", "reflect": "REFLECT"}


def import_tensorflow() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no banner per process on stderr
    import tensorflow as tf

    return tf


def tf_version() -> str:
    tf = import_tensorflow()
    return f"tensorflow {tf.__version__}, CPU, NHWC"


@contextmanager
def tf_verdicts(op: str) -> Iterator[None]:
    tf = import_tensorflow()
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
    x = tf.transpose(tf.constant(input), (0, 2, 3, 1))  # NCHW -> NHWC
    pads = [[0, 0], [top, bottom], [left, right], [0, 0]]
    if padding_mode != "zeros":
        return tf.pad(x, pads, mode=mode), [[0, 0], [0, 0], [0, 0], [0, 0]]
    return x, pads
