"""ONNX Runtime's Python exceptions derive from ``Exception`` only; the harness judges a plain
Exception as a crash. This translates the runtime's deliberate verdicts into the plug-in
vocabulary (docs/frameworks.md): NOT_IMPLEMENTED (no kernel for this type or attribute) is
Unsupported; FAIL, INVALID_ARGUMENT, INVALID_GRAPH and RUNTIME_EXCEPTION are refusals (RuntimeError
/ ValueError), with the runtime's own message and type name kept."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from conformance.judging.outcomes import Unsupported


@contextmanager
def ort_verdicts(what: str) -> Iterator[None]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    try:
        yield
    except state.NotImplemented as exc:
        raise Unsupported(f"{what}: ONNX Runtime NotImplemented: {exc}") from exc
    except (state.InvalidArgument, state.InvalidGraph) as exc:
        raise ValueError(f"{what}: ONNX Runtime {type(exc).__name__}: {exc}") from exc
    except (state.Fail, state.RuntimeException) as exc:
        raise RuntimeError(f"{what}: ONNX Runtime {type(exc).__name__}: {exc}") from exc


_SESSIONS: OrderedDict[bytes, Any] = OrderedDict()  # onnxruntime InferenceSessions
_KEEP = 8  # sessions kept: a case calls the same model several times (and `bench` many times)


def run_in_onnxruntime(model_bytes: bytes, feeds: dict, by_position: bool = False) -> object:
    """Run a serialized model on the CPU execution provider; its first output. ``by_position``:
    the feeds' values go to the model's inputs in order, whatever the exporter named them.
    The session of a model seen recently is reused (the tensors are inputs, not part of the model)."""
    import onnxruntime as ort

    session = _SESSIONS.get(model_bytes)
    if session is None:
        with ort_verdicts("InferenceSession"):
            session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
        _SESSIONS[model_bytes] = session
        while len(_SESSIONS) > _KEEP:
            _SESSIONS.popitem(last=False)
    with ort_verdicts("run"):
        names = [i.name for i in session.get_inputs()]
        if by_position:
            return session.run(None, dict(zip(names, feeds.values(), strict=False)))[0]
        return session.run(None, {name: feeds[name] for name in names if name in feeds})[0]
