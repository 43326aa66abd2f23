"""Shared helpers for the harness's own tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from conformance.cases.loader import load_file
from conformance.cases.schema import Case


def write_case(tmp_path: Path, text: str, name: str = "case.yaml") -> Path:
    """Write a YAML case file under tmp_path/cases/ and return its path."""
    path = tmp_path / "cases" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def load_one(tmp_path: Path, text: str):
    """Load a single-document case text; returns the Case or the CaseError."""
    items = load_file(write_case(tmp_path, text))
    assert len(items) == 1, items
    return items[0]


def torch_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros") -> np.ndarray:
    """torch.nn.Conv2d in float64 with the given parameters (the oracle, for tests)."""
    out_channels, per_group, kh, kw = w.shape
    in_channels = x.shape[-3]
    module = torch.nn.Conv2d(
        in_channels,
        out_channels,
        (kh, kw),
        stride,
        padding,
        dilation,
        groups,
        b is not None,
        padding_mode,
        dtype=torch.float64,
    )
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.asarray(w, dtype=np.float64)))
        if b is not None:
            module.bias.copy_(torch.from_numpy(np.asarray(b, dtype=np.float64)))
        return module(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()


def assert_is_case(item) -> Case:
    assert isinstance(item, Case), f"expected a valid case, got: {item}"
    return item


def spy_on_kernel(monkeypatch: Any, name: str, record: Callable[..., object]) -> None:
    """Call ``record(*args)`` before every call of the compiled kernel ``name``, on any number of
    threads: both its parallel version and its ``_serial`` twin (compiled.kernel_for picks one by
    numba's thread count, which depends on the machine)."""
    from reference_impl.algorithms import compiled_kernel

    for variant in (name, f"{name}_serial"):
        real = getattr(compiled_kernel, variant)
        monkeypatch.setattr(compiled_kernel, variant, lambda *args, real=real: record(*args) or real(*args))
