"""One rule for every built-in adapter (docs/frameworks.md, "How errors are judged"): an error in the
adapter's own code is ``adapter_error`` (our bug, never a framework's finding); an error the
framework raised is the framework's, judged by the default rule (ValueError/RuntimeError refused,
NotImplementedError unsupported, anything else crashed) or by the adapter's ``judge_error``.

One API, :func:`judge_adapter_error`, and one marker, :func:`translating`. Where the adapter's code
ends and the framework's begins is told two ways, by what the framework is made of:

* **marked**: code inside ``with translating(adapter):`` (layouts, pads, a graph built by hand)
  is the adapter's; an exception in it becomes :class:`AdapterTranslationError`. Every adapter may
  mark its translation so; an adapter of a **native** framework (C++ behind Python bindings: MLX,
  Paddle, LiteRT, IREE) must, because such a framework's errors surface on the adapter's line that
  called it and the traceback cannot tell the two apart (``judge_adapter_error(error, native=True)``
  then looks at the marker only);
* **by origin** (a Python framework, ``native=False``): the innermost frame that raised tells.
  A line of an adapter (conformance/frameworks/) that is not a ``raise`` is the adapter failing;
  a ``raise`` statement anywhere is a decision (the adapter's ``Unsupported``, JAX's
  ``raise TypeError("convolution requires lhs and rhs ndim to be equal ...")``).

:func:`judge_numerics` adds the crash rule for a Python framework whose one exception class serves
both its refusals and its accidents: NumPy failing inside it, or a line of its package that is not a
``raise``, is its numerics breaking (``crashed``).

>>> def refuse():
...     raise ValueError("no")
>>> try:
...     refuse()
... except ValueError as error:
...     origin = raise_origin(error)
>>> origin.statement, origin.function
('raise ValueError("no")', 'refuse')
>>> try:
...     with translating("mlx"):
...         [1, 2][5]
... except AdapterTranslationError as error:
...     print(error, "->", judge_adapter_error(error, native=True))
the mlx adapter's translation failed: IndexError: list index out of range -> adapter_error
>>> judge_adapter_error(IndexError("raised by C++"), native=True) is None
True
"""

from __future__ import annotations

import linecache
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from conformance.judging.outcomes import ADAPTER_ERROR, CRASHED

ADAPTERS_FOLDER = os.path.dirname(os.path.abspath(__file__))
NUMPY_FOLDER_PART = f"{os.sep}numpy{os.sep}"


class AdapterTranslationError(Exception):
    """The adapter's own code failed while translating torch's arguments: a bug of the adapter."""


@contextmanager
def translating(adapter: str) -> Iterator[None]:
    """Run the adapter's translation code; an error in it is the adapter's (``Unsupported``, the
    adapter's deliberate verdict, passes through unchanged)."""
    try:
        yield
    except NotImplementedError:  # Unsupported: a deliberate verdict of the adapter
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here is the adapter's own
        raise AdapterTranslationError(
            f"the {adapter} adapter's translation failed: {type(exc).__name__}: {exc}"
        ) from exc


@dataclass(frozen=True)
class Origin:
    """The innermost Python frame of an exception's traceback."""

    file: str
    function: str
    statement: str  # the source line, stripped ('' when the source is not available)

    @property
    def is_raise(self) -> bool:
        """The frame raised it with a ``raise`` statement (a decision), not by calling something that failed."""
        return self.statement.startswith("raise ") or self.statement == "raise"

    @property
    def in_numpy(self) -> bool:
        return NUMPY_FOLDER_PART in self.file

    @property
    def in_adapter(self) -> bool:
        return os.path.abspath(self.file).startswith(ADAPTERS_FOLDER + os.sep)

    def within(self, package_folder: str) -> bool:
        """In the package whose top folder is named ``package_folder`` (e.g. "jax", "onnx")."""
        return f"{os.sep}{package_folder}{os.sep}" in self.file


def raise_origin(error: BaseException) -> Origin | None:
    """The innermost frame that raised ``error`` (None without a traceback)."""
    traceback = error.__traceback__
    if traceback is None:
        return None
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    code = traceback.tb_frame.f_code
    statement = linecache.getline(code.co_filename, traceback.tb_lineno).strip()
    return Origin(code.co_filename, code.co_name, statement)


def judge_adapter_error(error: BaseException, *, native: bool = False) -> str | None:
    """``adapter_error`` when the adapter's own code failed, else None (the framework's error: the
    default rule, or the adapter's own ``judge_error``, judges it). A failure inside
    :func:`translating` is the adapter's for every framework; for a Python framework
    (``native=False``) so is an exception out of an adapter line that is not a ``raise``. The class
    is compared by name too: across the worker's pipe the exception is rebuilt as a class of the
    same name when this module is not imported in the parent.

    >>> judge_adapter_error(AdapterTranslationError("x")), judge_adapter_error(ValueError("no traceback"))
    ('adapter_error', None)
    """
    if isinstance(error, AdapterTranslationError) or type(error).__name__ == AdapterTranslationError.__name__:
        return ADAPTER_ERROR
    if native:  # its C++ raises on the adapter's calling line: only the marker tells
        return None
    origin = raise_origin(error)
    if origin is not None and origin.in_adapter and not origin.is_raise:
        return ADAPTER_ERROR
    return None


def judge_native_error(error: BaseException) -> str | None:
    """The ``judge_error`` hook of an adapter of a native framework: :func:`judge_adapter_error`
    with ``native=True``."""
    return judge_adapter_error(error, native=True)


def judge_numerics(error: BaseException, framework_package: str) -> str | None:
    """``crashed`` for an exception raised by NumPy, or by a line of the framework's package that is
    not a ``raise`` statement (its numerics failed); ``adapter_error`` for the adapter's own code
    (:func:`judge_adapter_error`); None when the framework raised it deliberately (the default rule
    then judges its type)."""
    marked = judge_adapter_error(error, native=True)
    if marked is not None:
        return marked
    origin = raise_origin(error)
    if origin is None or isinstance(error, NotImplementedError):
        return None
    if origin.in_numpy or (origin.within(framework_package) and not origin.is_raise):
        return CRASHED
    return judge_adapter_error(error)
