"""Built-in ``executorch``: the one-layer torch module (``nn.Conv1d/2d/3d`` or
``nn.ConvTranspose1d/2d/3d``, torch_module.py's :func:`layer_module`, the case's weight and bias in
it) exported with ``torch.export.export`` for the case's input, lowered by ExecuTorch with the
XNNPACK partitioner (``to_edge_transform_and_lower(..., partitioner=[XnnpackPartitioner()])``,
``.to_executorch()``), and run by ExecuTorch's Python runtime (``executorch.runtime.Runtime``) on
the CPU. What a user deploying that layer to a phone does, on this machine's CPU.

It lives in its own venv (``.venv-frameworks/executorch``, built by ``make frameworks`` from
constraints-frameworks-executorch.txt): executorch 1.5.1 brings about fifty packages (coremltools,
torchao, pandas, scikit-learn, ...) that the harness's venv must not get. That venv has its own
torch, pinned to the harness's torch==2.13.0, so the exported module is the oracle's own layer.

What is translation here, and what is the framework: the module is built from the case's arguments
as a user writes it (torch's own constructor judges them), the program is exported for the case's
exact input (no dynamic shapes). An unbatched input is exported as it is: torch's own ``unsqueeze``
in the exported graph adds the batch axis. Padding modes are the module's own ``F.pad`` in the graph.
The XNNPACK partitioner takes the nodes it supports (float32 and float16 convolutions); whatever it
does not take (float64, bfloat16, a padding mode's pad, ...) stays in the program and runs on
ExecuTorch's portable CPU kernels: that is still ExecuTorch running it. :func:`lowering` says, for a
layer, which nodes went where. XNNPACK's threadpool is pinned to one thread.

Errors: ``torch.export``, the lowering and the runtime raise what they raise: a RuntimeError or
ValueError (the runtime's "Failed to execute method forward, error: 0x12") is a refusal by the
default rule, anything else a crash. The adapter's own code (the cache key, the layer's shape) runs
inside ``translating()``: its errors are ``adapter_error``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import sys
import tempfile
from collections import OrderedDict
from typing import Any

import numpy as np

from conformance.frameworks import own_venv, own_venv_facts
from conformance.frameworks.adapter_errors import judge_native_error, translating
from conformance.frameworks.layer import functional_conv_transposes, functional_convs
from conformance.frameworks.torch_module import as_torch, layer_module
from conformance.judging.outcomes import UNSUPPORTED

ARRAYS = "torch"  # the harness passes torch tensors in the case's dtype; NumPy arrays are answered in kind
THREADS = 1
PARTITIONER = "XnnpackPartitioner"
_PROGRAMS: OrderedDict[tuple, tuple[Any, Any]] = OrderedDict()  # key -> (program, method): a case calls a layer often
_KEEP = 8
_STATE: dict[str, Any] = {}
# ExecuTorch's runtime error codes (runtime/core/error.h) as its Python runtime reports them
# ("method->execute() failed with error 0x12"): the ones that say the runtime has no such kernel or
# feature are `unsupported`; the others (InvalidArgument: a kernel's argument check) refusals.
ERROR_CODES = {
    0x01: "Internal",
    0x02: "InvalidState",
    0x10: "NotSupported",
    0x11: "NotImplemented",
    0x12: "InvalidArgument",
    0x13: "InvalidType",
    0x14: "OperatorMissing",
    0x20: "NotFound",
    0x21: "MemoryAllocationFailed",
    0x22: "AccessFailed",
    0x23: "InvalidProgram",
    0x25: "OutOfResources",
    0x30: "DelegateInvalidCompatibility",
    0x31: "DelegateMemoryAllocationFailed",
    0x32: "DelegateInvalidHandle",
}
UNSUPPORTED_CODES = ("NotSupported", "NotImplemented", "OperatorMissing")
_CODE = re.compile(r"error (?:code )?(0x[0-9a-fA-F]+)")
LOG_LINES = 6  # of the runtime's log kept in an error's message


def _runtime() -> Any:
    """ExecuTorch's Python runtime, its XNNPACK threadpool pinned to THREADS (once per process)."""
    if "runtime" not in _STATE:
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime

        portable_lib._unsafe_reset_threadpool(THREADS)
        _STATE["runtime"] = Runtime.get()
    return _STATE["runtime"]


