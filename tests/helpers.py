"""Shared helpers for the harness's own tests."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Callable, Iterator
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
    _spy_on_variants(monkeypatch, name, lambda variant, *args: record(*args))


def record_variants_run(monkeypatch: Any, name: str) -> list[str]:
    """A list that fills, call by call, with the name of the version of compiled kernel ``name`` that
    ran: ``name`` (parallel) or ``name_serial``."""
    ran: list[str] = []
    _spy_on_variants(monkeypatch, name, lambda variant, *args: ran.append(variant))
    return ran


def _spy_on_variants(monkeypatch: Any, name: str, record: Callable[..., object]) -> None:
    """Call ``record(variant, *args)`` before every call of either version of compiled kernel ``name``."""
    from reference_impl.algorithms import compiled_kernel

    for variant in (name, f"{name}_serial"):
        real = getattr(compiled_kernel, variant)
        monkeypatch.setattr(
            compiled_kernel, variant, lambda *args, real=real, variant=variant: record(variant, *args) or real(*args)
        )


@contextlib.contextmanager
def launch_threads(monkeypatch: Any, threads: int) -> Iterator[int]:
    """Within: numba on ``threads`` threads (at most the machine's), and on more than one every
    compiled call launched in parallel however little its work (compiled.SERIAL_MAX_WORK), so that
    the kernels' parallel versions run on a test's small inputs. Yields the thread count set."""
    import numba

    from reference_impl.algorithms import compiled

    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    before = numba.get_num_threads()
    monkeypatch.setattr(compiled, "SERIAL_MAX_WORK", 0 if threads > 1 else compiled.SERIAL_MAX_WORK)
    numba.set_num_threads(threads)
    try:
        yield threads
    finally:
        numba.set_num_threads(before)
