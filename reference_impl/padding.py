"""Padding as an index map: which input row (or column) each padded row copies.

One function covers all four of torch's padding modes and every number of spatial axes, so the
loop and the vectorised convolutions pad identically.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def source_indices(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each of the ``before + size + after`` padded positions, the input index it copies.

    ``-1`` marks a zero (only in mode ``"zeros"``).

    >>> source_indices(3, 2, 2, "reflect").tolist()     # c b | a b c | b a
    [2, 1, 0, 1, 2, 1, 0]
    >>> source_indices(3, 2, 2, "replicate").tolist()   # a a | a b c | c c
    [0, 0, 0, 1, 2, 2, 2]
    >>> source_indices(3, 2, 2, "circular").tolist()    # b c | a b c | a b
    [1, 2, 0, 1, 2, 0, 1]
    >>> source_indices(3, 2, 2, "zeros").tolist()       # 0 0 | a b c | 0 0
    [-1, -1, 0, 1, 2, -1, -1]
    """
    positions = np.arange(-before, size + after)
    if mode == "zeros":
        return np.where((positions >= 0) & (positions < size), positions, -1)
    if mode == "replicate":
        return np.clip(positions, 0, size - 1)
    if mode == "circular":
        return positions % size
    if mode == "reflect":
        if size == 1:
            return np.zeros_like(positions)
        period = 2 * (size - 1)  # a b c b | a b c b | ...
        folded = positions % period
        return np.where(folded < size, folded, period - folded)
    raise ValueError(f"unknown padding mode {mode!r}")


def pad_input(x: np.ndarray, pads: Sequence[int], mode: str) -> np.ndarray:
    """Pad the spatial axes of ``x`` (N, C, *spatial) by ``pads = (before_0, after_0, before_1, ...)``,
    two numbers per spatial axis (for 2-d: (top, bottom, left, right)).

    >>> pad_input(np.arange(1, 4.0).reshape(1, 1, 1, 3), (0, 0, 1, 1), "zeros").tolist()
    [[[[0.0, 1.0, 2.0, 3.0, 0.0]]]]
    >>> pad_input(np.arange(1, 4.0).reshape(1, 1, 3), (2, 1), "reflect").tolist()      # 1-d
    [[[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]]
    """
    spatial = x.shape[2:]
    pairs = list(zip(pads[0::2], pads[1::2], strict=False))
    assert len(pairs) == len(spatial), f"{len(pads)} pads for {len(spatial)} spatial axes"
    if mode == "zeros":
        padded = np.zeros(
            (*x.shape[:2], *(n + a + b for n, (a, b) in zip(spatial, pairs, strict=False))), dtype=x.dtype
        )
        padded[(slice(None), slice(None), *(slice(a, a + n) for n, (a, _) in zip(spatial, pairs, strict=False)))] = x
        return padded  # (N, C, *padded)
    # One index map per axis, broadcast against each other (np.ix_): an outer-product gather.
    maps = np.ix_(*(source_indices(n, a, b, mode) for n, (a, b) in zip(spatial, pairs, strict=False)))
    return x[(slice(None), slice(None)) + maps]  # (N, C, *padded)
