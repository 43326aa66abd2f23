"""bfloat16 arrays (ml_dtypes' NumPy type) computed in float32, rounded once at the end.

NumPy's einsum and BLAS do not speak ml_dtypes.bfloat16, and torch's CPU kernels accumulate a
bfloat16 convolution in float32 too. Every reference entry point is wrapped by
:func:`bfloat16_in_float32`; other dtypes (float16, float32, float64) pass through untouched.
ml_dtypes is never imported here: a bfloat16 array is recognised by its dtype's name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

Function = TypeVar("Function", bound=Callable[..., Any])


def is_bfloat16(value: object) -> bool:
    # kind "V" first: NumPy's own floats ("f") never need the (slow) name lookup.
    return isinstance(value, np.ndarray) and value.dtype.kind == "V" and value.dtype.name == "bfloat16"


def _round_to(result: Any, dtype: np.dtype) -> Any:
    """An array, or a tuple of arrays and Nones (the gradients), cast to ``dtype``."""
    if isinstance(result, np.ndarray):
        return result.astype(dtype)
    return type(result)(*(None if part is None else part.astype(dtype) for part in result))


def bfloat16_in_float32(function: Function) -> Function:
    """Run ``function`` on float32 copies of its bfloat16 array arguments; return bfloat16.

    >>> add = bfloat16_in_float32(lambda a, b: a + b)
    >>> add(np.ones(2, np.float32), np.ones(2, np.float32)).dtype      # nothing to do
    dtype('float32')
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not any(is_bfloat16(a) for a in (*args, *kwargs.values())):
            return function(*args, **kwargs)
        arrays = [a for a in (*args, *kwargs.values()) if isinstance(a, np.ndarray)]
        result_dtype = np.result_type(*arrays)  # bfloat16 unless mixed with a wider type

        def widen(a: Any) -> Any:
            return a.astype(np.float32) if is_bfloat16(a) else a

        result = function(*(widen(a) for a in args), **{k: widen(v) for k, v in kwargs.items()})
        return _round_to(result, result_dtype)

    return wrapper  # type: ignore[return-value]
