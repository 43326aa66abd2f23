"""The four case dtypes: how NumPy stores them, their unit roundoff, and rounding into them.

NumPy has no bfloat16. Rather than add a dependency, a bfloat16 case is stored as **float32 arrays
whose every value is a bfloat16 number**: values are rounded float32 -> bfloat16 by bit
manipulation with round-to-nearest-even (:func:`round_to_bfloat16`), exactly as
``tensor.to(torch.bfloat16)`` rounds a float32 tensor. Torch receives them converted (exactly)
to ``torch.bfloat16``; a plug-in receives the float32 arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# How a case's tensors are held in NumPy.
STORAGE_DTYPES: dict[str, Any] = {
    "float32": np.float32,
    "float64": np.float64,
    "float16": np.float16,
    "bfloat16": np.float32,
}

# u: half the distance from 1 to the next number, the relative error of one rounding.
UNIT_ROUNDOFF: dict[str, float] = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}

# The smallest positive subnormal: below the normal range a rounding errs by up to half of it in
# absolute terms, whatever the value (Higham's eta).
SMALLEST_SUBNORMAL: dict[str, float] = {
    "float64": 2.0**-1074,
    "float32": 2.0**-149,
    "float16": 2.0**-24,
    "bfloat16": 2.0**-133,
}


def round_to_bfloat16(values: np.ndarray) -> np.ndarray:
    """Round to the nearest bfloat16 (ties to even); returns float32 arrays holding bfloat16 values.

    A bfloat16 is the upper 16 bits of a float32. Adding 0x7FFF plus the lowest kept bit, then
    clearing the lower 16 bits, rounds to nearest with ties going to the even neighbour.

    >>> round_to_bfloat16(np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, 3.14159], dtype=np.float32)).tolist()
    [1.0, 1.0, 1.015625, 3.140625]
    """
    single = np.asarray(values, dtype=np.float32)
    bits = single.view(np.uint32).astype(np.uint64)
    lowest_kept_bit = (bits >> 16) & 1
    rounded = ((bits + 0x7FFF + lowest_kept_bit) & 0xFFFF0000).astype(np.uint32)
    # A NaN's payload may carry into the exponent when rounded: keep it a (quiet) NaN instead.
    rounded = np.where(np.isnan(single), (bits.astype(np.uint32) & 0xFFFF0000) | 0x00400000, rounded)
    return rounded.astype(np.uint32).view(np.float32).reshape(single.shape)


def to_case_dtype(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` rounded to the case dtype ``dtype``, in its NumPy storage type.

    float64 -> float16 rounds once (NumPy rounds to nearest even); float64 -> bfloat16 rounds to
    float32 first, then to bfloat16, the path of ``tensor.float().to(torch.bfloat16)``.

    >>> to_case_dtype(np.array([0.1]), "float16").tolist(), to_case_dtype(np.array([0.1]), "bfloat16").tolist()
    ([0.0999755859375], [0.10009765625])
    """
    stored = np.asarray(values).astype(STORAGE_DTYPES[dtype])
    return round_to_bfloat16(stored) if dtype == "bfloat16" else stored
