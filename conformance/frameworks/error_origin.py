"""Where an exception was raised, for adapters whose framework uses one exception class for both a
deliberate refusal and an accident (docs/frameworks.md, "How errors are judged").

A deliberate refusal is a ``raise`` statement in the framework's own Python code (JAX's
``raise TypeError("convolution requires lhs and rhs ndim to be equal ...")``). The same ValueError
raised by NumPy while the framework computes (``cannot reshape array of size 36 into shape (1,2,12)``)
comes out of a NumPy call, not a ``raise`` statement: the framework's numerics broke, a crash. An
exception out of a line of an adapter (conformance/frameworks/) that is not a ``raise`` is the
adapter's own translation failing: ``adapter_error``.

>>> def refuse():
...     raise ValueError("no")
>>> try:
...     refuse()
... except ValueError as error:
...     origin = raise_origin(error)
>>> origin.statement, origin.function
('raise ValueError("no")', 'refuse')
"""

from __future__ import annotations

import linecache
import os
from dataclasses import dataclass

from conformance.judging.outcomes import ADAPTER_ERROR, CRASHED

ADAPTERS_FOLDER = os.path.dirname(os.path.abspath(__file__))
NUMPY_FOLDER_PART = f"{os.sep}numpy{os.sep}"


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


def judge_adapter_line(error: BaseException) -> str | None:
    """``adapter_error`` when ``error`` came out of an adapter's own line other than a ``raise``
    (its translation failed); None otherwise (the default rule judges it).

    >>> judge_adapter_line(ValueError("no traceback")) is None
    True
    """
    origin = raise_origin(error)
    if origin is not None and origin.in_adapter and not origin.is_raise:
        return ADAPTER_ERROR
    return None


def judge_numerics(error: BaseException, framework_package: str) -> str | None:
    """``crashed`` for an exception raised by NumPy, or by a line of the framework's package that is
    not a ``raise`` statement (its numerics failed); ``adapter_error`` for an adapter line; None when
    the framework raised it deliberately (the default rule then judges its type)."""
    origin = raise_origin(error)
    if origin is None or isinstance(error, NotImplementedError):
        return None
    if origin.in_numpy or (origin.within(framework_package) and not origin.is_raise):
        return CRASHED
    return judge_adapter_line(error)
