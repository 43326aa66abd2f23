"""The grouped convolution written the way the maths reads: one loop per index.

This is the version to learn from; it is far too slow for anything but small cases, and it is
checked against the vectorised version (and both against torch) in the tests.

    y[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] * x_pad[n, g*C_g + c, i*s_h + p*d_h, j*s_w + q*d_w]

where g = o // O_g is the group of output channel o, C_g = in_channels / groups and
O_g = out_channels / groups. The weight's second axis, c, counts input channels *within* the
group, which is why the weight has shape (out_channels, in_channels/groups, kH, kW).
"""
from __future__ import annotations

import numpy as np

from .geometry import IntOrPair, Padding, plan_conv2d
from .padding import pad_input


def conv2d_loops(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Grouped 2-D cross-correlation, like ``torch.nn.functional.conv2d``, one element at a time.

    The seed experiment: six inputs 0.1 ... 10000, weights 1 ... 12, groups=3. Output channel 0
    is in group 0 and reads input channels 0 and 1 only: 1*0.1 + 2*1 = 2.1.

    >>> x = np.array([0.1, 1, 10, 100, 1000, 10000]).reshape(1, 6, 1, 1)
    >>> w = np.arange(1, 13.0).reshape(6, 2, 1, 1)
    >>> conv2d_loops(x, w, groups=3).ravel().round(6).tolist()
    [2.1, 4.3, 650.0, 870.0, 109000.0, 131000.0]
    """
    input, weight = np.asarray(input), np.asarray(weight)
    geo = plan_conv2d(input.shape, weight.shape, None if bias is None else np.shape(bias),
                      stride, padding, dilation, groups, padding_mode)
    dtype = np.result_type(input, weight, *(() if bias is None else (np.asarray(bias),)))
    x = input.reshape(geo.batch, geo.in_channels, geo.height, geo.width)
    x = pad_input(x, geo.pads, geo.padding_mode)  # (N, C_in, H_padded, W_padded)

    (kernel_h, kernel_w), (stride_h, stride_w) = geo.kernel, geo.stride
    dilation_h, dilation_w = geo.dilation
    height_out, width_out = geo.output_size
    out = np.zeros((geo.batch, geo.out_channels, height_out, width_out), dtype=dtype)

    for n in range(geo.batch):
        for o in range(geo.out_channels):
            g = geo.group_of_output_channel(o)
            for i in range(height_out):
                for j in range(width_out):
                    total = dtype.type(0) if bias is None else dtype.type(bias[o])
                    for c, c_in in enumerate(geo.input_channels_of_group(g)):
                        for p in range(kernel_h):
                            for q in range(kernel_w):
                                row = i * stride_h + p * dilation_h
                                col = j * stride_w + q * dilation_w
                                total += weight[o, c, p, q] * x[n, c_in, row, col]
                    out[n, o, i, j] = total
    return out.reshape(geo.output_shape)
