"""The backward pass written the way the chain rule reads: one loop per index.

The forward sum is

    y[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] * x_pad[n, g*C_g + c, i*s_h + p*d_h, j*s_w + q*d_w]

with g = o // O_g. Each term ``w * x_pad`` is a product, so with ``dy = dL/dy``:

* it sends ``dy[n, o, i, j] * w[o, c, p, q]`` to the padded input element it read,
* it sends ``dy[n, o, i, j] * x_pad[...]`` to the weight tap that read it,
* and ``b[o]`` collects ``dy[n, o, i, j]`` from every output position.

Only input channels of group g appear in output channel o's sum, so only they receive its
gradient: grouping is as visible backwards as forwards. Finally each padded element hands its
gradient to the input element it copied (reflect/replicate/circular), or drops it (zeros).
Far too slow for anything but small cases; checked against :mod:`reference_impl.backward`.
"""
from __future__ import annotations

import numpy as np

from .backward import Conv2dGradients, plan_backward
from .geometry import IntOrPair, Padding
from .padding import pad_input, source_indices


def conv2d_loops_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Conv2dGradients:
    """Gradients of ``sum(conv2d(...) * grad_output)``, one term of the forward sum at a time.

    >>> x = np.array([0.1, 1, 10, 100, 1000, 10000]).reshape(1, 6, 1, 1)
    >>> w = np.arange(1, 13.0).reshape(6, 2, 1, 1)
    >>> conv2d_loops_backward(np.ones((1, 6, 1, 1)), x, w, groups=3).grad_weight.reshape(6, 2)[4:].tolist()
    [[1000.0, 10000.0], [1000.0, 10000.0]]
    """
    input, weight, grad_output = np.asarray(input), np.asarray(weight), np.asarray(grad_output)
    geo, dtype = plan_backward(grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode)
    x = input.reshape(geo.batch, geo.in_channels, geo.height, geo.width)
    x_pad = pad_input(x, geo.pads, geo.padding_mode)  # (N, C_in, H_pad, W_pad)
    height_out, width_out = geo.output_size
    dy = grad_output.reshape(geo.batch, geo.out_channels, height_out, width_out)
    (kernel_h, kernel_w), (stride_h, stride_w) = geo.kernel, geo.stride
    dilation_h, dilation_w = geo.dilation

    grad_x_pad = np.zeros(x_pad.shape, dtype=dtype)
    grad_weight = np.zeros(weight.shape, dtype=dtype)
    grad_bias = None if bias is None else np.zeros(geo.out_channels, dtype=dtype)

    for n in range(geo.batch):
        for o in range(geo.out_channels):
            g = geo.group_of_output_channel(o)
            for i in range(height_out):
                for j in range(width_out):
                    upstream = dy[n, o, i, j]
                    if grad_bias is not None:
                        grad_bias[o] += upstream
                    for c, c_in in enumerate(geo.input_channels_of_group(g)):
                        for p in range(kernel_h):
                            for q in range(kernel_w):
                                row = i * stride_h + p * dilation_h
                                col = j * stride_w + q * dilation_w
                                grad_x_pad[n, c_in, row, col] += upstream * weight[o, c, p, q]
                                grad_weight[o, c, p, q] += upstream * x_pad[n, c_in, row, col]

    # Hand each padded element's gradient to the input element it copied (-1: a zero, dropped).
    top, bottom, left, right = geo.pads
    rows = source_indices(geo.height, top, bottom, geo.padding_mode)
    cols = source_indices(geo.width, left, right, geo.padding_mode)
    grad_x = np.zeros(x.shape, dtype=dtype)
    for padded_row, source_row in enumerate(rows):
        for padded_col, source_col in enumerate(cols):
            if source_row >= 0 and source_col >= 0:
                grad_x[:, :, source_row, source_col] += grad_x_pad[:, :, padded_row, padded_col]
    return Conv2dGradients(grad_x.reshape(input.shape), grad_weight, grad_bias)
