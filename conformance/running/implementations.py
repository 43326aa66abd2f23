"""The implementation under test: the reference, a plug-in, or a built-in framework adapter.

``--impl`` (and :func:`load_implementation`) takes:

* nothing: the reference, ``reference_impl`` (it computes in float64: it is the oracle's twin);
* ``MODULE`` or ``path/to/file.py``: a module defining any of ``conv1d``, ``conv2d``, ``conv3d``,
  ``conv_transpose1d``, ``conv_transpose2d``, ``conv_transpose3d``, each with the signature of the
  ``torch.nn.functional`` function of that name. Each case calls the one its op needs; a case
  whose op the module lacks is skipped with that reason;
* ``MODULE:FUNCTION`` or ``path/to/file.py:FUNCTION``: one function, a conv2d;
* a built-in name from ``conformance.frameworks.BUILTINS`` (``jax``, ``onnxruntime``, ...): its
  adapter module, loaded like ``MODULE``.

A forward has the ``torch.nn.functional`` signature::

    def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kw) -> array
    def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                         dilation=1) -> array

``stride``, ``padding`` and ``dilation`` are passed as the case wrote them (an int, a tuple, or the
strings "same"/"valid"); ``padding_mode=`` only when the case's mode is not "zeros".

A keyword the function's signature does not take is never passed (``inspect.signature``; for a
builtin without one, such as torch's own ``torch.nn.functional.conv2d``, the signature line of its
docstring; ``**kwargs`` takes every keyword): left out where the case's value is torch's default
(``dilation=1``, ...), and the case skipped, with the reason, where the case needs it (a transposed
case with a non-"zeros" ``padding_mode``, which ``torch.nn.functional`` cannot express). See
:func:`accepted_keywords`.

Arrays (``--arrays``, or the module's ``ARRAYS`` attribute; see conformance/running/arrays.py): NumPy
arrays, torch tensors on ``--impl-device`` or JAX arrays, always in the case's real dtype; the
result may be any of them, on any device.

Invalid layers: raise ``ValueError``, ``RuntimeError`` or one of ``refusal_types`` (a deliberate
refusal); ``NotImplementedError`` (e.g. ``conformance.Unsupported``) says the layer is not
supported; any other exception is a crash (see :meth:`Implementation.judge_exception`). A module
may judge its own exceptions first with ``judge_error(error) -> str | None`` (``refused``,
``crashed``, ``unsupported``, ``adapter_error``, or None for the rule above): the framework adapters
use it where a framework signals a refusal and an accident with the same class.

A module may also define ``environment() -> dict[str, str]``: the settings it pinned and the facts
it resolved that change its answers (``{"tensorflow.onednn": "on"}``), exposed as
:meth:`Implementation.environment` and recorded with every result.

A backward is found beside each forward: an attribute ``backward`` on the function, else a
function ``<name>_backward`` next to it::

    def conv2d_backward(grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1,
                        groups=1, **kw) -> (grad_input, grad_weight, grad_bias)

the gradients of ``sum(conv2d(input, weight, bias, ...) * grad_output)``, ``grad_bias`` None when
``bias`` is None. Without one, ``backward: true`` cases are skipped for that plug-in.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from conformance.cases.geometry import OP_NAMES
from conformance.cases.schema import Case
from conformance.judging.outcomes import ADAPTER_ERROR, CRASHED, REFUSED, UNSUPPORTED, ImplementationCrashed
from conformance.running.arrays import ARRAY_KINDS, DEFAULT_ARRAYS, ArrayKindError, check_arrays, from_native, to_native

# The op names a plug-in module may define, as in torch.nn.functional.
REFERENCE_MODULE = "reference_impl"
# Deliberate refusals of an invalid layer, whatever the implementation (see judge_exception).
STANDARD_REFUSALS: tuple[type[BaseException], ...] = (ValueError, RuntimeError)
VERDICTS = (REFUSED, CRASHED, UNSUPPORTED, ADAPTER_ERROR)  # what judge_exception (and a judge_error hook) says


class ImplementationLoadError(Exception):
    """--impl names something that cannot be imported or called."""


@dataclass(frozen=True)
class Implementation:
    """A convolution to check, with how it is to be called.

    ``function``: the conv2d (the only op of a ``MODULE:FUNCTION`` plug-in); ``functions``: every op
    it defines, by ``torch.nn.functional`` name (filled from ``function`` when not given).
    ``computes_in_float64``: the reference is the oracle's twin, so it gets its inputs upcast to
    float64 and its result is as exact as float64 allows; a plug-in gets the case's dtype, the
    precision it must be correct in. ``spec`` and :attr:`options` rebuild it in another process:
    ``load_implementation(impl.spec, **impl.options)``.

    >>> impl = load_implementation("reference_impl:conv2d")
    >>> sorted(impl.functions), impl.arrays, impl.options
    (['conv2d'], 'numpy', {'arrays': 'numpy', 'device': 'cpu', 'refusal_types': ()})
    """

    name: str
    function: Callable[..., Any] | None = None
    computes_in_float64: bool = False
    backward_function: Callable[..., Any] | None = None
    backward_name: str | None = None
    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    backward_functions: Mapping[str, tuple[Callable[..., Any], str]] = field(default_factory=dict)
    arrays: str = DEFAULT_ARRAYS
    device: str = "cpu"
    refusal_types: tuple[type[BaseException], ...] = ()
    refusal_type_names: tuple[str, ...] = ()  # as given, so the options stay plain strings
    spec: Any = None
    error_judge: Callable[[BaseException], str | None] | None = None  # the module's judge_error
    environment_function: Callable[[], Mapping[str, str]] | None = None  # the module's environment

    def __post_init__(self) -> None:
        if self.function is not None and not self.functions:
            object.__setattr__(self, "functions", {"conv2d": self.function})
        if self.backward_function is not None and not self.backward_functions:
            object.__setattr__(
                self,
                "backward_functions",
                {"conv2d": (self.backward_function, self.backward_name or f"{self.name}.backward")},
            )

    @property
    def options(self) -> dict[str, Any]:
        """The keyword options of :func:`load_implementation` that made this; all picklable."""
        return {"arrays": self.arrays, "device": self.device, "refusal_types": self.refusal_type_names}

    # -- which op, and whether it is there -------------------------------------------------------

    def supports(self, case: Case) -> bool:
        """Whether the case's op is defined and takes every keyword the case needs."""
        return case.conv.functional_name in self.functions and not self.unaccepted_keywords(case)

    def unaccepted_keywords(self, case: Case) -> list[str]:
        """The keywords ``case`` needs (a value other than torch's default) that its op's signature
        does not take; empty when the op is missing (see :meth:`missing_reason`)."""
        function = self.functions.get(case.conv.functional_name)
        if function is None:
            return []
        accepted = accepted_keywords(function)
        return [
            key
            for key, value in case.conv.functional_kwargs().items()
            if accepted is not None and key not in accepted and not is_default_keyword(key, value)
        ]

    def missing_reason(self, case: Case) -> str:
        """'mymod defines no conv3d' — why a case is skipped for this implementation."""
        op = case.conv.functional_name
        unaccepted = self.unaccepted_keywords(case)
        if unaccepted:
            needed = ", ".join(f"{key}={case.conv.functional_kwargs()[key]!r}" for key in unaccepted)
            return (
                f"{self.name}'s {op} takes no {', '.join(unaccepted)}= keyword, which this case needs ({needed}); "
                f"give it the keyword (or **kwargs) to check it"
            )
        if isinstance(self.spec, str) and ":" in self.spec or callable(self.spec):
            return f"{self.name} is one function, a conv2d: no {op} (give a module defining {op} to check it)"
        return f"{self.name} defines no {op}"

    def backward_function_for(self, case: Case) -> Callable[..., Any] | None:
        found = self.backward_functions.get(case.conv.functional_name)
        return found[0] if found else None

    def backward_name_for(self, case: Case) -> str | None:
        found = self.backward_functions.get(case.conv.functional_name)
        return found[1] if found else None

    # -- calling it -------------------------------------------------------------------------------

    def call_dtype(self, case: Case) -> str:
        """The dtype the implementation computes in: the case's, or float64 for the reference."""
        return "float64" if self.computes_in_float64 else case.dtype

    def _native(self, case: Case, array: np.ndarray | None) -> Any:
        return to_native(array, self.call_dtype(case), self.arrays, self.device)

    def forward_native(
        self, case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None
    ) -> tuple[np.ndarray, str]:
        """The output as a host NumPy array (bfloat16 as float32) and the dtype it came in."""
        function = self.functions.get(case.conv.functional_name)
        if function is None:
            raise ImplementationLoadError(self.missing_reason(case))
        kwargs = call_keywords(function, case)
        result = function(self._native(case, x), self._native(case, weight), self._native(case, bias), **kwargs)
        try:
            return from_native(result)
        except TypeError as exc:
            raise TypeError(f"{self.name} {exc}") from None

    def forward(self, case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        """The output of the op ``case`` needs, as a host NumPy array (bfloat16 as float32)."""
        return self.forward_native(case, x, weight, bias)[0]

    def backward(
        self, case: Case, grad_output: np.ndarray, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None
    ) -> tuple[Any, ...]:
        """The plug-in's ``(grad_input, grad_weight, grad_bias)`` as NumPy arrays, called like the forward."""
        function = self.backward_function_for(case)
        if function is None:
            raise ImplementationLoadError(f"{self.name} offers no {case.conv.functional_name} backward")
        kwargs = call_keywords(function, case)
        result = function(*(self._native(case, a) for a in (grad_output, x, weight, bias)), **kwargs)
        if not isinstance(result, (tuple, list)):
            return result  # the backward check reports the wrong return type
        return tuple(None if value is None else from_native(value)[0] for value in result)

    # -- its settings ---------------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """The module's ``environment()`` (its pinned settings and resolved facts) as strings; {} without one.

        >>> Implementation("f").environment()
        {}
        """
        if self.environment_function is None:
            return {}
        return {str(key): str(value) for key, value in dict(self.environment_function()).items()}

    # -- judging what it raised ----------------------------------------------------------------------

    def judge_exception(self, error: BaseException) -> str:
        """``refused`` (a deliberate refusal), ``unsupported``, ``crashed`` or ``adapter_error``: the
        module's ``judge_error`` first, when it has one and it decides; else by the exception's type.

        >>> impl = Implementation("f")
        >>> [impl.judge_exception(e) for e in (ValueError(), RuntimeError(), NotImplementedError(), TypeError())]
        ['refused', 'refused', 'unsupported', 'crashed']
        >>> Implementation("g", error_judge=lambda e: "refused").judge_exception(TypeError())
        'refused'
        """
        if isinstance(error, ImplementationCrashed):
            return CRASHED
        if self.error_judge is not None:
            verdict = self.error_judge(error)
            if verdict is not None:
                if verdict not in VERDICTS:
                    raise ValueError(
                        f"{self.name}.judge_error returned {verdict!r}; expected one of {VERDICTS} or None"
                    )
                return verdict
        if isinstance(error, NotImplementedError):  # before RuntimeError: it is one
            return UNSUPPORTED
        if isinstance(error, STANDARD_REFUSALS + tuple(self.refusal_types)):
            return REFUSED
        return CRASHED


def _as_given(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# torch.nn.functional's defaults: a keyword left at one of them may be left out of a call.
_DEFAULT_KEYWORDS = {
    "stride": 1,
    "padding": 0,
    "dilation": 1,
    "groups": 1,
    "output_padding": 0,
    "padding_mode": "zeros",
}
_DOCSTRING_SIGNATURE = re.compile(r"^\s*(?:[\w.]+\.)?(\w+)\((?P<parameters>[^)]*)\)")


def is_default_keyword(key: str, value: Any) -> bool:
    """Whether ``key=value`` is what the op does without the keyword (``stride=(1, 1)`` is).

    >>> is_default_keyword("dilation", (1, 1)), is_default_keyword("groups", 2), is_default_keyword("padding", "same")
    (True, False, False)
    """
    default = _DEFAULT_KEYWORDS.get(key)
    if default is None:
        return False
    if isinstance(value, (list, tuple)):
        return all(item == default for item in value)
    return bool(value == default)


def accepted_keywords(function: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword names ``function`` takes (see :func:`read_accepted_keywords`), read once per
    function: ``inspect.signature`` on every call of every case was a tenth of a run's checks
    (docs/performance.md, round 5). An unhashable callable is read every time."""
    try:
        return _accepted_keywords_once(function)
    except TypeError:  # unhashable: no cache for it
        return read_accepted_keywords(function)


@functools.lru_cache(maxsize=1024)
def _accepted_keywords_once(function: Callable[..., Any]) -> frozenset[str] | None:
    return read_accepted_keywords(function)


def read_accepted_keywords(function: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword names ``function`` takes; None when it takes any (``**kwargs``) or its signature
    cannot be read at all (then every keyword is passed, as before signatures were read).

    torch's ``torch.nn.functional`` convolutions are builtins without an ``inspect`` signature;
    their docstring's first line is one, and is read instead:

    >>> import torch.nn.functional as F
    >>> sorted(accepted_keywords(F.conv_transpose2d))
    ['bias', 'dilation', 'groups', 'input', 'output_padding', 'padding', 'stride', 'weight']
    >>> accepted_keywords(lambda input, weight, bias=None, **kw: None) is None
    True
    """
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        match = _DOCSTRING_SIGNATURE.match(inspect.getdoc(function) or "")
        if match is None:
            return None
        names = [part.split("=")[0].split(":")[0].strip() for part in match["parameters"].split(",")]
        if any(name.startswith("**") for name in names):
            return None
        return frozenset(name for name in names if name and not name.startswith("*"))
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return None
    return frozenset(
        parameter.name
        for parameter in parameters
        if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )


def call_keywords(function: Callable[..., Any], case: Case) -> dict[str, Any]:
    """The keywords to call ``function`` with for ``case``: the case's, less those the signature
    does not take (only ever at their default: a case needing one is skipped, see
    :meth:`Implementation.supports`)."""
    accepted = accepted_keywords(function)
    return {
        key: _as_given(value)
        for key, value in case.conv.functional_kwargs().items()
        if accepted is None or key in accepted
    }


def builtin_implementations() -> dict[str, str]:
    """Built-in names -> adapter modules (``conformance.frameworks.BUILTINS``)."""
    from conformance.frameworks import BUILTINS  # only when a spec may name a built-in

    return dict(BUILTINS)


def load_implementation(
    spec: str | Callable[..., Any] | ModuleType | None = None,
    *,
    arrays: str | None = None,
    device: str = "cpu",
    refusal_types: tuple[str | type, ...] | list[str | type] = (),
) -> Implementation:
    """Resolve ``spec`` (see the module docstring); None means the reference.

    ``arrays``: numpy, torch or jax (None: the module's ``ARRAYS``, else numpy); ``device``: where
    torch or JAX arrays are put; ``refusal_types``: exception types, or their dotted names, that
    count as deliberate refusals besides ValueError and RuntimeError. ``spec`` may also be a
    function (a conv2d) or a module object, for the Python API.

    >>> load_implementation(None).name
    'reference'
    >>> load_implementation("reference_impl:conv2d_loops").name
    'reference_impl:conv2d_loops'
    """
    refusal_names = tuple(_type_name(t) for t in refusal_types)
    resolved_refusals = tuple(_resolve_type(t) for t in refusal_types)
    common: dict[str, Any] = dict(
        device=device, refusal_types=resolved_refusals, refusal_type_names=refusal_names, spec=spec
    )
    if spec is None:
        module = _import(REFERENCE_MODULE, REFERENCE_MODULE)
        impl = _from_module(module, "reference", arrays, computes_in_float64=True, **common)
    elif isinstance(spec, ModuleType):
        impl = _from_module(spec, spec.__name__, arrays, **common)
    elif callable(spec):
        module = sys.modules.get(getattr(spec, "__module__", "") or "")
        name = (
            f"{getattr(spec, '__module__', '?')}:{getattr(spec, '__qualname__', getattr(spec, '__name__', 'conv2d'))}"
        )
        backward, backward_name = _find_backward(spec, module, getattr(spec, "__name__", ""), name)
        impl = Implementation(
            name,
            spec,
            backward_function=backward,
            backward_name=backward_name,
            arrays=_arrays(arrays, module),
            **common,
        )
    elif not isinstance(spec, str) or not spec:
        raise ImplementationLoadError(f"--impl expects MODULE, MODULE:FUNCTION or a built-in name, got {spec!r}")
    elif ":" in spec:
        impl = _from_function_spec(spec, arrays, **common)
    else:
        named = builtin_implementations()  # a built-in name wins over a module of that name (jax)
        module = _import(named.get(spec, spec), spec)
        impl = _from_module(module, spec, arrays, **common)
    try:
        check_arrays(impl.arrays, device)
    except ArrayKindError as exc:
        raise ImplementationLoadError(str(exc)) from None
    return impl


def _arrays(arrays: str | None, module: Any) -> str:
    chosen = arrays or getattr(module, "ARRAYS", None) or DEFAULT_ARRAYS
    if chosen not in ARRAY_KINDS:
        where = "--arrays" if arrays else f"{getattr(module, '__name__', 'the module')}.ARRAYS"
        raise ImplementationLoadError(f"{where} must be one of {', '.join(ARRAY_KINDS)}, got {chosen!r}")
    return chosen


def _from_module(module: ModuleType, name: str, arrays: str | None, **common: Any) -> Implementation:
    """Module lookup: every op of OP_NAMES the module defines, and ``<op>_backward`` beside each."""
    functions: dict[str, Callable[..., Any]] = {}
    backwards: dict[str, tuple[Callable[..., Any], str]] = {}
    for op in OP_NAMES:
        function = getattr(module, op, None)
        if function is None:
            continue
        if not callable(function):
            raise ImplementationLoadError(f"--impl {name}: {op} is a {type(function).__name__}, not a function")
        functions[op] = function
        backward, backward_name = _find_backward(function, module, op, f"{module.__name__}:{op}")
        if backward is not None:
            backwards[op] = (backward, backward_name)  # type: ignore[assignment]
    if not functions:
        raise ImplementationLoadError(
            f"--impl {name}: module {module.__name__!r} defines none of "
            f"{', '.join(OP_NAMES)} (or name one function: {name}:FUNCTION)"
        )
    conv2d = functions.get("conv2d")
    conv2d_backward = backwards.get("conv2d", (None, None))
    return Implementation(
        name,
        conv2d,
        backward_function=conv2d_backward[0],
        backward_name=conv2d_backward[1],
        functions=functions,
        backward_functions=backwards,
        arrays=_arrays(arrays, module),
        error_judge=_optional_function(module, name, "judge_error"),
        environment_function=_optional_function(module, name, "environment"),
        **common,
    )


def _optional_function(module: ModuleType, name: str, attribute: str) -> Callable[..., Any] | None:
    """The module's ``judge_error`` or ``environment`` hook, if it defines one."""
    function = getattr(module, attribute, None)
    if function is not None and not callable(function):
        raise ImplementationLoadError(f"--impl {name}: {attribute} is a {type(function).__name__}, not a function")
    return function


def _from_function_spec(text: str, arrays: str | None, **common: Any) -> Implementation:
    module_name, _, attribute = text.rpartition(":")
    if not module_name or not attribute:
        raise ImplementationLoadError(f"--impl expects MODULE:FUNCTION (e.g. mypkg.conv:conv2d), got {text!r}")
    module = _import(module_name, text)
    function: Any = module
    owner: Any = module
    for part in attribute.split("."):
        owner = function
        try:
            function = getattr(function, part)
        except AttributeError:
            raise ImplementationLoadError(f"--impl {text}: {module_name!r} has no attribute {attribute!r}") from None
    if not callable(function):
        raise ImplementationLoadError(f"--impl {text}: {attribute!r} is a {type(function).__name__}, not a function")
    backward, backward_name = _find_backward(function, owner, attribute.rsplit(".", 1)[-1], text)
    return Implementation(
        text,
        function,
        backward_function=backward,
        backward_name=backward_name,
        arrays=_arrays(arrays, module),
        **common,
    )


def _find_backward(
    function: Any, owner: Any, function_name: str, spec: str
) -> tuple[Callable[..., Any] | None, str | None]:
    """The function's ``backward`` attribute, else ``<function_name>_backward`` beside it; None if neither."""
    candidates = (
        (getattr(function, "backward", None), f"{spec}.backward"),
        (getattr(owner, function_name + "_backward", None) if owner is not None else None, f"{spec}_backward"),
    )
    for candidate, name in candidates:
        if candidate is not None:
            if not callable(candidate):
                raise ImplementationLoadError(f"--impl {spec}: {name} is a {type(candidate).__name__}, not a function")
            return candidate, name
    return None, None


def _type_name(value: str | type) -> str:
    return value if isinstance(value, str) else f"{value.__module__}.{value.__qualname__}"


def _resolve_type(value: str | type) -> type[BaseException]:
    """``mylib.errors.ConvError`` -> the class (the last dot separates module and class)."""
    if isinstance(value, type):
        resolved: Any = value
    else:
        module_name, _, attribute = value.replace(":", ".").rpartition(".")
        if not module_name:
            resolved = getattr(builtins, attribute, None)  # ValueError, ArithmeticError, ...
            if resolved is None:
                raise ImplementationLoadError(f"--refusal-type {value}: expected MODULE.CLASS (e.g. mylib.ConvError)")
        else:
            module = _import(module_name, f"--refusal-type {value}")
            resolved = getattr(module, attribute, None)
            if resolved is None:
                raise ImplementationLoadError(f"--refusal-type {value}: {module_name!r} has no attribute {attribute!r}")
    if not (isinstance(resolved, type) and issubclass(resolved, BaseException)):
        raise ImplementationLoadError(f"--refusal-type {_type_name(value)}: not an exception class")
    return resolved


def _import(module_name: str, spec: str) -> Any:
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ImplementationLoadError(f"--impl {spec}: no such file {path}")
        module_spec = importlib.util.spec_from_file_location(f"conformance_plugin_{path.stem}", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:  # the user's file is broken: say so, with its error
            del sys.modules[module_spec.name]
            raise ImplementationLoadError(
                f"--impl {spec}: importing {path} raised {type(exc).__name__}: {exc}"
            ) from exc
        return module
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # let `--impl mymodule:f` find a module in the working folder
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ImplementationLoadError(f"--impl {spec}: cannot import {module_name!r}: {exc}") from exc
