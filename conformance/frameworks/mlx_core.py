"""Built-in ``mlx``: ``mlx.core.conv1d/2d/3d`` and ``conv_transpose1d/2d/3d`` with ``groups``, on
MLX's CPU device (``mlx[cpu]`` on Linux; ``pip install mlx-cpu`` alone installs a package whose
``import mlx.core`` fails).

Layouts: MLX is channels-last. Input ``(N, C, *spatial)`` -> ``(N, *spatial, C)`` and back by
``mx.transpose``; a forward weight ``(C_out, C_in/g, *k)`` -> ``(C_out, *k, C_in/g)``; a transposed
weight — torch's ``(C_in, C_out/g, *k)`` — -> MLX's ``(C_out, *k, C_in/g)``: reshaped to
``(g, C_in/g, C_out/g, *k)``, moved to ``(g, C_out/g, *k, C_in/g)`` and flattened (with ``mx.reshape``
and ``mx.transpose``). An input of another rank than the op's, or a ``groups`` the transposed weight
cannot be split by, is passed as it is, for MLX to judge; torch's unbatched ``(C, *spatial)`` input
gets the batch axis added (``mx.expand_dims``) and removed again.

Padding: symmetric amounts go to ``mx.convNd(padding=)``; torch's ``'same'`` with an odd total
(an even kernel) needs different amounts before and after, which only ``mx.conv_general(padding=(low,
high))`` takes. Padding modes: ``mx.pad`` has "edge" (replicate) and "reflect", no circular.
Precision: the arrays are made with an explicit ``dtype`` (``mx.array(float64_array)`` silently
makes float32); MLX computes float64 on the CPU. Transposed convs pad with zeros only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.frameworks.adapter_errors import judge_native_error, translating
from conformance.frameworks.layer import (
    check_padding_mode,
    explicit_padding,
    functional_conv_transposes,
    functional_convs,
    kernel_hw,
    ntuple,
)

ARRAYS = "numpy"
judge_error = judge_native_error  # the adapter hook: a failure inside translating() is adapter_error
MLX_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge"}


def _mx() -> Any:
    import mlx.core as mx

    mx.set_default_device(mx.cpu)  # pinned: on Apple silicon the default would be the GPU
    return mx


def version() -> str:
    mx = _mx()
    return f"mlx {mx.__version__}, {mx.default_device()}"


def environment() -> dict[str, str]:
    """The settings that change MLX's numerics or code path."""
    mx = _mx()
    return {"mlx.version": mx.__version__, "mlx.device": "cpu", "mlx.dtype": "the case's (explicit dtype=)"}


def _mlx_array(mx: Any, value: Any) -> Any:
    array = np.asarray(value)
    dtype = getattr(mx, str(array.dtype), None)  # float32, float64, float16, bfloat16
    if dtype is None:
        from conformance.judging.outcomes import Unsupported

        raise Unsupported(f"mlx has no dtype {array.dtype}")
    return mx.array(array, dtype=dtype)


def _channels_last(mx: Any, value: Any, dims: int) -> Any:
    """(N, C, *spatial) -> (N, *spatial, C); another rank is left as it is, for MLX to judge."""
    if value.ndim != dims + 2:
        return value
    return mx.transpose(value, (0, *range(2, dims + 2), 1))


def _channels_first(mx: Any, value: Any, dims: int) -> Any:
    if value.ndim != dims + 2:
        return value
    return mx.transpose(value, (0, dims + 1, *range(1, dims + 1)))


