"""The same grouped convolution with the loops turned into array operations.

Groups is one more axis: split the input channels into (G, C_in/G) and the weight's output
channels into (G, C_out/G), contract over (C_in/G, kH, kW) for each group at once, and merge
(G, C_out/G) back into C_out. The group axis is carried through, never mixed: that is the
whole meaning of ``groups``.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .geometry import ConvGeometry, IntOrPair, Padding, plan_conv2d
from .padding import pad_input


def sliding_windows(x_padded: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """A read-only view of every kernel window: (N, C_in, H_out, W_out, kH, kW), no copy."""
    n, c, _, _ = x_padded.shape
    height_out, width_out = geo.output_size
    s_n, s_c, s_h, s_w = x_padded.strides
    return as_strided(
        x_padded,
        shape=(n, c, height_out, width_out, *geo.kernel),
        strides=(s_n, s_c, s_h * geo.stride[0], s_w * geo.stride[1],
                 s_h * geo.dilation[0], s_w * geo.dilation[1]),
        writeable=False,
    )


def conv2d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Grouped 2-D cross-correlation over NumPy arrays, with ``torch.nn.functional.conv2d``'s
    signature (plus ``padding_mode``, which torch handles in ``nn.Conv2d``).

    >>> x = np.array([0.1, 1, 10, 100, 1000, 10000]).reshape(1, 6, 1, 1)
    >>> w = np.arange(1, 19.0).reshape(6, 3, 1, 1)        # groups=2: 3 inputs per output
    >>> (conv2d(x, w, groups=2).ravel() / 100).round(4).tolist()
    [0.321, 0.654, 0.987, 1320.0, 1653.0, 1986.0]
    """
    input, weight = np.asarray(input), np.asarray(weight)
    geo = plan_conv2d(input.shape, weight.shape, None if bias is None else np.shape(bias),
                      stride, padding, dilation, groups, padding_mode)
    dtype = np.result_type(input, weight, *(() if bias is None else (np.asarray(bias),)))
    G, C_g, O_g = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    kernel_h, kernel_w = geo.kernel
    height_out, width_out = geo.output_size

    x = input.astype(dtype, copy=False).reshape(geo.batch, geo.in_channels, geo.height, geo.width)
    x = pad_input(x, geo.pads, geo.padding_mode)                  # (N, C_in, H_pad, W_pad)
    windows = sliding_windows(x, geo)                             # (N, C_in, H_out, W_out, kH, kW)
    windows = windows.reshape(geo.batch, G, C_g, height_out, width_out, kernel_h, kernel_w)
    w = weight.astype(dtype, copy=False).reshape(G, O_g, C_g, kernel_h, kernel_w)

    # Contract over (c, p, q) within each group g: the group axis is shared, never summed.
    out = np.einsum("ngchwpq,gocpq->ngohw", windows, w, optimize=True)  # (N, G, O_g, H_out, W_out)
    out = out.reshape(geo.batch, geo.out_channels, height_out, width_out)
    if bias is not None:
        out = out + np.asarray(bias, dtype=dtype)[None, :, None, None]
    return out.astype(dtype, copy=False).reshape(geo.output_shape)
