"""Built-in ``iree``: the one-node ONNX model of the ``onnxruntime`` column (onnx_model.py: ``Conv`` /
``ConvTranspose`` with ``group``, explicit pads, a ``Pad`` node for padding modes; X, W and B graph
inputs), imported into MLIR by IREE's ONNX importer (what ``iree-import-onnx`` runs: ONNX shape
inference, then ``onnx_importer``), compiled by ``iree-compile`` for ``llvm-cpu`` and run by the IREE
runtime on the ``local-sync`` driver (one thread).

Pinned: ``--iree-llvmcpu-target-cpu=generic`` (the default would follow the host processor's
features, so a verdict could change from machine to machine), ``--iree-input-demote-f64-to-f32=false``
(by default the compiler computes a float64 model in float32, and its float64 inputs then no longer
fit the compiled function's buffers: the runtime fails with OUT_OF_RANGE), the ``local-sync`` driver,
and circular padding written as ``Slice`` + ``Concat`` nodes (what torch.onnx's TorchScript exporter
writes, and what the ``openvino`` column builds), not ``Pad(mode="wrap")``: iree-compile 3.13 never
finishes a model with a ``Pad`` "wrap" (torch-mlir's ``torch-decompose-complex-ops`` rewrites the
``aten.pad`` "circular" it imports forever, iree-org/iree#24585, open; fix proposed in
llvm/torch-mlir#4648), so with it every circular cell's verdict would be "killed at the time limit",
a verdict that depends on the machine's speed (tests/test_frameworks_runtimes.py keeps a sentinel
that fails once an IREE release compiles it). The tensors
are graph inputs, so a compiled module depends only on the layer's shapes and arguments and is reused
for a case's repeated calls. The compiler's error for a model it will not compile
(``CompilerToolError``: its diagnostics are kept) is a refusal; the runtime's own errors are
ValueError/RuntimeError, refusals by the default rule. A compiler that dies or runs past
COMPILE_TIMEOUT is a crash.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from conformance.frameworks.adapter_errors import judge_native_error, translating
from conformance.frameworks.layer import functional_conv_transposes, functional_convs
from conformance.frameworks.onnx_model import conv_model, conv_transpose_model

ARRAYS = "numpy"
judge_error = judge_native_error  # the adapter hook: a failure inside translating() is adapter_error
TARGET = "llvm-cpu"
TARGET_CPU = "generic"
COMPILE_FLAGS = (f"--iree-llvmcpu-target-cpu={TARGET_CPU}", "--iree-input-demote-f64-to-f32=false")
DRIVER = "local-sync"
CIRCULAR_PADDING = "Slice+Concat"  # onnx_model.CIRCULAR_TRANSLATIONS; "Pad" hangs iree-compile (#24585)
COMPILE_TIMEOUT = 120.0  # seconds; a one-layer model compiles in 1-2 s here: a safety net, no pinned cell hits it
_MODULES: OrderedDict[bytes, bytes] = OrderedDict()  # model bytes -> compiled module (vmfb)
_KEEP = 16


def version() -> str:
    from importlib.metadata import version as installed

    return (
        f"iree-base-compiler {installed('iree-base-compiler')}, iree-base-runtime {installed('iree-base-runtime')} "
        f"(onnx {installed('onnx')}); {TARGET}, target-cpu={TARGET_CPU}, driver {DRIVER}"
    )


def environment() -> dict[str, str]:
    """The settings that change IREE's code path."""
    from importlib.metadata import version as installed

    return {
        "iree.compiler": installed("iree-base-compiler"),
        "iree.runtime": installed("iree-base-runtime"),
        "iree.target": TARGET,
        "iree.target_cpu": TARGET_CPU,
        "iree.driver": DRIVER,
        "iree.demote_f64_to_f32": "false",
        "iree.circular_padding": CIRCULAR_PADDING,
    }


def _conv(
    dims: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    padding_mode: str,
) -> np.ndarray:
    with translating("iree"):
        model, feeds = conv_model(
            input, weight, bias, stride, padding, dilation, groups, padding_mode, dims, circular=CIRCULAR_PADDING
        )
    return _run(model, feeds)


def _conv_transpose(
    dims: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: int,
    dilation: Any,
) -> np.ndarray:
    with translating("iree"):
        model, feeds = conv_transpose_model(
            input, weight, bias, stride, padding, output_padding, groups, dilation, dims
        )
    return _run(model, feeds)


def _run(model: Any, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import iree.runtime as runtime

    key = model.SerializeToString()
    compiled = _MODULES.get(key)
    if compiled is None:
        compiled = _compile(_import(model))
        _MODULES[key] = compiled
        while len(_MODULES) > _KEEP:
            _MODULES.popitem(last=False)
    context = runtime.SystemContext(config=runtime.Config(DRIVER))
    context.add_vm_module(runtime.VmModule.copy_buffer(context.instance, compiled))
    function = context.modules.module[model.graph.name]
    return np.asarray(function(*feeds.values()).to_host())


def _import(model: Any) -> str:
    """The model as MLIR (torch dialect), as ``iree-import-onnx`` writes it."""
    import onnx
    from iree.compiler.extras import onnx_importer
    from iree.compiler.ir import Context

    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    info = onnx_importer.ModelInfo(inferred)
    module = info.create_module(context=Context()).operation
    onnx_importer.NodeImporter.define_function(info.main_graph, module).import_all()
    return module.get_asm()


class CompilerCrashed(Exception):
    """iree-compile died (a signal, an LLVM crash report) or ran past COMPILE_TIMEOUT: a crash, not a refusal."""


def _compile(mlir: str) -> bytes:
    """``iree-compile`` on the MLIR (what ``iree.compiler.compile_str`` runs), with a time limit: a
    compile that does not end is killed here, so no compiler process outlives the worker."""
    import subprocess

    from iree.compiler.tools.binaries import find_tool

    command = [
        find_tool("iree-compile"),
        "-",
        "--iree-input-type=onnx",
        "--iree-vm-bytecode-module-output-format=flatbuffer-binary",
        f"--iree-hal-target-backends={TARGET}",
        f"--iree-llvmcpu-embedded-linker-path={find_tool('iree-lld')}",
        *COMPILE_FLAGS,
    ]
    try:
        done = subprocess.run(command, input=mlir.encode(), capture_output=True, timeout=COMPILE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CompilerCrashed(f"iree-compile did not finish within {COMPILE_TIMEOUT:g} s (killed)") from None
    errors = done.stderr.decode(errors="replace")
    if done.returncode < 0 or "PLEASE submit a bug report" in errors or "Stack dump" in errors:
        raise CompilerCrashed(f"iree-compile crashed (status {done.returncode}): {_diagnostics(errors)}")
    if done.returncode != 0:  # its diagnostics: the compiler refuses the model
        raise RuntimeError(f"iree-compile: {_diagnostics(errors)}")
    return done.stdout


def _diagnostics(text: str) -> str:
    """The compiler's error lines, without its command line and hints."""
    lines = [line.strip() for line in text.splitlines() if "error:" in line]
    return " | ".join(lines[:3]) or text.strip()[:500]


# The torch.nn.functional signatures, one per rank, each calling the one op of that kind above.
conv1d, conv2d, conv3d = functional_convs(_conv)
conv_transpose1d, conv_transpose2d, conv_transpose3d = functional_conv_transposes(_conv_transpose)
