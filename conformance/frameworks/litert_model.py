"""A one-layer TFLite model, converted by TensorFlow's TFLite converter and run by the LiteRT
interpreter (``ai-edge-litert``): the columns ``litert`` (the interpreter's default CPU delegate,
XNNPACK) and ``litert-builtin`` (``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``: TFLite's own
builtin kernels, XNNPACK off).

The model is what a porter converts: a ``tf.function`` on an NHWC input of the case's shape whose
weight and bias are constants (TFLite's convolution kernels take constant filters), holding
``tf.nn.depthwise_conv2d`` for a depthwise or depth-multiplier layer (groups == C_in, which the
converter writes as DEPTHWISE_CONV_2D) and a grouped ``tf.nn.conv2d`` for any other (CONV_2D, its
group count inferred from the filter's input depth), then ``tf.nn.bias_add``. Layouts as in
tf_common.py and tensorflow_depthwise.py: NCHW <-> NHWC by ``tf.transpose`` outside the model, filter
OIHW -> HWIO (or ``(kH, kW, C, mult)`` for depthwise). Explicit pads are a ``tf.pad`` in the model
(the converter writes a PAD op), padding modes ``tf.pad`` "REFLECT" (no replicate, no circular).
One interpreter thread, pinned. TensorFlow's errors while tracing (a shape it refuses) become
refusals as in tf_common.py; the converter's refusal of a model (``ConverterError``) is a refusal
with its message; the interpreter's ``RuntimeError``/``ValueError`` are refusals by the default rule.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from conformance.frameworks.adapter_errors import translating
from conformance.frameworks.layer import check_padding_mode, explicit_padding, kernel_hw, pair
from conformance.frameworks.tf_common import TF_PAD_MODES, import_tensorflow, tf_verdicts
from conformance.judging.outcomes import Unsupported

XNNPACK = "xnnpack"
BUILTIN = "builtin"
THREADS = 1
_MODELS: OrderedDict[tuple, bytes] = OrderedDict()  # a case calls the same layer several times
_KEEP = 8


# TensorFlow only converts the model here (LiteRT runs it); its oneDNN switch is pinned all the same,
# so the process is the same on every processor.
CONVERTER_ONEDNN = True


def litert_version(kernels: str) -> str:
    from importlib.metadata import version as installed

    tf = import_tensorflow(CONVERTER_ONEDNN)
    which = "XNNPACK delegate (default)" if kernels == XNNPACK else "builtin kernels, no default delegate"
    converter = f"converter: tensorflow {tf.__version__}"
    return f"ai-edge-litert {installed('ai-edge-litert')}, {which}, {THREADS} thread; {converter}"


def litert_environment(kernels: str) -> dict[str, str]:
    """The settings that change LiteRT's code path."""
    from importlib.metadata import version as installed

    return {
        "litert.version": installed("ai-edge-litert"),
        "litert.kernels": kernels,
        "litert.threads": str(THREADS),
        "litert.converter": f"tensorflow {import_tensorflow(CONVERTER_ONEDNN).__version__}",
        "litert.converter_onednn": "on" if CONVERTER_ONEDNN else "off",
    }


def conv2d_litert(
    kernels: str,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    padding_mode: str,
) -> np.ndarray:
    tf = import_tensorflow(CONVERTER_ONEDNN)
    with translating("litert"):
        mode = check_padding_mode(padding_mode, TF_PAD_MODES, "tf.pad")
        (top, bottom), (left, right) = explicit_padding(padding, kernel_hw(weight), dilation)
        unbatched = np.ndim(input) == 3
        channels = np.shape(input)[-3] if np.ndim(input) >= 3 else 0
        out_channels, filter_in = np.shape(weight)[0], np.shape(weight)[1]
        depthwise = groups == channels and filter_in == 1 and channels >= 1 and out_channels % channels == 0
        if not depthwise and (groups < 1 or filter_in * groups != channels):
            raise Unsupported(
                f"tf.nn.conv2d has no groups argument: it infers groups = C_in / filter_in = "
                f"{channels}/{filter_in}, so groups={groups} cannot be passed"
            )
        key = (kernels, np.shape(input), str(np.asarray(input).dtype), np.asarray(weight).tobytes(),
               None if bias is None else np.asarray(bias).tobytes(), np.shape(weight), pair(stride),
               (top, bottom, left, right), pair(dilation), groups, padding_mode)  # fmt: skip
    with tf_verdicts(tf, "LiteRT model"):
        x = tf.constant(input)
        if unbatched:
            x = tf.expand_dims(x, 0)
        x = tf.transpose(x, (0, 2, 3, 1)) if len(x.shape) == 4 else x  # NCHW -> NHWC
        model = _MODELS.get(key)
        if model is None:
            model = _convert(tf, x, weight, bias, stride, dilation, depthwise, (top, bottom, left, right), mode)
            _MODELS[key] = model
            while len(_MODELS) > _KEEP:
                _MODELS.popitem(last=False)
        output = _run(model, x.numpy(), kernels)
        output = tf.constant(output)
        if len(output.shape) == 4:
            output = tf.transpose(output, (0, 3, 1, 2))  # NHWC -> NCHW
        if unbatched:
            output = tf.squeeze(output, 0)
        return output.numpy()


def _convert(
    tf: Any, x: Any, weight: Any, bias: Any, stride: Any, dilation: Any, depthwise: bool, pads: tuple, mode: str
) -> bytes:
    """The TFLite flatbuffer of the one-layer model (weights as constants)."""
    top, bottom, left, right = pads
    if depthwise:  # (C*mult, 1, kH, kW) -> (C, mult, kH, kW) -> (kH, kW, C, mult)
        channels = int(x.shape[-1])
        kernel_h, kernel_w = (int(size) for size in np.shape(weight)[2:])
        kernel = tf.transpose(tf.reshape(tf.constant(weight), (channels, -1, kernel_h, kernel_w)), (2, 3, 0, 1))
    else:
        kernel = tf.transpose(tf.constant(weight), (2, 3, 1, 0))  # OIHW -> HWIO
    bias_constant = None if bias is None else tf.constant(bias)
    strides, dilations = (1, *pair(stride), 1), pair(dilation)

    @tf.function(input_signature=[tf.TensorSpec(x.shape, x.dtype)])
    def layer(inputs: Any) -> Any:
        if any(pads):
            inputs = tf.pad(inputs, [[0, 0], [top, bottom], [left, right], [0, 0]], mode=mode)
        if depthwise:
            out = tf.nn.depthwise_conv2d(inputs, kernel, strides=strides, padding="VALID", dilations=dilations)
        else:
            out = tf.nn.conv2d(inputs, kernel, strides=strides, padding="VALID", dilations=(1, *dilations, 1))
        if bias_constant is not None:
            out = tf.nn.bias_add(out, bias_constant)
        return out

    converter = tf.lite.TFLiteConverter.from_concrete_functions([layer.get_concrete_function()], layer)
    try:
        return converter.convert()
    except Exception as exc:  # ConverterError derives from Exception only: the converter refuses the model
        if type(exc).__name__ != "ConverterError":
            raise
        raise RuntimeError(f"TFLite converter: {exc}") from exc


def _run(model: bytes, x: np.ndarray, kernels: str) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if kernels == XNNPACK else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_content=model, num_threads=THREADS, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return np.array(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
