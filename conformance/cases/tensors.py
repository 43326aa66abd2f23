"""Tensor specs: how a case file writes a tensor, and how the harness makes it.

A spec has exactly one generator plus an optional ``shape``::

    values: [[1, 2], [3, 4]]                # nested (shape inferred) or flat with shape
    arange: {start: 1, step: 1}             # start + step*i in row-major order
    fill: 0.5                               # every element
    random: {seed: 0, distribution: uniform, low: -1, high: 1}

``random`` without a seed derives one from the case name and the tensor's role, so a file
always produces bit-identical tensors on every machine.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GENERATORS = ("values", "arange", "fill", "random")
DISTRIBUTIONS = ("uniform", "normal", "integers")
MAX_TENSOR_ELEMENTS = 2**24  # 16,777,216 elements (64 MiB as float32) per tensor


@dataclass(frozen=True)
class TensorSpec:
    """A parsed, validated tensor spec (shape may still be unknown: it can follow from the layer)."""

    generator: str
    options: dict[str, Any] = field(default_factory=dict)
    shape: tuple[int, ...] | None = None
    values: np.ndarray | None = None  # float64, flat, for the `values` generator

    @property
    def size(self) -> int | None:
        if self.values is not None:
            return int(self.values.size)
        return None

    def make(self, shape: tuple[int, ...], dtype: Any, seed_key: str) -> np.ndarray:
        """Generate the tensor with ``shape`` in ``dtype``.

        >>> TensorSpec("arange", {"start": 1, "step": 1}).make((2, 3), np.float32, "x").tolist()
        [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
        """
        count = math.prod(shape)
        if self.generator == "values":
            assert self.values is not None
            data = self.values.reshape(shape)
        elif self.generator == "arange":
            data = self.options.get("start", 0) + self.options.get("step", 1) * np.arange(count, dtype=np.float64)
        elif self.generator == "fill":
            data = np.full(count, self.options["value"], dtype=np.float64)
        else:
            data = self._random(count, seed_key)
        return np.asarray(data, dtype=np.float64).reshape(shape).astype(dtype)

    def _random(self, count: int, seed_key: str) -> np.ndarray:
        seed = self.options.get("seed")
        rng = np.random.default_rng(derived_seed(seed_key) if seed is None else seed)
        distribution = self.options.get("distribution", "uniform")
        if distribution == "normal":
            return rng.normal(self.options.get("mean", 0.0), self.options.get("std", 1.0), count)
        if distribution == "integers":
            low, high = self.options.get("low", -3), self.options.get("high", 3)
            return rng.integers(int(low), int(high), size=count, endpoint=True).astype(np.float64)
        return rng.uniform(self.options.get("low", -1.0), self.options.get("high", 1.0), count)


def derived_seed(key: str) -> int:
    """A seed that depends only on ``key`` (stable across processes, machines and versions).

    >>> derived_seed("seed/groups3:weight") == derived_seed("seed/groups3:weight")
    True
    """
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "little")
