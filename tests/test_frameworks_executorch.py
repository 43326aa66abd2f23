"""The `executorch` column (issue 20 item 1): torch.export of the one-layer module, lowered with the
XNNPACK partitioner, run by ExecuTorch's Python runtime, in its own venv (.venv-frameworks/executorch).

The fast tests need no ExecuTorch: the registry, the venv's pins against the harness's, the layer the
adapter exports, how the runtime's errors are named and judged. The slow ones run the column's
worker in that venv and skip, naming the install command, where it is not built."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conformance.frameworks import (
    BUILTINS,
    builtin,
    executorch_xnnpack as adapter,
    install_command,
    status,
    venv_python,
)
from conformance.frameworks.adapter_errors import AdapterTranslationError
from conformance.frameworks.torch_module import layer_module
from conformance.judging.outcomes import ADAPTER_ERROR, UNSUPPORTED, Unsupported
from conformance.running.isolation import IsolatedImplementation

ROOT = Path(__file__).resolve().parents[1]
MODULE = BUILTINS["executorch"]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_executorch_is_a_builtin_with_its_own_venv_and_both_adapter_hooks() -> None:
    description = builtin("executorch")
    assert MODULE == "conformance.frameworks.executorch_xnnpack"
    assert description.venv == "executorch" and description.venv_constraints == "constraints-frameworks-executorch.txt"
    assert callable(adapter.environment) and callable(adapter.judge_error) and callable(adapter.version)
    for op in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
        function = getattr(adapter, op)
        assert function.__name__ == op and function.__module__ == MODULE, op
    assert "FRAMEWORK_VENVS ?= paddle executorch" in (ROOT / "Makefile").read_text()


def test_the_venv_pins_executorch_and_never_moves_the_harness_pins() -> None:
    venv_pins = _pins(ROOT / "constraints-frameworks-executorch.txt")
    harness = _pins(ROOT / "requirements.txt")
    assert venv_pins["executorch"] == "1.5.1"
    for package in ("torch", "numpy", "pyyaml", "ml-dtypes", "setuptools"):
        assert venv_pins[package] == harness[package], package  # the exported layer is the oracle's own torch


def test_a_missing_executorch_venv_says_how_to_build_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFORMANCE_FRAMEWORK_VENVS", str(tmp_path))
    assert venv_python("executorch") == tmp_path / "executorch" / "bin" / "python"
    availability = status("executorch")
    assert not availability.installed and f"no venv at {tmp_path / 'executorch'}" in availability.reason
    assert availability.install_command == install_command("executorch")
    assert "-r constraints-frameworks-executorch.txt" in availability.install_command


@pytest.mark.parametrize(
    ("dims", "transposed", "weight_shape", "kwargs"),
    [
        (1, False, (9, 2, 3), {"stride": 1, "padding": 2, "dilation": 2, "groups": 3}),
        (2, False, (8, 1, 4, 4), {"stride": 1, "padding": "same", "dilation": 1, "groups": 4}),
        (2, False, (4, 2, 3, 3), {"stride": 1, "padding": 1, "dilation": 1, "groups": 2, "padding_mode": "reflect"}),
        (3, False, (4, 1, 1, 2, 2), {"stride": 1, "padding": 0, "dilation": 1, "groups": 2}),
        (2, True, (6, 2, 3, 3), {"stride": 2, "padding": 1, "dilation": 1, "groups": 3, "output_padding": 1}),
        (3, True, (4, 3, 2, 2, 2), {"stride": 2, "padding": 0, "dilation": 1, "groups": 2}),
    ],
)
def test_the_exported_layer_is_the_case_layer(
    dims: int, transposed: bool, weight_shape: tuple[int, ...], kwargs: dict
) -> None:
    # The module holds the case's weight with the channels read right (C_out/C_in per group, transposed
    # (C_in, C_out/g, *k)): it computes what torch's functional op computes with those arguments.
    rng = np.random.default_rng(0)
    weight = torch.from_numpy(rng.standard_normal(weight_shape).astype(np.float32))
    channels = weight_shape[0] if transposed else weight_shape[1] * kwargs["groups"]
    out_channels = weight_shape[1] * kwargs["groups"] if transposed else weight_shape[0]
    bias = torch.from_numpy(rng.standard_normal(out_channels).astype(np.float32))
    x = torch.from_numpy(rng.standard_normal((2, channels, *[7] * dims)).astype(np.float32))
    module = layer_module(dims, transposed, weight, bias, **kwargs)
    functional = dict(kwargs)
    mode = functional.pop("padding_mode", "zeros")
    if mode != "zeros":
        x_padded = torch.nn.functional.pad(x, (functional["padding"],) * 2 * dims, mode=mode)
        functional["padding"] = 0
    else:
        x_padded = x
    op = getattr(torch.nn.functional, f"conv_transpose{dims}d" if transposed else f"conv{dims}d")
    with torch.no_grad():
        torch.testing.assert_close(module(x), op(x_padded, weight, bias, **functional))
    assert module.weight.dtype == weight.dtype and not module.training


def test_torch_judges_the_layer_and_a_wrong_rank_weight_is_unsupported() -> None:
    weight = torch.ones(4, 4, 3, 3)
    with pytest.raises(ValueError, match='Only "zeros" padding mode is supported for ConvTranspose2d'):
        layer_module(2, True, weight, None, 1, 1, 1, 2, padding_mode="reflect")
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        layer_module(2, False, weight, None, 1, 1, 1, 0)
    with pytest.raises(Unsupported, match="an nn.Conv2d holds a 4-D weight; a 3-D one"):
        layer_module(2, False, torch.ones(4, 4, 3), None, 1, 1, 1, 1)


def test_the_runtimes_error_codes_are_named_and_judged() -> None:
    log = (
        "[kernel_ops_util.cpp:394] Check failed (in.dim() == 3 || in.dim() == 4): Expect input tensor to be 3-D or "
        "4-D, but got, 5.\n[method.cpp:1483] KernelCall failed at instruction 0:0 in operator aten::convolution.out: "
        "0x12\n[method.cpp:1493] arg 0 with type id 1\n"
    )
    message = adapter._with_log("method->execute() failed with error 0x12", log)
    assert message.startswith("method->execute() failed with error 0x12 (InvalidArgument); ExecuTorch's log: ")
    assert "Expect input tensor to be 3-D or 4-D" in message and "type id" not in message
    assert adapter.judge_error(RuntimeError(message)) is None  # a kernel's argument check: the default rule, refused
    missing = adapter._with_log("method->execute() failed with error 0x14", "")
    assert missing == "method->execute() failed with error 0x14 (OperatorMissing)"
    assert adapter.judge_error(RuntimeError(missing)) == UNSUPPORTED
    assert adapter.judge_error(AdapterTranslationError("the executorch adapter's translation failed")) == ADAPTER_ERROR
    assert adapter._with_log("no code here", "") == "no code here"


def _installed_or_skip() -> None:
    availability = status("executorch")
    if not availability.installed:
        pytest.skip(f"executorch: {availability.reason}; install: {availability.install_command}")


def _layer(rng: np.random.Generator, input_shape: tuple, weight_shape: tuple, dtype: str = "float32") -> tuple:
    x = rng.standard_normal(input_shape).astype(dtype)
    w = rng.standard_normal(weight_shape).astype(dtype)
    return x, w, rng.standard_normal(weight_shape[0]).astype(dtype)


@pytest.mark.slow
def test_executorch_runs_in_its_own_venv_and_agrees_with_torch_on_grouped_layers() -> None:
    _installed_or_skip()
    rng = np.random.default_rng(1)
    x, w, b = _layer(rng, (2, 6, 7, 6), (9, 2, 3, 3))
    x1, w1, b1 = _layer(rng, (6, 11), (9, 2, 3))  # unbatched conv1d: torch's own unsqueeze in the graph
    xt = rng.standard_normal((1, 6, 5, 4)).astype(np.float32)
    wt = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    bt = rng.standard_normal(6).astype(np.float32)
    with IsolatedImplementation("executorch") as implementation:
        assert implementation.python == str(venv_python("executorch"))
        described = implementation.call_function(MODULE, "version")
        environment = implementation.call_function(MODULE, "environment")
        grouped = implementation.call_function(MODULE, "conv2d", x, w, b, (2, 1), 1, 1, 3)
        reflect = implementation.call_function(MODULE, "conv2d", x, w, b, 1, 1, 1, 3, "reflect")
        unbatched = implementation.call_function(MODULE, "conv1d", x1, w1, b1, 1, 2, 2, 3)
        transposed = implementation.call_function(MODULE, "conv_transpose2d", xt, wt, bt, 2, 1, 1, 3)
        delegated = implementation.call_function(MODULE, "lowered", "conv2d", x, w, b, stride=1, padding=1, groups=3)
        in_float64 = implementation.call_function(
            MODULE, "lowered", "conv2d", x.astype("float64"), w.astype("float64"), None, groups=3
        )
    assert "executorch 1.5.1" in described and "own venv" in described and "torch 2.13.0" in described
    assert environment["executorch.partitioner"] == "XnnpackPartitioner"
    assert environment["executorch.xnnpack_threads"] == "1" and "XnnpackBackend" in environment["executorch.backends"]
    t = torch.from_numpy
    functional = torch.nn.functional
    expected = functional.conv2d(t(x), t(w), t(b), stride=(2, 1), padding=1, groups=3)
    np.testing.assert_allclose(np.asarray(grouped), expected.numpy(), rtol=1e-4, atol=1e-4)
    padded = functional.pad(t(x), (1, 1, 1, 1), mode="reflect")
    np.testing.assert_allclose(
        np.asarray(reflect), functional.conv2d(padded, t(w), t(b), groups=3).numpy(), rtol=1e-4, atol=1e-4
    )
    expected1 = functional.conv1d(t(x1), t(w1), t(b1), padding=2, dilation=2, groups=3)
    assert np.shape(unbatched) == tuple(expected1.shape) == (9, 11)
    np.testing.assert_allclose(np.asarray(unbatched), expected1.numpy(), rtol=1e-4, atol=1e-4)
    expected_t = functional.conv_transpose2d(t(xt), t(wt), t(bt), stride=2, padding=1, output_padding=1, groups=3)
    np.testing.assert_allclose(np.asarray(transposed), expected_t.numpy(), rtol=1e-4, atol=1e-4)
    # float32 goes to XNNPACK; float64 is left to the portable kernels (still ExecuTorch running it)
    assert delegated.get("xnnpack") == 1 and not any("convolution" in op for op in delegated), delegated
    assert "xnnpack" not in in_float64 and in_float64.get("aten.convolution.out") == 1, in_float64


@pytest.mark.slow
def test_executorch_refuses_a_grouped_conv3d_at_run_time_with_its_kernels_reason() -> None:
    # Finding: XNNPACK takes no 3-D convolution, the portable kernel takes only 3-D/4-D inputs, and
    # neither torch.export nor the lowering says so: the program is written, the runtime refuses it.
    _installed_or_skip()
    rng = np.random.default_rng(2)
    x, w, b = _layer(rng, (1, 4, 3, 3, 3), (4, 2, 1, 1, 1))
    with IsolatedImplementation("executorch") as implementation:
        with pytest.raises(RuntimeError, match=r"error 0x12 \(InvalidArgument\).*Expect input tensor to be 3-D or 4-D"):
            implementation.call_function(MODULE, "conv3d", x, w, b, 1, 0, 1, 2)


def test_the_exported_input_has_torch_default_strides_and_empty_weights_digest() -> None:
    # The harness's empty-batch arrays come with all strides 0; ExecuTorch's emitter refuses a 0 stride
    # ("0 in strides is not supported for ExecuTorch."), a user's fresh tensor has none: the adapter
    # exports the input with the default strides (the empty-batch cases pass in the matrix only so).
    empty = torch.zeros(0, 6, 7, 5).as_strided((0, 6, 7, 5), (0, 0, 0, 0))
    assert empty.is_contiguous()  # torch does not see it: .contiguous() would keep the zeros
    assert adapter._dense(empty).stride() == (210, 35, 5, 1) == torch.zeros(0, 6, 7, 5).stride()
    x = torch.arange(24.0).reshape(2, 3, 4).transpose(1, 2)
    torch.testing.assert_close(adapter._dense(x), x)
    # a zero-size kernel's weight (errors/kernel_size_zero) is digested, not an adapter_error
    zero_kernel = torch.zeros(4, 2, 0, 3).as_strided((4, 2, 0, 3), (0, 0, 0, 0))
    assert adapter._digest(zero_kernel) == adapter._digest(torch.zeros(4, 2, 0, 3))
    assert adapter._digest(torch.ones(2, 2)) != adapter._digest(torch.zeros(2, 2))
