"""OpenVINO's conventions, shared by ``openvino`` (f32) and ``openvino-auto`` (the default precision).

The model is built from opset ops: Parameter X (NCHW, torch's layout as is), the weight as a
Parameter reshaped in-graph to GroupConvolution's 5-D filter ``[G, C_out/G, C_in/G, kH, kW]`` (torch's
``(C_out, C_in/G, kH, kW)`` holds group g's rows at ``g*C_out/G ...``, so a plain reshape is right),
``pads_begin = [top, left]``, ``pads_end = [bottom, right]``. Padding modes: a ``Pad`` node in front
(reflect -> "reflect", replicate -> "edge"); OpenVINO's Pad has no circular mode: Unsupported. The
group count is the filter's leading dimension, so a groups value that does not divide C_out (or is
not positive) cannot be expressed: Unsupported. Bias: an ``Add`` of the bias reshaped to
``(1, C_out, 1, 1)``. OpenVINO's own errors (shape inference, a bad argument) are RuntimeErrors.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from conformance.frameworks.layer import check_padding_mode, explicit_padding, pair, require_batched
from conformance.judging.outcomes import Unsupported

OV_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge"}


def ov_version(precision: str) -> str:
    import openvino as ov

    return f"openvino {ov.get_version()}, CPU, inference precision {precision}"


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
    require_batched(input, "ov GroupConvolution")
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
    return np.asarray(compiled(feeds)[0])


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
    element = ov.Type(np.asarray(input).dtype)
    x = ops.parameter(list(np.shape(input)), element, name="X")
    w = ops.parameter(list(np.shape(weight)), element, name="W")
    parameters = [x, w]
    conv_input, pads_begin, pads_end = x, [top, left], [bottom, right]
    if padding_mode != "zeros":
        conv_input = ops.pad(x, [0, 0, top, left], [0, 0, bottom, right], mode)
        pads_begin, pads_end = [0, 0], [0, 0]
    # (C_out, C_in/G, kH, kW) -> (G, C_out/G, C_in/G, kH, kW)
    filters = ops.reshape(w, [groups, out_channels // groups, in_per_group, kernel_h, kernel_w], special_zero=False)
    output = ops.group_convolution(conv_input, filters, list(pair(stride)), pads_begin, pads_end, list(pair(dilation)))
    if bias is not None:
        b = ops.parameter([out_channels], element, name="B")
        parameters.append(b)
        output = ops.add(output, ops.reshape(b, [1, out_channels, 1, 1], special_zero=False))
    model = ov.Model([output], parameters, "grouped_conv")
    return ov.Core().compile_model(model, "CPU", config)
