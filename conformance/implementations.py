"""The implementation under test: the built-in reference, or any plug-in named MODULE:FUNCTION.

A plug-in has the signature of ``torch.nn.functional.conv2d`` over NumPy arrays::

    def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kw) -> array

``stride``, ``padding`` and ``dilation`` are passed as the case wrote them (an int, a tuple
(h, w), or the strings "same"/"valid"); ``padding_mode=`` is passed only when the case's mode
is not "zeros". Invalid configurations must raise an exception.

A plug-in may also offer its backward pass, found next to the forward: an attribute
``backward`` on the function, else a function named ``<FUNCTION>_backward`` beside it (so
``--impl mypkg.conv:conv2d`` finds ``mypkg.conv.conv2d_backward``)::

    def conv2d_backward(grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1,
                        groups=1, **kw) -> (grad_input, grad_weight, grad_bias)

the gradients of ``sum(conv2d(input, weight, bias, ...) * grad_output)``, with ``grad_bias``
None when ``bias`` is None; the arguments arrive exactly as for the forward. Without one,
``backward: true`` cases are skipped for that plug-in, with the reason shown.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .schema import Case, DTYPES

DEFAULT_IMPL = "reference_impl:conv2d"


class ImplementationLoadError(Exception):
    """--impl names something that cannot be imported or called."""


@dataclass(frozen=True)
class Implementation:
    """A convolution to check, with how it is to be called.

    ``computes_in_float64``: the built-in reference is the oracle, so it gets its inputs upcast
    to float64 and its result is as exact as float64 allows; a plug-in gets the case's dtype,
    the precision it must be correct in.
    """

    name: str
    function: Callable[..., Any]
    computes_in_float64: bool = False
    backward_function: Callable[..., Any] | None = None
    backward_name: str | None = None

    def call_dtype(self, case: Case) -> Any:
        return np.float64 if self.computes_in_float64 else DTYPES[case.dtype]

    def forward(self, case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        dtype = self.call_dtype(case)
        cast = lambda a: None if a is None else np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
        kwargs = {key: _as_given(value) for key, value in case.conv.functional_kwargs().items()}
        return np.asarray(self.function(cast(x), cast(weight), cast(bias), **kwargs))

    def backward(self, case: Case, grad_output: np.ndarray, x: np.ndarray, weight: np.ndarray,
                 bias: np.ndarray | None) -> tuple[Any, ...]:
        """The plug-in's ``(grad_input, grad_weight, grad_bias)``, called like the forward."""
        if self.backward_function is None:
            raise ImplementationLoadError(f"{self.name} offers no backward")
        dtype = self.call_dtype(case)
        cast = lambda a: None if a is None else np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
        kwargs = {key: _as_given(value) for key, value in case.conv.functional_kwargs().items()}
        return self.backward_function(cast(grad_output), cast(x), cast(weight), cast(bias), **kwargs)


def _as_given(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def load_implementation(spec: str | None) -> Implementation:
    """Resolve ``MODULE:FUNCTION`` (or ``path/to/file.py:FUNCTION``); None means the reference.

    >>> load_implementation(None).name
    'reference'
    >>> load_implementation("reference_impl:conv2d_loops").name
    'reference_impl:conv2d_loops'
    """
    if spec is None:
        from reference_impl import conv2d, conv2d_backward

        return Implementation("reference", conv2d, computes_in_float64=True, backward_function=conv2d_backward,
                              backward_name="reference_impl:conv2d_backward")
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise ImplementationLoadError(f"--impl expects MODULE:FUNCTION (e.g. mypkg.conv:conv2d), got {spec!r}")
    module = _import(module_name, spec)
    function: Any = module
    owner: Any = module
    for part in attribute.split("."):
        owner = function
        try:
            function = getattr(function, part)
        except AttributeError:
            raise ImplementationLoadError(f"--impl {spec}: {module_name!r} has no attribute {attribute!r}") from None
    if not callable(function):
        raise ImplementationLoadError(f"--impl {spec}: {attribute!r} is a {type(function).__name__}, not a function")
    backward, backward_name = _find_backward(function, owner, spec)
    return Implementation(spec, function, backward_function=backward, backward_name=backward_name)


def _find_backward(function: Any, owner: Any, spec: str) -> tuple[Callable[..., Any] | None, str | None]:
    """The function's ``backward`` attribute, else ``<name>_backward`` beside it; None if neither."""
    attribute = spec.rpartition(":")[2]
    candidates = ((getattr(function, "backward", None), f"{spec}.backward"),
                  (getattr(owner, attribute.rsplit(".", 1)[-1] + "_backward", None), f"{spec}_backward"))
    for candidate, name in candidates:
        if candidate is not None:
            if not callable(candidate):
                raise ImplementationLoadError(f"--impl {spec}: {name} is a {type(candidate).__name__}, not a function")
            return candidate, name
    return None, None


def _import(module_name: str, spec: str) -> Any:
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ImplementationLoadError(f"--impl {spec}: no such file {path}")
        module_spec = importlib.util.spec_from_file_location(f"conformance_plugin_{path.stem}", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        module_spec.loader.exec_module(module)
        return module
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # let `--impl mymodule:f` find a module in the working folder
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ImplementationLoadError(f"--impl {spec}: cannot import {module_name!r}: {exc}") from exc
