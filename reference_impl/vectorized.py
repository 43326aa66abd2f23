"""The grouped convolution with the loops turned into array operations, for 1, 2 and 3 spatial dims.

Groups is one more axis: split the input channels into (G, C_in/G) and the weight's output
channels into (G, C_out/G), contract over (C_in/G, *kernel) for each group at once, and merge
(G, C_out/G) back into C_out. The group axis is carried through, never mixed: that is the
whole meaning of ``groups``. The number of spatial dims is only a count here: shapes are built
with ``*spatial`` and every algorithm is written once for any count.

*How* the contraction runs depends on the shape (see algorithms/ and docs/performance.md):
a matmul for 1x1 kernels, a numba direct convolution or a loop over the kernel taps for few
channels per group, a GEMM over windows for many. This module does what they share: check,
pad, add bias, reshape.
"""

from __future__ import annotations

import numpy as np

from .algorithms import ALGORITHMS, ZERO_PADDING_INSIDE, choose_algorithm, sliding_windows
from .dtypes import bfloat16_in_float32
from .geometry import ConvGeometry, IntOrTuple, Padding, plan_conv
from .padding import pad_input

__all__ = ["conv1d", "conv2d", "conv3d", "convolve", "convolve_planned", "result_dtype", "sliding_windows"]


def result_dtype(*arrays: np.ndarray | None) -> np.dtype:
    """The dtype torch would compute in: the arrays' common type (float16 stays float16)."""
    return np.result_type(*(np.asarray(a) for a in arrays if a is not None))


def convolve_planned(x: np.ndarray, weight: np.ndarray, geo: ConvGeometry, algorithm: str | None = None) -> np.ndarray:
    """The convolution without bias on a batched, unpadded input already in its final dtype:
    (N, C_in, *spatial), (C_out, C_in/G, *k) -> (N, C_out, *output_size).

    The shared core of :func:`convolve` and of the gradients and transposed convolutions built on it.
    """
    name = choose_algorithm(geo, dtype=x.dtype) if algorithm is None else algorithm
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}, should be one of {sorted(ALGORITHMS)}")
    if name == "pointwise" and any(k != 1 for k in geo.kernel):
        raise ValueError(f"algorithm 'pointwise' needs a 1x1 kernel, got {geo.kernel}")
    if any(geo.pads) and not (name in ZERO_PADDING_INSIDE and geo.padding_mode == "zeros"):
        x = pad_input(x, geo.pads, geo.padding_mode)  # (N, C_in, *padded)
    out = ALGORITHMS[name](x, weight, geo)  # (N, G, C_out/G, *out)
    return out.reshape(geo.batch, geo.out_channels, *geo.output_size)  # (N, C_out, *out)


@bfloat16_in_float32
def convolve(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    spatial_dims: int,
    algorithm: str | None = None,
) -> np.ndarray:
    """Grouped cross-correlation over ``spatial_dims`` (1, 2 or 3) spatial dims; what conv1d,
    conv2d and conv3d are. Input (N, C_in, *spatial) or unbatched (C_in, *spatial).

    >>> x = np.arange(12.0).reshape(1, 4, 3)       # 1-d: N=1, C=4, L=3; output 0 = 0+1+3+4
    >>> convolve(x, np.ones((2, 2, 2)), groups=2, spatial_dims=1).tolist()
    [[[8.0, 12.0], [32.0, 36.0]]]
    """
    input, weight = np.asarray(input), np.asarray(weight)
    geo = plan_conv(
        input.shape,
        weight.shape,
        None if bias is None else np.shape(bias),
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        spatial_dims=spatial_dims,
    )
    dtype = result_dtype(input, weight, bias)
    x = input.astype(dtype, copy=False).reshape(geo.batched_input_shape)  # (N, C_in, *spatial)
    out = convolve_planned(x, weight.astype(dtype, copy=False), geo, algorithm)  # (N, C_out, *out)
    if bias is not None:
        out = out + np.asarray(bias, dtype=dtype).reshape(-1, *(1,) * spatial_dims)  # (C_out, 1, ...) broadcast
    return np.ascontiguousarray(out, dtype=dtype).reshape(geo.output_shape)


def conv1d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    algorithm: str | None = None,
) -> np.ndarray:
    """Grouped 1-D cross-correlation, ``torch.nn.functional.conv1d``'s signature plus ``padding_mode``.
    Weight (C_out, C_in/G, k); input (N, C_in, L) or (C_in, L).

    Mamba's causal depthwise conv: pad k-1 on both sides, keep the first L outputs.

    >>> y = conv1d(np.array([[[1.0, 2, 3, 4]]]), np.array([[[1.0, 10]]]), padding=1)
    >>> y.tolist()                                              # y[t] = 1*x[t-1] + 10*x[t]
    [[[10.0, 21.0, 32.0, 43.0, 4.0]]]
    """
    return convolve(
        input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=1, algorithm=algorithm
    )


def conv2d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    algorithm: str | None = None,
) -> np.ndarray:
    """Grouped 2-D cross-correlation over NumPy arrays, with ``torch.nn.functional.conv2d``'s
    signature (plus ``padding_mode``, which torch handles in ``nn.Conv2d``).

    ``algorithm`` forces one of ``ALGORITHMS`` ("pointwise" needs a 1x1 kernel); ``None``
    lets :func:`choose_algorithm` pick by shape. All give the same result up to rounding.

    >>> x = np.array([0.1, 1, 10, 100, 1000, 10000]).reshape(1, 6, 1, 1)
    >>> w = np.arange(1, 19.0).reshape(6, 3, 1, 1)        # groups=2: 3 inputs per output
    >>> (conv2d(x, w, groups=2).ravel() / 100).round(4).tolist()
    [0.321, 0.654, 0.987, 1320.0, 1653.0, 1986.0]
    """
    return convolve(
        input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=2, algorithm=algorithm
    )


def conv3d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    algorithm: str | None = None,
) -> np.ndarray:
    """Grouped 3-D cross-correlation, ``torch.nn.functional.conv3d``'s signature plus ``padding_mode``.
    Weight (C_out, C_in/G, kD, kH, kW); input (N, C_in, D, H, W) or (C_in, D, H, W).

    >>> x = np.ones((1, 2, 3, 3, 3))                              # X3D-style depthwise 3x3x3
    >>> conv3d(x, np.ones((2, 1, 3, 3, 3)), padding=1, groups=2)[0, 0, :, 1, 1].tolist()
    [18.0, 27.0, 18.0]
    """
    return convolve(
        input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=3, algorithm=algorithm
    )
