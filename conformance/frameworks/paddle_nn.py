"""Built-in ``paddle``: ``paddle.nn.functional.conv1d/2d/3d`` and ``conv1d/2d/3d_transpose`` with
``groups``, on Paddle's CPU place. It lives in its own venv (``.venv-frameworks/paddle``, built by
``make frameworks`` from constraints-frameworks-paddle.txt): PaddlePaddle 3.3.1 pins
``opt_einsum==3.3.0`` where .venv's TensorFlow and JAX take 3.4.0. Its worker imports numpy, Paddle
and the light conformance modules only, never torch.

Layouts: Paddle takes torch's as they are (``data_format`` "NCL"/"NCHW"/"NCDHW", weight ``(C_out,
C_in/g, *k)``, transposed weight ``(C_in, C_out/g, *k)``). Padding, as someone porting torch code
writes it: an int or tuple becomes Paddle's explicit per-dimension list, ``'same'``/``'valid'``
become Paddle's own ``'SAME'``/``'VALID'`` (so what Paddle does with them is what is measured).
Padding modes: ``paddle.nn.functional.pad(mode=)`` "reflect", "replicate", "circular", its pad list
the last spatial dimension first (like ``F.pad``), by the amounts of torch's rule; then the conv
gets no padding. torch's unbatched input gets the batch axis from ``paddle.unsqueeze``. bfloat16:
Paddle takes no NumPy bfloat16 array, so the array is passed as float32 (exact) and cast by
``Tensor.astype('bfloat16')``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.frameworks import own_venv, own_venv_facts
from conformance.frameworks.adapter_errors import judge_native_error, translating
from conformance.frameworks.layer import (
    check_padding_mode,
    explicit_padding,
    functional_conv_transposes,
    functional_convs,
    kernel_hw,
)

ARRAYS = "numpy"
judge_error = judge_native_error  # the adapter hook: a failure inside translating() is adapter_error
PADDLE_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}
DATA_FORMATS = {1: "NCL", 2: "NCHW", 3: "NCDHW"}
PADDLE_PADDING_STRINGS = {"same": "SAME", "valid": "VALID"}


def _paddle() -> Any:
    import paddle

    paddle.set_device("cpu")  # pinned: a GPU build would otherwise pick the GPU
    return paddle


def version() -> str:
    paddle = _paddle()
    return f"paddlepaddle {paddle.__version__}, {paddle.device.get_device()}; {own_venv()}"


def environment() -> dict[str, str]:
    """The settings that change Paddle's numerics or code path, and the venv it runs in."""
    paddle = _paddle()
    return {
        "paddle.version": paddle.__version__,
        "paddle.device": paddle.device.get_device(),
        **own_venv_facts("paddle"),
    }


def _tensor(paddle: Any, value: Any) -> Any:
    array = np.asarray(value)
    if array.dtype.name == "bfloat16":
        return paddle.to_tensor(array.astype(np.float32)).astype("bfloat16")
    return paddle.to_tensor(array)


def _padding(padding: Any, dims: int) -> Any:
    """torch's padding as Paddle's: 'SAME'/'VALID', or one amount per spatial dimension."""
    if isinstance(padding, str):
        if padding not in PADDLE_PADDING_STRINGS:
            from conformance.judging.outcomes import Unsupported

            raise Unsupported(f"padding={padding!r} is no padding torch defines; there is nothing to translate it to")
        return PADDLE_PADDING_STRINGS[padding]
    return [int(padding)] * dims if isinstance(padding, int) else [int(p) for p in padding]


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
    paddle = _paddle()
    functional = paddle.nn.functional
    with translating("paddle"):  # the adapter's own arithmetic on the arguments; Paddle's ops below
        mode = check_padding_mode(padding_mode, PADDLE_PAD_MODES, "paddle.nn.functional.pad")
        unbatched = np.ndim(input) == dims + 1
        conv_padding = _padding(padding, dims)
        pads = explicit_padding(padding, kernel_hw(weight, dims), dilation)
        pad_list = [amount for before_after in reversed(pads) for amount in before_after]  # last dim first
    x, w = _tensor(paddle, input), _tensor(paddle, weight)
    b = None if bias is None else _tensor(paddle, bias)
    if unbatched:
        x = paddle.unsqueeze(x, 0)
    if padding_mode != "zeros":
        x = functional.pad(x, pad_list, mode=mode, data_format=DATA_FORMATS[dims])
        conv_padding = [0] * dims
    output = getattr(functional, f"conv{dims}d")(
        x,
        w,
        bias=b,
        stride=stride,
        padding=conv_padding,
        dilation=dilation,
        groups=groups,
        data_format=DATA_FORMATS[dims],
    )
    return _numpy(paddle, output, unbatched)


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
    paddle = _paddle()
    with translating("paddle"):
        unbatched = np.ndim(input) == dims + 1
        conv_padding = _padding(padding, dims)
    x, w = _tensor(paddle, input), _tensor(paddle, weight)
    b = None if bias is None else _tensor(paddle, bias)
    if unbatched:
        x = paddle.unsqueeze(x, 0)
    output = getattr(paddle.nn.functional, f"conv{dims}d_transpose")(
        x,
        w,
        bias=b,
        stride=stride,
        padding=conv_padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
        data_format=DATA_FORMATS[dims],
    )
    return _numpy(paddle, output, unbatched)


def _numpy(paddle: Any, output: Any, unbatched: bool) -> np.ndarray:
    if unbatched:
        output = paddle.squeeze(output, 0)
    if output.dtype == paddle.bfloat16:  # .numpy() gives raw uint16: widen in Paddle (exact), narrow back
        import ml_dtypes

        return output.astype("float32").numpy().astype(ml_dtypes.bfloat16)
    return output.numpy()


# The torch.nn.functional signatures, one per rank, each calling the one op of that kind above.
conv1d, conv2d, conv3d = functional_convs(_conv)
conv_transpose1d, conv_transpose2d, conv_transpose3d = functional_conv_transposes(_conv_transpose)