def version() -> str:
    import torch
    from executorch.version import __version__ as executorch_version

    return (
        f"executorch {executorch_version} ({PARTITIONER}, Python runtime, CPU, {THREADS} thread); "
        f"torch {torch.__version__}; {own_venv()}"
    )


def environment() -> dict[str, str]:
    """The settings that change ExecuTorch's code path, and the venv it runs in."""
    import torch
    from executorch.version import __version__ as executorch_version

    runtime = _runtime()
    from executorch.extension.pybindings import portable_lib

    return {
        "executorch.version": executorch_version,
        "executorch.partitioner": PARTITIONER,
        "executorch.fallback": "nodes the partitioner does not take run on ExecuTorch's portable CPU kernels",
        "executorch.runtime": "executorch.runtime.Runtime (pybindings portable_lib)",
        "executorch.backends": ", ".join(runtime.backend_registry.registered_backend_names),
        "executorch.xnnpack_threads": str(portable_lib._threadpool_get_thread_count()),
        "executorch.torch": torch.__version__,
        **own_venv_facts("executorch"),
    }


def _digest(tensor: Any) -> str:
    import torch

    dense = _dense(tensor.detach()).reshape(-1)
    return hashlib.sha256(dense.view(torch.uint8).numpy().tobytes()).hexdigest()


def _dense(tensor: Any) -> Any:
    """``tensor`` with torch's default (row-major) strides. The harness's empty arrays (a batch of 0)
    come with all strides 0, which torch accepts for an empty tensor (``is_contiguous()`` even says
    True) but ExecuTorch's emitter refuses ("0 in strides is not supported for ExecuTorch."): the
    example input a user exports is a fresh tensor, with the default strides. No element is computed."""
    import torch

    return tensor.clone(memory_format=torch.contiguous_format)


def _layer(
    transposed: bool,
    dims: int,
    input: Any,
    weight: Any,
    bias: Any,
    arguments: dict[str, Any],
) -> Any:
    with translating("executorch"):  # the adapter's own bookkeeping: the tensors as torch's, the cache key
        x, w = _dense(as_torch(input)), as_torch(weight)
        b = None if bias is None else as_torch(bias)
        key = (
            transposed,
            dims,
            tuple(x.shape),
            str(x.dtype),
            tuple(w.shape),
            str(w.dtype),
            _digest(w),
            None if b is None else (str(b.dtype), _digest(b)),
            repr(sorted(arguments.items())),
        )
    cached = _PROGRAMS.get(key)
    if cached is None:
        module = layer_module(dims, transposed, w, b, **arguments)  # torch's constructor judges the layer
        program = _lower(module, x)
        runtime = _runtime()
        method = _logged(lambda: runtime.load_program(program.buffer).load_method("forward"))
        cached = _PROGRAMS[key] = (program, method)
        while len(_PROGRAMS) > _KEEP:
            _PROGRAMS.popitem(last=False)
    method = cached[1]
    outputs = _logged(lambda: method.execute([x]))
    output = outputs[0].clone()  # the runtime may reuse its output buffer on the next call
    if not isinstance(input, np.ndarray):
        return output
    with translating("executorch"):  # NumPy in, NumPy out (bfloat16 bit for bit, as as_torch took it)
        if str(output.dtype) == "torch.bfloat16":
            import ml_dtypes
            import torch

            return output.view(torch.uint16).numpy().view(ml_dtypes.bfloat16)
        return output.numpy()


