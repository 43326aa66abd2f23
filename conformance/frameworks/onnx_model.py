"""A one-node ONNX ``Conv`` built by hand (the adapters ``onnxruntime`` and ``onnx-reference``).

ONNX takes torch's layouts as they are: X NCHW, W ``(C_out, C_in/group, kH, kW)``, attribute
``group``. Its ``pads`` lists all begins then all ends: ``[top, left, bottom, right]`` (torch's
``F.pad`` lists the last dimension first: ``(left, right, top, bottom)`` — the classic mix-up).
Explicit pads are used for "same" too, not ``auto_pad``, which differs from torch where dilation
makes the total padding odd. Padding modes are a ``Pad`` node in front (reflect -> "reflect",
replicate -> "edge", circular -> "wrap", which needs opset 19; ``circular="Slice+Concat"`` builds circular
padding as torch.onnx's TorchScript exporter writes it instead: per spatial axis, a ``Concat`` of the
input's last ``before`` rows (a ``Slice``), the input and its first ``after`` rows; the ``iree``
column pins it). X, W and B are graph inputs, so the
runtime sees the case's values, not folded constants. torch's unbatched ``(C, *spatial)`` input
gets its batch axis from an ``Unsqueeze`` node in front, removed by a ``Squeeze`` node after the
convolution (what torch does itself, and what torch.onnx exports).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from conformance.frameworks.layer import check_padding_mode, explicit_padding, kernel_hw, ntuple

OPSET = 22  # the first opset whose Conv allows bfloat16 (and Pad "wrap" needs 19)
IR_VERSION = 10
ONNX_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
CIRCULAR_TRANSLATIONS = ("Pad", "Slice+Concat")  # Pad(mode="wrap"), or torch.onnx's Slice + Concat
INT64_MAX = np.iinfo(np.int64).max  # a Slice end past the axis: to its end


def conv_model(
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    padding_mode: str,
    dims: int = 2,
    circular: str = "Pad",
) -> tuple[Any, dict[str, np.ndarray]]:
    """(the ModelProto, its feeds) for torch's conv{dims}d arguments (ONNX's Conv is N-d: pads list
    every dimension's begin, then every end). ``circular`` (one of CIRCULAR_TRANSLATIONS) is how
    circular padding is written: a ``Pad(mode="wrap")`` node, or ``Slice`` + ``Concat`` nodes."""
    if circular not in CIRCULAR_TRANSLATIONS:  # checked first: an argument error, whether or not onnx imports
        raise ValueError(f"circular={circular!r}: not one of {CIRCULAR_TRANSLATIONS}")
    from onnx import helper, numpy_helper

    mode = check_padding_mode(padding_mode, ONNX_PAD_MODES, "ONNX Pad")
    pads_per_dim = explicit_padding(padding, kernel_hw(weight, dims), dilation)
    begins, ends = [b for b, _ in pads_per_dim], [e for _, e in pads_per_dim]
    element_type = helper.np_dtype_to_tensor_dtype(np.asarray(input).dtype)
    feeds = {"X": np.asarray(input), "W": np.asarray(weight)}
    inputs = [
        helper.make_tensor_value_info("X", element_type, list(np.shape(input))),
        helper.make_tensor_value_info("W", element_type, list(np.shape(weight))),
    ]
    nodes: list[Any] = []
    initializers: list[Any] = []
    conv_pads = begins + ends  # 2-D: [top, left, bottom, right]
    conv_input, unbatched = _batched(nodes, initializers, "X", np.ndim(input) == dims + 1)
    if padding_mode == "circular" and circular == "Slice+Concat":
        conv_input = _circular_pad(nodes, initializers, conv_input, pads_per_dim)
        conv_pads = [0] * (2 * dims)
    elif padding_mode != "zeros":
        pads = np.array([0, 0, *begins, 0, 0, *ends], dtype=np.int64)  # all begins, then all ends
        initializers.append(numpy_helper.from_array(pads, "pads"))
        nodes.append(helper.make_node("Pad", [conv_input, "pads"], ["X_padded"], mode=mode))
        conv_input, conv_pads = "X_padded", [0] * (2 * dims)
    conv_inputs = [conv_input, "W"]
    if bias is not None:
        feeds["B"] = np.asarray(bias)
        inputs.append(helper.make_tensor_value_info("B", element_type, list(np.shape(bias))))
        conv_inputs.append("B")
    nodes.append(
        helper.make_node(
            "Conv",
            conv_inputs,
            ["Y_batched" if unbatched else "Y"],
            group=int(groups),
            strides=list(ntuple(stride, dims)),
            dilations=list(ntuple(dilation, dims)),
            pads=conv_pads,
        )
    )
    _unbatched_output(nodes, unbatched)
    graph = helper.make_graph(
        nodes,
        "grouped_conv",
        inputs,
        [helper.make_tensor_value_info("Y", element_type, None)],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION  # what opset 22 needs; onnx 1.23 would write 14, newer than ONNX Runtime 1.30 reads
    return model, feeds


def conv_transpose_model(
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: int,
    dilation: Any,
    dims: int,
) -> tuple[Any, dict[str, np.ndarray]]:
    """(the ModelProto, its feeds) for torch's conv_transpose{dims}d arguments: a one-node
    ``ConvTranspose(group=groups)``. ONNX takes torch's transposed weight layout as is
    (C_in, C_out/groups, *kernel); its ``pads`` crop the output as torch's ``padding`` does (all
    begins, then all ends) and ``output_padding`` adds to the end, as in torch."""
    from onnx import helper

    element_type = helper.np_dtype_to_tensor_dtype(np.asarray(input).dtype)
    feeds = {"X": np.asarray(input), "W": np.asarray(weight)}
    inputs = [
        helper.make_tensor_value_info("X", element_type, list(np.shape(input))),
        helper.make_tensor_value_info("W", element_type, list(np.shape(weight))),
    ]
    if bias is not None:
        feeds["B"] = np.asarray(bias)
        inputs.append(helper.make_tensor_value_info("B", element_type, list(np.shape(bias))))
    crop = list(ntuple(padding, dims))
    nodes: list[Any] = []
    initializers: list[Any] = []
    x, unbatched = _batched(nodes, initializers, "X", np.ndim(input) == dims + 1)
    node = helper.make_node(
        "ConvTranspose",
        [x, *list(feeds)[1:]],
        ["Y_batched" if unbatched else "Y"],
        group=int(groups),
        strides=list(ntuple(stride, dims)),
        dilations=list(ntuple(dilation, dims)),
        pads=crop + crop,
        output_padding=list(ntuple(output_padding, dims)),
    )
    nodes.append(node)
    _unbatched_output(nodes, unbatched)
    graph = helper.make_graph(
        nodes,
        "grouped_conv_transpose",
        inputs,
        [helper.make_tensor_value_info("Y", element_type, None)],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model, feeds


def _batched(nodes: list[Any], initializers: list[Any], name: str, unbatched: bool) -> tuple[str, bool]:
    """(the tensor the convolution reads, whether an Unsqueeze node gave it its batch axis)."""
    if not unbatched:
        return name, False
    from onnx import helper, numpy_helper

    initializers.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "batch_axis"))
    nodes.append(helper.make_node("Unsqueeze", [name, "batch_axis"], [f"{name}_batched"]))
    return f"{name}_batched", True


def _unbatched_output(nodes: list[Any], unbatched: bool) -> None:
    """A Squeeze node from the convolution's ``Y_batched`` to the graph's output ``Y``, when the input had none."""
    if unbatched:
        from onnx import helper

        nodes.append(helper.make_node("Squeeze", ["Y_batched", "batch_axis"], ["Y"]))


def _circular_pad(nodes: list[Any], initializers: list[Any], name: str, pads_per_dim: Sequence[tuple[int, int]]) -> str:
    """Circular padding of the spatial axes from ONNX's own ``Slice`` and ``Concat`` (torch.onnx's
    TorchScript exporter writes it this way): per axis, the last ``before`` rows, the input, the first
    ``after`` rows. The name of the padded tensor."""
    from onnx import helper, numpy_helper

    def constant(label: str, value: int) -> str:
        initializers.append(numpy_helper.from_array(np.array([value], dtype=np.int64), label))
        return label

    for axis, (before, after) in enumerate(pads_per_dim, start=2):
        pieces = []
        if before:
            start, end = constant(f"wrap{axis}_before_start", -before), constant(f"wrap{axis}_before_end", INT64_MAX)
            nodes.append(
                helper.make_node("Slice", [name, start, end, constant(f"axis{axis}", axis)], [f"{name}_b{axis}"])
            )
            pieces.append(f"{name}_b{axis}")
        pieces.append(name)
        if after:
            start, end = constant(f"wrap{axis}_after_start", 0), constant(f"wrap{axis}_after_end", after)
            axes = f"axis{axis}" if before else constant(f"axis{axis}", axis)
            nodes.append(helper.make_node("Slice", [name, start, end, axes], [f"{name}_a{axis}"]))
            pieces.append(f"{name}_a{axis}")
        if len(pieces) > 1:
            nodes.append(helper.make_node("Concat", pieces, [f"{name}_wrap{axis}"], axis=axis))
            name = f"{name}_wrap{axis}"
    return name
