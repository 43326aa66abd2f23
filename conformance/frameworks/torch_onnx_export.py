"""Shared by ``torch-onnx`` (dynamo=True) and ``torch-onnx-legacy`` (dynamo=False): export the
``nn.Conv2d`` (torch_module.py) for the case's input with ``torch.onnx.export``, run the exported
model in ONNX Runtime (CPU), with the runtime's errors translated as in ort_errors.py.

The model is exported for the exact input shape (no dynamic axes): what a user gets from
``torch.onnx.export(model, (example,))``. Exporter failures stay what they are: a refusal if the
exporter raises ValueError/RuntimeError (torch.onnx.errors.* are RuntimeErrors), otherwise a crash.
Exporting takes seconds, so the last few exported models are kept, keyed by the layer and its tensors.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections import OrderedDict
from typing import Any

import numpy as np

from conformance.frameworks.ort_errors import run_in_onnxruntime
from conformance.frameworks.torch_module import as_torch, conv_module

_EXPORTED: OrderedDict[tuple, bytes] = OrderedDict()
_KEEP = 8


def _key(dynamo: bool, input: np.ndarray, weight: np.ndarray, bias: Any, arguments: tuple) -> tuple:
    digest = hashlib.sha256()
    for array in (weight, bias):
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    return (dynamo, input.shape, str(input.dtype), weight.shape, bias is None, repr(arguments), digest.hexdigest())


def export_and_run(
    dynamo: bool,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    padding_mode: str,
) -> np.ndarray:
    input, weight = np.asarray(input), np.asarray(weight)
    bias = None if bias is None else np.asarray(bias)
    key = _key(dynamo, input, weight, bias, (stride, padding, dilation, groups, padding_mode))
    model_bytes = _EXPORTED.get(key)
    if model_bytes is None:
        module = conv_module(weight, bias, stride, padding, dilation, groups, padding_mode)
        example = (as_torch(input),)
        # the exporters print progress on stdout; the harness's own output stays readable
        with contextlib.redirect_stdout(io.StringIO()):
            model_bytes = _export(module, example, dynamo)
        _EXPORTED[key] = model_bytes
        while len(_EXPORTED) > _KEEP:
            _EXPORTED.popitem(last=False)
    return np.asarray(run_in_onnxruntime(model_bytes, {"input": input}, by_position=True))


def _export(module: Any, example: tuple, dynamo: bool) -> bytes:
    import torch

    if not dynamo:
        buffer = io.BytesIO()
        torch.onnx.export(
            module,
            example,
            buffer,  # type: ignore[arg-type]  # the legacy exporter takes a file object (not in torch's stubs)
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
        )
        return buffer.getvalue()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "conv.onnx")
        program = torch.onnx.export(module, example, dynamo=True, verbose=False)
        assert program is not None  # (narrowing: dynamo=True returns the program)
        program.save(path)
        with open(path, "rb") as file:
            return file.read()