def _logged(call: Any) -> Any:
    """``call()`` with the runtime's C++ log (written to file descriptor 2) caught: on an error the
    log's last lines (which kernel refused, and its check) and the code's name join the runtime's
    message ("failed with error 0x12"), which says neither; the log is passed on to stderr after."""
    with tempfile.TemporaryFile() as log:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            return call()
        except (RuntimeError, ValueError) as exc:
            os.dup2(saved, 2)
            log.seek(0)
            raise type(exc)(_with_log(str(exc), log.read().decode(errors="replace"))) from exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            os.write(2, log.read())


def _with_log(message: str, log: str) -> str:
    """The runtime's message, its error code named, and the log lines that say why.

    >>> log = "[a.cpp:1] Check failed (x): no\\n[m.cpp:9] arg 0 with type id 1"
    >>> _with_log("method->execute() failed with error 0x12", log)
    "method->execute() failed with error 0x12 (InvalidArgument); ExecuTorch's log: [a.cpp:1] Check failed (x): no"
    """
    match = _CODE.search(message)
    if match:
        message += f" ({ERROR_CODES.get(int(match.group(1), 16), 'unknown code')})"
    lines = [line.strip() for line in log.splitlines() if line.strip() and " with type id " not in line]
    if lines:
        message += "; ExecuTorch's log: " + " | ".join(lines[-LOG_LINES:])
    return message


def judge_error(error: BaseException) -> str | None:
    """The adapter hook: ``adapter_error`` for the adapter's own code (adapter_errors.py); ``unsupported``
    for the runtime's NotSupported, NotImplemented and OperatorMissing codes (no such kernel or
    feature); None otherwise (the default rule: a RuntimeError, e.g. InvalidArgument, is a refusal)."""
    verdict = judge_native_error(error)
    if verdict is None and any(f"({name})" in str(error) for name in UNSUPPORTED_CODES):
        return UNSUPPORTED
    return verdict


def _lower(module: Any, x: Any) -> Any:
    """``torch.export`` -> ``to_edge_transform_and_lower`` with the XNNPACK partitioner -> ``to_executorch``."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with contextlib.redirect_stdout(io.StringIO()):  # the exporters may print; the harness's output stays readable
        exported = torch.export.export(module, (x,))
        edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
        return edge.to_executorch()


def lowering(program: Any) -> dict[str, int]:
    """Which nodes of a lowered program's graph run where: ``{"xnnpack": delegate calls, "<op>":
    count of each op left for ExecuTorch's portable kernels}`` (for the docs and the tests)."""
    counts: dict[str, int] = {}
    for node in program.exported_program().graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        name = str(node.target)
        if getattr(node.target, "__name__", "") == "alloc":  # the out-variant's memory planning, no op
            continue
        if "executorch_call_delegate" in name:
            name = "xnnpack"
        elif name == "<built-in function getitem>":
            continue
        counts[name] = counts.get(name, 0) + 1
    return counts


def lowered(op: str, input: Any, weight: Any, bias: Any = None, **arguments: Any) -> dict[str, int]:
    """:func:`lowering` of the program this adapter builds for ``op`` (e.g. "conv2d") and these arguments."""
    transposed, dims = op.startswith("conv_transpose"), int(op[-2])
    arguments = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, **arguments}  # torch's defaults
    module = layer_module(dims, transposed, as_torch(weight), None if bias is None else as_torch(bias), **arguments)
    return lowering(_lower(module, _dense(as_torch(input))))


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
) -> Any:
    arguments = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=padding_mode)
    return _layer(False, dims, input, weight, bias, arguments)


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
    padding_mode: str,
) -> Any:
    arguments = dict(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
        padding_mode=padding_mode,  # the layer's constructor refuses any other than zeros, as torch's
    )
    return _layer(True, dims, input, weight, bias, arguments)


conv1d, conv2d, conv3d = functional_convs(_conv)
conv_transpose1d, conv_transpose2d, conv_transpose3d = functional_conv_transposes(
    _conv_transpose, takes_padding_mode=True
)
