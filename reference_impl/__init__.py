"""A from-scratch grouped convolution in NumPy, 1-, 2- and 3-d, plain and transposed: the oracle
torch is checked against.

It never uses torch or any library convolution routine. Every op comes as two implementations
that must agree, each written once for any number of spatial dims:

* the loop version (``conv2d_loops``, ``conv_transpose1d_loops``, ...) — one Python loop per
  index, reads like the formula; for learning.
* the vectorised version (``conv1d``, ``conv2d``, ``conv3d``, ``conv_transpose1d/2d/3d``) — the
  default implementation under test, with ``torch.nn.functional``'s signatures (the forward
  convolutions also take ``padding_mode=``; the transposed ones take
  ``(input, weight, bias, stride, padding, output_padding, groups, dilation)``, in that order).

And their gradients, ``<name>_backward`` beside each, returning (grad_input, grad_weight, grad_bias).
The transposed convolution is the convolution's input-gradient (transposed.py).
"""

import os

# OpenBLAS (NumPy's BLAS) keeps its idle threads spinning for 2^28 cycles (~0.1 s) after each
# threaded call unless told otherwise. The reference runs numba kernels right after its GEMMs (the
# transposed convolutions' scatter path: a GEMM, then numba's col2im), and on 2 cores a spinning
# BLAS thread took a core from them: the decoder ConvTranspose2d took 4.0 ms with both on 2 threads,
# 1.8 with the spin cut to 2^18 cycles (~0.1 ms), 1.9 on 1 thread. Cut to 2^4, OpenBLAS's own threads
# slept between the steps of one GEMM: ShuffleNet's pointwise layer went from 0.5 to 1.5 ms
# (docs/performance.md, round 6). OpenBLAS reads this once, when NumPy loads it: it takes effect
# where reference_impl is imported before NumPy (the conformance CLI and the benchmarks do so);
# a value already set is left alone.
OPENBLAS_THREAD_TIMEOUT = "18"
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_THREAD_TIMEOUT)

from .backward import (
    Conv2dGradients,
    ConvGradients,
    conv1d_backward,
    conv2d_backward,
    conv3d_backward,
    convolve_backward,
)
from .backward_loops import conv1d_loops_backward, conv2d_loops_backward, conv3d_loops_backward, convolve_loops_backward
from .geometry import ConvGeometry, TransposedGeometry, plan_conv, plan_conv2d, plan_conv_transpose
from .loops import conv1d_loops, conv2d_loops, conv3d_loops, conv_loops
from .padding import pad_input, source_indices
from .transposed import (
    conv_transpose1d,
    conv_transpose1d_backward,
    conv_transpose2d,
    conv_transpose2d_backward,
    conv_transpose3d,
    conv_transpose3d_backward,
    convolve_transpose,
    convolve_transpose_backward,
)
from .transposed_loops import (
    conv_transpose1d_loops,
    conv_transpose1d_loops_backward,
    conv_transpose2d_loops,
    conv_transpose2d_loops_backward,
    conv_transpose3d_loops,
    conv_transpose3d_loops_backward,
    convolve_transpose_loops,
    convolve_transpose_loops_backward,
)
from .vectorized import conv1d, conv2d, conv3d, convolve

# The six ops by their torch.nn.functional name, for code that picks one by a case's op.
OPS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")

__all__ = [
    "OPS",
    "Conv2dGradients",
    "ConvGeometry",
    "ConvGradients",
    "TransposedGeometry",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv1d_backward",
    "conv2d_backward",
    "conv3d_backward",
    "conv_transpose1d_backward",
    "conv_transpose2d_backward",
    "conv_transpose3d_backward",
    "conv1d_loops",
    "conv2d_loops",
    "conv3d_loops",
    "conv_transpose1d_loops",
    "conv_transpose2d_loops",
    "conv_transpose3d_loops",
    "conv1d_loops_backward",
    "conv2d_loops_backward",
    "conv3d_loops_backward",
    "conv_transpose1d_loops_backward",
    "conv_transpose2d_loops_backward",
    "conv_transpose3d_loops_backward",
    "conv_loops",
    "convolve",
    "convolve_backward",
    "convolve_loops_backward",
    "convolve_transpose",
    "convolve_transpose_backward",
    "convolve_transpose_loops",
    "convolve_transpose_loops_backward",
    "pad_input",
    "plan_conv",
    "plan_conv2d",
    "plan_conv_transpose",
    "source_indices",
]
