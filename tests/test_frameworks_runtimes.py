"""Issue 20's columns (mlx, paddle, litert, litert-builtin, iree) and what they need from the harness:
a column in its own venv (its worker runs that venv's Python with only the light conformance
modules), the install status of such a column, and adapter errors kept apart from the framework's.
A framework that is not installed is skipped with its install command."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conformance.cases.loader import load_cases
from conformance.cases.schema import Case
from conformance.frameworks import BUILTINS, install_command, status, venv_python
from conformance.frameworks.adapter_errors import (
    AdapterTranslationError,
    judge_native_error as judge_error,
    translating,
)
from conformance.judging.outcomes import ADAPTER_ERROR, Unsupported
from conformance.running.isolation import IsolatedImplementation, rebuild_exception
from conformance.running.runner import make_tensors

ROOT = Path(__file__).resolve().parents[1]
RUNTIMES = ("mlx", "paddle", "litert", "litert-builtin", "iree")


def _installed_or_skip(name: str) -> None:
    availability = status(name)
    if not availability.installed:
        pytest.skip(f"{name}: {availability.reason}; install: {availability.install_command}")


def test_the_five_runtimes_are_registered_each_with_both_adapter_hooks() -> None:
    for name in RUNTIMES:
        adapter = importlib.import_module(BUILTINS[name])  # imports no framework
        assert callable(adapter.conv2d) and callable(adapter.version), name
        assert callable(adapter.environment) and callable(adapter.judge_error), name


def test_a_column_with_its_own_venv_says_so_when_the_venv_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFORMANCE_FRAMEWORK_VENVS", str(tmp_path))
    assert venv_python("paddle") == tmp_path / "paddle" / "bin" / "python"
    availability = status("paddle")
    assert not availability.installed and f"no venv at {tmp_path / 'paddle'}" in availability.reason
    assert "-r constraints-frameworks-paddle.txt" in availability.install_command
    assert venv_python("mlx") is None  # mlx shares .venv
    assert install_command("mlx").startswith(".venv/bin/pip install -c constraints-frameworks.txt mlx[cpu]")


def test_a_venv_without_the_framework_is_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = tmp_path / "paddle" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)  # a Python, but one without paddle
    monkeypatch.setenv("CONFORMANCE_FRAMEWORK_VENVS", str(tmp_path))
    availability = status("paddle")
    assert not availability.installed and "no module paddle in" in availability.reason


def test_a_foreign_worker_loads_only_the_light_modules() -> None:
    # The worker of a column with its own venv: here this Python stands in for that venv's. It must
    # not run conformance/__init__.py (which imports torch): a venv without torch could not start it.
    with IsolatedImplementation("reference_impl:conv2d", python=sys.executable) as implementation:
        assert implementation.python == sys.executable
        loaded = implementation.call_function("tests.plugins.loaded_modules", "heavy_modules")
        case = next(
            c
            for c in load_cases([ROOT / "cases" / "seed"])
            if isinstance(c, Case) and c.conv.functional_name == "conv2d"
        )
        tensors = make_tensors(case)
        x, weight, bias = tensors.input, tensors.weight, tensors.bias
        output = implementation.forward(case, x, weight, bias)
    assert loaded == [], f"the foreign worker imported {loaded}"
    assert tensors.expected is not None
    np.testing.assert_allclose(output, tensors.expected, rtol=1e-5, atol=1e-5)


def test_adapter_translation_errors_are_told_apart_from_the_frameworks() -> None:
    with pytest.raises(AdapterTranslationError, match="the mlx adapter's translation failed: KeyError"):
        with translating("mlx"):
            empty: dict[str, int] = {}
            empty["missing"]
    with pytest.raises(Unsupported):  # the adapter's deliberate verdict passes through unchanged
        with translating("mlx"):
            raise Unsupported("no such padding mode")
    # across the worker's pipe the class is rebuilt by name: still an adapter error
    rebuilt = rebuild_exception(
        {"pickled": None, "type": "AdapterTranslationError", "module": "conformance.frameworks.adapter_errors",
         "message": "boom", "bases": ["Exception", "BaseException", "object"], "traceback": ""}
    )  # fmt: skip
    assert judge_error(rebuilt) == ADAPTER_ERROR
    assert judge_error(IndexError("SmallVector out of range")) is None  # the framework's: the default rule


Layer = tuple[int, tuple[int, ...], tuple[int, ...], dict[str, Any]]
GROUPED: list[Layer] = [  # (dims, input shape, weight shape, kwargs): torch's layouts
    (2, (2, 6, 7, 6), (9, 2, 3, 3), {"groups": 3, "padding": 1, "stride": (2, 1)}),
    (2, (1, 4, 8, 8), (8, 1, 4, 4), {"groups": 4, "padding": "same", "dilation": 1}),  # odd total: asymmetric
    (2, (1, 4, 7, 7), (4, 2, 3, 3), {"groups": 2, "padding": 1, "padding_mode": "reflect"}),
    (1, (2, 6, 11), (9, 2, 3), {"groups": 3, "padding": 2, "dilation": 2}),
]
TRANSPOSED: list[Layer] = [
    (2, (1, 6, 5, 4), (6, 2, 3, 3), {"groups": 3, "stride": 2, "padding": 1, "output_padding": 1})
]


def _torch(dims: int, x: np.ndarray, w: np.ndarray, b: np.ndarray, kwargs: dict, transposed: bool) -> np.ndarray:
    kwargs = dict(kwargs)
    mode = kwargs.pop("padding_mode", "zeros")
    tx = torch.from_numpy(x)
    if mode != "zeros":
        tx = torch.nn.functional.pad(tx, (kwargs["padding"],) * 2 * dims, mode=mode)
        kwargs["padding"] = 0
    op = getattr(torch.nn.functional, f"conv_transpose{dims}d" if transposed else f"conv{dims}d")
    return op(tx, torch.from_numpy(w), torch.from_numpy(b), **kwargs).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlx", "iree", "litert", "litert-builtin"])
def test_in_venv_runtime_agrees_with_torch_on_grouped_layers(name: str) -> None:
    _installed_or_skip(name)
    adapter = importlib.import_module(BUILTINS[name])
    assert adapter.version() and adapter.environment()
    rng = np.random.default_rng(0)
    layers = [(layer, False) for layer in GROUPED] + [(layer, True) for layer in TRANSPOSED]
    agreed = 0
    for (dims, input_shape, weight_shape, kwargs), transposed in layers:
        op = f"conv_transpose{dims}d" if transposed else f"conv{dims}d"
        if not hasattr(adapter, op):
            continue
        x, w = rng.standard_normal(input_shape).astype(np.float32), rng.standard_normal(weight_shape).astype(np.float32)
        b = rng.standard_normal(weight_shape[1] * kwargs["groups"] if transposed else weight_shape[0]).astype(
            np.float32
        )
        try:
            output = np.asarray(getattr(adapter, op)(x, w, b, **kwargs))
        except NotImplementedError as exc:  # Unsupported must say what the framework lacks
            assert str(exc), (name, kwargs)
            continue
        np.testing.assert_allclose(output, _torch(dims, x, w, b, kwargs, transposed), rtol=1e-4, atol=1e-4)
        agreed += 1
    assert agreed >= 2, name


@pytest.mark.slow
def test_paddle_runs_in_its_own_venv_and_agrees_with_torch_on_a_grouped_layer() -> None:
    _installed_or_skip("paddle")
    dims, input_shape, weight_shape, kwargs = GROUPED[0]
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(input_shape).astype(np.float32), rng.standard_normal(weight_shape).astype(np.float32)
    b = rng.standard_normal(weight_shape[0]).astype(np.float32)
    with IsolatedImplementation("paddle") as implementation:
        assert implementation.python == str(venv_python("paddle"))
        described = implementation.call_function(BUILTINS["paddle"], "version")
        output = implementation.function(x, w, b, **kwargs)  # the adapter's conv2d, called in the worker
    assert "own venv" in described and "Python 3." in described
    np.testing.assert_allclose(output, _torch(dims, x, w, b, kwargs, False), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_mlx_keeps_float64_and_bfloat16_as_asked() -> None:
    _installed_or_skip("mlx")
    import ml_dtypes

    from conformance.frameworks import mlx_core

    x = np.arange(2 * 4 * 5 * 5, dtype=np.float32).reshape(2, 4, 5, 5) / 7
    w = np.ones((4, 2, 3, 3), dtype=np.float32)
    out16 = mlx_core.conv2d(x.astype(ml_dtypes.bfloat16), w.astype(ml_dtypes.bfloat16), groups=2)
    assert out16.dtype == ml_dtypes.bfloat16
    # float64 is passed as float64 (mx.array alone would silently make float32): MLX refuses it itself
    with pytest.raises(ValueError, match="unsupported data type"):
        mlx_core.conv2d(x.astype(np.float64), w.astype(np.float64), groups=2)
