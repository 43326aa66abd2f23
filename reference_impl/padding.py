"""Padding as an index map: which input row (or column) each padded row copies.

One function covers all four of torch's padding modes, so the loop and the vectorised
convolution pad identically.
"""
from __future__ import annotations

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


def pad_input(x: np.ndarray, pads: tuple[int, int, int, int], mode: str) -> np.ndarray:
    """Pad the last two axes of ``x`` (N, C, H, W) by ``pads = (top, bottom, left, right)``.

    >>> pad_input(np.arange(1, 4.0).reshape(1, 1, 1, 3), (0, 0, 1, 1), "zeros").tolist()
    [[[[0.0, 1.0, 2.0, 3.0, 0.0]]]]
    """
    top, bottom, left, right = pads
    n, c, h, w = x.shape
    if mode == "zeros":
        padded = np.zeros((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
        padded[:, :, top : top + h, left : left + w] = x
        return padded
    rows = source_indices(h, top, bottom, mode)
    cols = source_indices(w, left, right, mode)
    return x[:, :, rows[:, None], cols[None, :]]  # (N, C, H_padded, W_padded)
