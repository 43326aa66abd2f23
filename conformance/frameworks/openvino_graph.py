"""OpenVINO's conventions, shared by ``openvino`` (f32) and ``openvino-bf16``.

The model is built from opset ops: Parameter X (NCHW, torch's layout as is), the weight as a
Parameter reshaped in-graph to GroupConvolution's 5-D filter ``[G, C_out/G, C_in/G, kH, kW]`` (torch's
``(C_out, C_in/G, kH, kW)`` holds group g's rows at ``g*C_out/G ...``, so a plain reshape is right),
``pads_begin = [top, left]``, ``pads_end = [bottom, right]``. torch's unbatched ``(C, H, W)`` input
gets its batch axis from an ``Unsqueeze`` node, removed from the output by ``Squeeze``. Padding
modes: a ``Pad`` node in front (reflect -> "reflect", replicate -> "edge"); OpenVINO's Pad has no
circular mode, so circular padding is composed as torch.onnx exports it: per spatial axis, a
``Concat`` of the input's last ``before`` rows (``Slice``), the input, and its first ``after`` rows.
The group count is the filter's leading dimension, so a groups value that does not divide C_out (or
is not positive) cannot be expressed: Unsupported. Bias: an ``Add`` of the bias reshaped to
``(1, C_out, 1, 1)``. OpenVINO's own errors (shape inference, a bad argument) are RuntimeErrors.

Precision: the CPU plugin's ``INFERENCE_PRECISION_HINT`` is always pinned (f32 or bf16), never left
to the processor's default, and :func:`ov_environment` records the precision the compiled model
resolved (a processor without bf16 may still compute f32). bfloat16 cases build ``ov.Type.bf16``
Parameters; OpenVINO's Python API hands a bf16 output back as a float16-typed array holding the
bf16 bits, so the adapter reads those bits as bfloat16 (ml_dtypes).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from conformance.frameworks.layer import check_padding_mode, explicit_padding, pair
from conformance.judging.outcomes import Unsupported

OV_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "circular"}
INT64_MAX = 2**63 - 1


def ov_version(precision: str) -> str:
    import openvino as ov

    return f"openvino {ov.get_version()}, CPU, INFERENCE_PRECISION_HINT={precision} (pinned)"


def ov_environment(precision: str) -> dict[str, str]:
    """The pinned hint, and the precision a compiled float32 model resolved on this processor."""
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 1, 1, 1], ov.Type.f32, name="X")
    probe = ov.Core().compile_model(ov.Model([ops.relu(x)], [x], "probe"), "CPU", precision_config(precision))
    return {
        "openvino.version": ov.get_version(),
        "openvino.inference_precision_hint": precision,
        "openvino.inference_precision": str(probe.get_property("INFERENCE_PRECISION_HINT").to_string()),
    }


def precision_config(precision: str) -> dict[str, str]:
    return {"INFERENCE_PRECISION_HINT": precision}


_COMPILED: OrderedDict[str, Any] = OrderedDict()
_KEEP = 8  # compiled models kept: the tensors are Parameters, so one model serves every call of a layer


def group_convolution(
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    padding_mode: str,
    config: dict[str, str],
) -> np.ndarray:
    feeds = [np.asarray(input), np.asarray(weight)] + ([] if bias is None else [np.asarray(bias)])
    key = repr(
        (
            np.shape(input),
            str(np.asarray(input).dtype),
            np.shape(weight),
            bias is None,
            stride,
            padding,
            dilation,
            groups,
            padding_mode,
            sorted(config.items()),
        )
    )
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = _compile(input, weight, bias, stride, padding, dilation, groups, padding_mode, config)
        _COMPILED[key] = compiled
        while len(_COMPILED) > _KEEP:
            _COMPILED.popitem(last=False)
    output = np.asarray(compiled(feeds)[0])
    if compiled.outputs[0].get_element_type().to_string() == "bf16":  # bf16 bits in a float16-typed array
        import ml_dtypes

        output = output.view(np.uint16).view(ml_dtypes.bfloat16)
    return output


def _compile(
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    padding_mode: str,
    config: dict[str, str],
) -> Any:
    import openvino as ov
    import openvino.opset13 as ops

    mode = check_padding_mode(padding_mode, OV_PAD_MODES, "OpenVINO Pad")
    out_channels, in_per_group, kernel_h, kernel_w = (int(v) for v in np.shape(weight))
    if groups < 1 or out_channels % groups:
        raise Unsupported(
            f"GroupConvolution takes the group count as the filter's leading dimension: groups={groups} "
            f"does not divide C_out={out_channels}"
        )
    (top, bottom), (left, right) = explicit_padding(padding, (kernel_h, kernel_w), dilation)
    element = element_type(np.asarray(input).dtype)
    x = ops.parameter(list(np.shape(input)), element, name="X")
    w = ops.parameter(list(np.shape(weight)), element, name="W")
    parameters = [x, w]
    unbatched = len(np.shape(input)) == 3
    batched = ops.unsqueeze(x, np.array([0], dtype=np.int64)) if unbatched else x
    conv_input, pads_begin, pads_end = batched, [top, left], [bottom, right]
    if padding_mode == "circular":
        conv_input = _circular_pad(ops, batched, ((top, bottom), (left, right)))
        pads_begin, pads_end = [0, 0], [0, 0]
    elif padding_mode != "zeros":
        conv_input = ops.pad(batched, [0, 0, top, left], [0, 0, bottom, right], mode)
        pads_begin, pads_end = [0, 0], [0, 0]
    # (C_out, C_in/G, kH, kW) -> (G, C_out/G, C_in/G, kH, kW)
    filters = ops.reshape(w, [groups, out_channels // groups, in_per_group, kernel_h, kernel_w], special_zero=False)
    output = ops.group_convolution(conv_input, filters, list(pair(stride)), pads_begin, pads_end, list(pair(dilation)))
    if bias is not None:
        b = ops.parameter([out_channels], element, name="B")
        parameters.append(b)
        output = ops.add(output, ops.reshape(b, [1, out_channels, 1, 1], special_zero=False))
    if unbatched:
        output = ops.squeeze(output, np.array([0], dtype=np.int64))
    model = ov.Model([output], parameters, "grouped_conv")
    return ov.Core().compile_model(model, "CPU", config)


def element_type(dtype: np.dtype) -> Any:
    """OpenVINO's element type for a NumPy dtype; ml_dtypes' bfloat16 is ``ov.Type.bf16`` (``ov.Type``
    does not know that NumPy extension type)."""
    import openvino as ov

    return ov.Type.bf16 if dtype.name == "bfloat16" else ov.Type(dtype)


def _circular_pad(ops: Any, x: Any, pads: tuple[tuple[int, int], ...]) -> Any:
    """Circular padding of the spatial axes from OpenVINO's own Slice and Concat (torch.onnx exports
    it the same way): per axis, the last ``before`` rows, the input, the first ``after`` rows."""
    for axis, (before, after) in enumerate(pads, start=2):
        pieces = []
        if before:
            pieces.append(ops.slice(x, np.array([-before]), np.array([INT64_MAX]), np.array([1]), np.array([axis])))
        pieces.append(x)
        if after:
            pieces.append(ops.slice(x, np.array([0]), np.array([after]), np.array([1]), np.array([axis])))
        x = ops.concat(pieces, axis) if len(pieces) > 1 else x
    return x