def _conv(
    dims: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    padding_mode: str,
) -> np.ndarray:
    mx = _mx()
    with translating("mlx"):  # the adapter's own arithmetic on the arguments; MLX's ops below
        mode = check_padding_mode(padding_mode, MLX_PAD_MODES, "mx.pad")
        pads = explicit_padding(padding, kernel_hw(weight, dims), dilation)
        unbatched = np.ndim(input) == dims + 1
        strides, dilations = ntuple(stride, dims), ntuple(dilation, dims)
    x = _mlx_array(mx, input)
    if unbatched:
        x = mx.expand_dims(x, 0)
    x = _channels_last(mx, x, dims)
    w = _channels_last(mx, _mlx_array(mx, weight), dims)  # (C_out, C_in/g, *k) -> (C_out, *k, C_in/g)
    if padding_mode != "zeros" and x.ndim == dims + 2:
        x = mx.pad(x, [(0, 0), *pads, (0, 0)], mode=mode)
        pads = ((0, 0),) * dims
    if all(before == after for before, after in pads):
        conv = getattr(mx, f"conv{dims}d")
        padding_arg = pads[0][0] if dims == 1 else tuple(before for before, _ in pads)
        output = conv(
            x, w, stride=strides[0] if dims == 1 else strides, padding=padding_arg,
            dilation=dilations[0] if dims == 1 else dilations, groups=groups,
        )  # fmt: skip
    else:
        output = mx.conv_general(
            x,
            w,
            stride=list(strides),
            padding=([b for b, _ in pads], [a for _, a in pads]),
            kernel_dilation=list(dilations),
            groups=groups,
        )
    if bias is not None:
        output = output + _mlx_array(mx, bias)  # channels-last: the bias broadcasts over the last axis
    return _numpy(mx, _channels_first(mx, output, dims), unbatched)


def _conv_transpose(
    dims: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: int,
    dilation: Any,
) -> np.ndarray:
    mx = _mx()
    with translating("mlx"):
        unbatched = np.ndim(input) == dims + 1
        one = (lambda values: values[0]) if dims == 1 else (lambda values: values)
        arguments = {
            "stride": one(ntuple(stride, dims)),
            "padding": one(ntuple(padding, dims)),
            "dilation": one(ntuple(dilation, dims)),
            "output_padding": one(ntuple(output_padding, dims)),
        }
    x = _mlx_array(mx, input)
    if unbatched:
        x = mx.expand_dims(x, 0)
    x = _channels_last(mx, x, dims)
    w = _transposed_weight(mx, _mlx_array(mx, weight), dims, groups)
    conv_transpose = getattr(mx, f"conv_transpose{dims}d")
    output = conv_transpose(x, w, groups=groups, **arguments)
    if bias is not None:
        output = output + _mlx_array(mx, bias)
    return _numpy(mx, _channels_first(mx, output, dims), unbatched)


def _transposed_weight(mx: Any, w: Any, dims: int, groups: int) -> Any:
    """torch's (C_in, C_out/g, *k) as MLX's (C_out, *k, C_in/g); as it is where it cannot be split."""
    if w.ndim != dims + 2 or groups < 1 or w.shape[0] % groups:
        return w
    c_in, c_out_per_group, kernel = w.shape[0], w.shape[1], tuple(w.shape[2:])
    grouped = mx.reshape(w, (groups, c_in // groups, c_out_per_group, *kernel))
    moved = mx.transpose(grouped, (0, 2, *range(3, dims + 3), 1))  # (g, C_out/g, *k, C_in/g)
    return mx.reshape(moved, (groups * c_out_per_group, *kernel, c_in // groups))


def _numpy(mx: Any, output: Any, unbatched: bool) -> np.ndarray:
    if unbatched and output.ndim > 0:
        output = mx.squeeze(output, 0)
    if output.dtype == mx.bfloat16:  # NumPy reads no MLX bfloat16 buffer: widen (exact), then narrow back
        import ml_dtypes

        return np.array(output.astype(mx.float32)).astype(ml_dtypes.bfloat16)
    return np.array(output)


# The torch.nn.functional signatures, one per rank, each calling the one op of that kind above.
conv1d, conv2d, conv3d = functional_convs(_conv)
conv_transpose1d, conv_transpose2d, conv_transpose3d = functional_conv_transposes(_conv_transpose)
