"""The grouped convolution with the loops turned into array operations.

Groups is one more axis: split the input channels into (G, C_in/G) and the weight's output
channels into (G, C_out/G), contract over (C_in/G, kH, kW) for each group at once, and merge
(G, C_out/G) back into C_out. The group axis is carried through, never mixed: that is the
whole meaning of ``groups``.

*How* the contraction runs depends on the shape (see algorithms/ and docs/performance.md):
a matmul for 1x1 kernels, im2col + batched GEMM for many channels per group, a loop over the
kernel taps for depthwise. This module does what they share: check, pad, add bias, reshape.
"""
from __future__ import annotations

import numpy as np

from .algorithms import ALGORITHMS, ZERO_PADDING_INSIDE, choose_algorithm, sliding_windows
from .geometry import IntOrPair, Padding, plan_conv2d
from .padding import pad_input

__all__ = ["conv2d", "sliding_windows"]


def conv2d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
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
    input, weight = np.asarray(input), np.asarray(weight)
    geo = plan_conv2d(input.shape, weight.shape, None if bias is None else np.shape(bias),
                      stride, padding, dilation, groups, padding_mode)
    dtype = np.result_type(input, weight, *(() if bias is None else (np.asarray(bias),)))
    name = choose_algorithm(geo, dtype=dtype) if algorithm is None else algorithm
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}, should be one of {sorted(ALGORITHMS)}")
    if name == "pointwise" and geo.kernel != (1, 1):
        raise ValueError(f"algorithm 'pointwise' needs a 1x1 kernel, got {geo.kernel}")
    height_out, width_out = geo.output_size

    x = input.astype(dtype, copy=False).reshape(geo.batch, geo.in_channels, geo.height, geo.width)
    if any(geo.pads) and not (name in ZERO_PADDING_INSIDE and geo.padding_mode == "zeros"):
        x = pad_input(x, geo.pads, geo.padding_mode)              # (N, C_in, H_pad, W_pad)
    w = weight.astype(dtype, copy=False)                          # (C_out, C_in/G, kH, kW)

    out = ALGORITHMS[name](x, w, geo)                             # (N, G, C_out/G, H_out, W_out)
    out = out.reshape(geo.batch, geo.out_channels, height_out, width_out)  # (N, C_out, H_out, W_out)
    if bias is not None:
        out = out + np.asarray(bias, dtype=dtype)[None, :, None, None]
    return np.ascontiguousarray(out, dtype=dtype).reshape(geo.output_shape)
