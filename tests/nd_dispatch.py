"""A test-only stand-in for the op dispatch of ``--impl MODULE`` (the real one lives in
conformance/implementations.py on the gate branch): an Implementation that picks the function by
``case.conv.functional_name`` from a mapping, and ``<name>_backward`` likewise.

Used by the kill matrix and the N-d tests until the dispatch is merged; it converts nothing and
decides nothing that the real dispatch decides differently (the reference in float64, plug-ins in
the case's dtype, keyword arguments from ``case.conv.functional_kwargs()``).
"""
from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from conformance.implementations import Implementation
from conformance.outcomes import Unsupported
from conformance.schema import Case

OPS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")


def _no_backward(*args: Any, **kwargs: Any) -> Any:  # placeholder: `backward` below dispatches
    raise Unsupported("no backward")


@dataclass(frozen=True)
class DispatchingImplementation(Implementation):
    """``functions``: op name (conv1d ... conv_transpose3d, and ``<op>_backward``) -> function."""

    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)

    def _function(self, name: str) -> Callable[..., Any]:
        if name not in self.functions:
            raise Unsupported(f"{self.name} defines no {name}")
        return self.functions[name]

    def _arguments(self, case: Case, *arrays: np.ndarray | None) -> tuple[list[Any], dict[str, Any]]:
        dtype = self.call_dtype(case)
        cast = [None if a is None else np.ascontiguousarray(a, dtype=dtype) for a in arrays]
        kwargs = {key: tuple(value) if isinstance(value, list) else value
                  for key, value in case.conv.functional_kwargs().items()}
        return cast, kwargs

    def forward(self, case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        function = self._function(case.conv.functional_name)
        arrays, kwargs = self._arguments(case, x, weight, bias)
        return np.asarray(function(*arrays, **kwargs))

    def backward(self, case: Case, grad_output: np.ndarray, x: np.ndarray, weight: np.ndarray,
                 bias: np.ndarray | None) -> tuple[Any, ...]:
        function = self._function(f"{case.conv.functional_name}_backward")
        arrays, kwargs = self._arguments(case, grad_output, x, weight, bias)
        return function(*arrays, **kwargs)


def functions_of(module: Any) -> dict[str, Callable[..., Any]]:
    """The ops (and backwards) ``module`` defines."""
    names = OPS + tuple(f"{op}_backward" for op in OPS)
    return {name: getattr(module, name) for name in names if callable(getattr(module, name, None))}


def module_implementation(module: Any, name: str | None = None, *, float64: bool = False,
                          replace: Mapping[str, Callable[..., Any]] | None = None,
                          forward_only: bool = False) -> DispatchingImplementation:
    """The implementation of ``module``'s ops; ``replace`` swaps some (a planted bug);
    ``forward_only``: offer no backward (backward cases are then skipped after their forward check)."""
    functions = {**functions_of(module), **(replace or {})}
    if forward_only:
        functions = {key: value for key, value in functions.items() if not key.endswith("_backward")}
    has_backward = any(key.endswith("_backward") for key in functions)
    return DispatchingImplementation(name or getattr(module, "__name__", "module"), _no_backward,
                                     computes_in_float64=float64,
                                     backward_function=_no_backward if has_backward else None,
                                     backward_name=f"{name or 'module'}.<op>_backward", functions=functions)


def reference_implementation() -> DispatchingImplementation:
    """reference_impl's ops in float64 (the ones it has; others are Unsupported), as --impl's default."""
    import reference_impl

    return module_implementation(reference_impl, "reference", float64=True)


def namespace(**functions: Callable[..., Any]) -> types.SimpleNamespace:
    return types.SimpleNamespace(**functions)
