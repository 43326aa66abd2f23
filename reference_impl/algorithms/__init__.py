"""The algorithms behind the fast reference convolutions, and the rule that picks one per shape.

Every algorithm has the same contract: padded input (N, C_in, *padded) and weight
(C_out, C_in/G, *k), both already in the output dtype, plus the geometry; it returns
(N, G, C_out/G, *output_size). Padding, bias and the unbatched case are handled once, in
``vectorized.convolve``. Each one is checked against the loop version in tests/test_reference_paths.py.
All take 1, 2 and 3 spatial dims ("compiled" has a 2-d numba kernel, which runs 1-d as height 1, and a 3-d one).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..geometry import ConvGeometry
from .compiled import conv_compiled, numba_available
from .einsum import conv_einsum, sliding_windows
from .im2col import conv_im2col
from .pointwise import conv_pointwise
from .taps import conv_taps

Algorithm = Callable[[np.ndarray, np.ndarray, ConvGeometry], np.ndarray]

ALGORITHMS: dict[str, Algorithm] = {
    "pointwise": conv_pointwise,
    "im2col": conv_im2col,
    "taps": conv_taps,
    "einsum": conv_einsum,
    "compiled": conv_compiled,  # needs numba; the chooser picks it only when numba imported
}

# Algorithms that take the unpadded input when padding_mode is "zeros" and pad it themselves:
# conv2d then skips its padded copy, a single-threaded pass over the input that cost more than
# the compiled kernel itself on the strided layers (docs/performance.md).
ZERO_PADDING_INSIDE = frozenset({"compiled"})

# Channels per group at or below which the tap loop beats im2col + GEMM (docs/performance.md):
# ResNeXt's C_g = 4 runs ~1.5x faster with taps; AlexNet's C_g = 48 ~2.5x faster with im2col.
TAPS_MAX_CHANNELS_PER_GROUP = 4

# Channels per group at or below which the numba direct convolution beats the GEMM paths
# (docs/performance.md, round 6): one pass over memory on both cores wins while the group's
# contraction (C_g*kH*kW) is too short for BLAS to run near peak. 16 until round 6; since four
# output channels share each pass (compiled_kernel._add_taps_4), every C_g = 32 shape measured
# ran 1.3-3.1x faster compiled than by einsum or taps, at 1 and 2 threads (ResNeXt stage 4, X3D-like
# 3-d, 1-d); at C_g = 48 with a 5x5 kernel (AlexNet) einsum stayed 1.2x faster.
COMPILED_MAX_CHANNELS_PER_GROUP = 32
# ... and for a long kernel (>= LONG_KERNEL_TAPS taps), up to this many: wav2vec2's C_g = 48 with
# 128 taps ran as fast as the tap loop on 1 thread and 1.8x faster on 2, C_g = 64 with 64 taps
# 1.0x and 1.7x; at C_g = 128 einsum was faster.
COMPILED_LONG_KERNEL_MAX_CHANNELS_PER_GROUP = 64


# Kernel taps at or above which many channels per group still go to "taps", not "einsum": einsum
# materialises one copy of the input per tap (79 MB for wav2vec2's 128-tap conv1d) and, with
# OpenBLAS on 2 threads, took 1.1 s (median) where the tap loop took 0.10-0.14 s (docs/performance.md,
# round 3). Measured between 25 taps (AlexNet 5x5: einsum faster) and 128 (taps faster).
LONG_KERNEL_TAPS = 64

# The dtypes the compiled kernel is built for (numba has no float16 arithmetic).
COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def choose_algorithm(geo: ConvGeometry, use_compiled: bool | None = None, dtype: np.dtype | None = None) -> str:
    """The fastest algorithm for this shape, by the measurements in docs/performance.md.

    * 1x1 kernel -> "pointwise": the convolution *is* a per-group matmul, nothing to gather.
    * numba installed and up to COMPILED_MAX_CHANNELS_PER_GROUP (32) input channels per group
      (depthwise, ResNeXt's 4, 8 and 32; in 1, 2 or 3 dims), up to 64 for a long kernel
      (wav2vec2's 48) -> "compiled": all taps added into L1-resident output planes in one
      parallel pass, where every NumPy path makes one or two single-threaded passes per tap or
      copies the windows.
    * without numba, few input channels per group (depthwise, ResNeXt's 4) -> "taps": im2col
      would copy kH*kW times the input to feed a GEMM with a tiny inner dimension; the tap
      loop reads the input in place, so its peak memory is about input + output.
    * otherwise a long kernel (>= LONG_KERNEL_TAPS taps) -> "taps": no per-tap input copy.
    * otherwise (many channels per group) -> "einsum": a GEMM over (C_g, kH, kW) per group.
      Our explicit "im2col" does the same contraction, but NumPy 2.4's einsum (which lays the
      windows out and calls batched matmul itself) measured 1.2-1.7x faster on ResNeXt's
      strided layer and both AlexNet layers in every run, with a lower peak; im2col stays as
      the readable, forceable version of that path.

    ``use_compiled=None`` means "if numba imports"; ``False`` gives the pure-NumPy choice (what
    runs without numba), for comparison. ``dtype`` (the computation's): "compiled" only for
    float32 and float64.
    """
    if all(k == 1 for k in geo.kernel):
        return "pointwise"
    if use_compiled is None:
        use_compiled = numba_available()
    compiled_dtype = dtype is None or np.dtype(dtype) in COMPILED_DTYPES
    long_kernel = math.prod(geo.kernel) >= LONG_KERNEL_TAPS
    compiled_max = COMPILED_LONG_KERNEL_MAX_CHANNELS_PER_GROUP if long_kernel else COMPILED_MAX_CHANNELS_PER_GROUP
    if use_compiled and compiled_dtype and geo.in_channels_per_group <= compiled_max:
        return "compiled"
    if geo.in_channels_per_group <= TAPS_MAX_CHANNELS_PER_GROUP or long_kernel:
        return "taps"
    return "einsum"


__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "ZERO_PADDING_INSIDE",
    "choose_algorithm",
    "numba_available",
    "sliding_windows",
    "conv_compiled",
    "conv_einsum",
    "conv_im2col",
    "conv_pointwise",
    "conv_taps",
]
