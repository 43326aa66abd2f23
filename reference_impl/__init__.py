"""A from-scratch grouped 2-D convolution in NumPy: the oracle torch is checked against.

It never uses torch or any library convolution routine. Two implementations that must agree:

* :func:`conv2d_loops` — one Python loop per index, reads like the formula; for learning.
* :func:`conv2d` — the vectorised version; the default implementation under test.

And their gradients, the same pair: :func:`conv2d_loops_backward` and :func:`conv2d_backward`.
"""
from .backward import Conv2dGradients, conv2d_backward
from .backward_loops import conv2d_loops_backward
from .geometry import ConvGeometry, plan_conv2d
from .loops import conv2d_loops
from .padding import pad_input, source_indices
from .vectorized import conv2d

__all__ = ["Conv2dGradients", "ConvGeometry", "conv2d", "conv2d_backward", "conv2d_loops", "conv2d_loops_backward",
           "pad_input", "plan_conv2d", "source_indices"]
