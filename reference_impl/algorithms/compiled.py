"""Direct convolution compiled by numba: the loop version's sum, at the speed of a C loop.

    y[n, o] = sum_{c, p, q} w[o, c, p, q] * x_tap(p, q)[n, g*C_g + c]        g = o // O_g

Loops: (n, g) in parallel (numba.prange over the flattened N*G), then the group's output
channels o, its input channels c and the kernel taps (p, q), and innermost one long contiguous
multiply-add over the whole output plane, which LLVM vectorises. That plane is the "wide" grid
of phases.py: tap (p, q) of a stride-1 phase is one flat slice of length
L = (H_out-1)*W_q + W_out, so strides and dilations never reach the inner loop (a runtime
stride there makes LLVM emit gathers). Each (n, g) first copies its C_g input channels,
zero-padded and split into phases, into a small buffer that stays in L2 for all O_g outputs;
the (n, o) plane, ~13 KiB for a 56x56 layer, stays in L1 while all C_g*kH*kW taps are added
into it. Where the NumPy tap loop (taps.py) makes two single-threaded passes over memory per
tap, plus a padded copy and a phase copy of the input, this makes one pass per layer.

Measured choices (docs/performance.md): the whole wide plane as the inner loop, not one output
row (rows of 56 are too short: 6.1 vs 2.1 ms single-threaded on ConvNeXt's 7x7 depthwise);
up to three taps of a kernel row added in one pass (the accumulator is loaded and stored once
per three taps instead of once per tap: another ~20%); zero padding and the phase split done
inside the kernel, per (n, g), in parallel and in cache (conv2d's single-threaded padded copy
plus split_phases cost ~1.5 ms on EfficientNet's strided 5x5, the kernel itself ~0.2 ms).

No fastmath: every tap is an IEEE multiply then add, in conv2d_loops' (c, p, q) order, also
inside a fused pass (((acc + t0*x0) + t1*x1) + t2*x2). ``cache=True`` keeps the machine code in
__pycache__/compiled_kernel.*.nbi, *.nbc: compilation (~3 s per dtype on the 2-core machine)
is paid once per machine and dtype (float32, float64), not once per process.

numba is optional (``pip install .[fast]``) and imported on first use, not with reference_impl
(its import alone takes ~0.45 s): :func:`numba_available` says whether it imports, and the
chooser picks "compiled" only when it does. The kernel itself is in compiled_kernel.py.
"""
from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np

from ..geometry import ConvGeometry
from .phases import wide_length


@functools.cache
def numba_available() -> bool:
    """Whether numba imports here (it is optional). Imports it, once: ~0.45 s."""
    try:
        import numba
    except ImportError:  # absent, or broken (e.g. built against another NumPy): stay pure NumPy
        return False
    # numba's "workqueue" threading layer unless the user picked one (NUMBA_THREADING_LAYER);
    # set here, on numba's first import by us, because it only counts before numba's first
    # parallel call. The default here would be "omp": a second OpenMP runtime (the system's
    # libgomp) next to torch's bundled one, and on the shared 2-vCPU machine its parallel calls
    # took a ~8 ms scheduler tick whenever another process held a core (median 8.0 ms on every
    # layer against minima of 0.7-2 ms; a tiny call 7 ms instead of 0.1 ms), where workqueue's
    # median stayed near its minimum (docs/performance.md). Its one limit, no concurrent
    # parallel calls from several Python threads, does not bite: the harness has none.
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"
    return True


def as_2d(x: np.ndarray, weight: np.ndarray, geo: ConvGeometry) -> tuple[np.ndarray, np.ndarray, ConvGeometry]:
    """A 1-d convolution as the 2-d one of height 1 (views, no copy); 2-d passes through."""
    if geo.spatial_dims == 2:
        return x, weight, geo
    n, c, width = x.shape
    geo2 = dataclasses.replace(geo, spatial=(1, *geo.spatial), kernel=(1, *geo.kernel), stride=(1, *geo.stride),
                               dilation=(1, *geo.dilation), pads=(0, 0, *geo.pads))
    return x.reshape(n, c, 1, width), weight.reshape(*weight.shape[:2], 1, weight.shape[2]), geo2  # (N, C, 1, W)


def conv_compiled(x: np.ndarray, weight: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """(N, C_in, *padded), (C_out, C_in/G, *k) -> (N, G, C_out/G, *output_size), for 1 or 2 spatial dims.

    2-d only in the kernel (1-d runs as height 1; 3-d has no compiled path: the chooser gives it
    the NumPy ones). Also accepts the *unpadded* input when the padding mode is "zeros": the
    kernel then pads while it splits phases, in parallel and in cache, and conv skips its padded
    copy of the input (see ZERO_PADDING_INSIDE in algorithms/__init__.py).
    """
    if not numba_available():
        raise RuntimeError("algorithm 'compiled' needs numba: pip install '.[fast]' (or the pins in requirements.txt)")
    if geo.spatial_dims not in (1, 2):
        raise ValueError(f"algorithm 'compiled' is 1-d and 2-d only, got {geo.spatial_dims} spatial dims")
    from .compiled_kernel import direct_conv  # compiles on the first call per dtype, or loads numba's cache

    out_size = geo.output_size
    x, weight, geo = as_2d(x, weight, geo)
    height_out, width_out = geo.output_size
    out = np.empty((geo.batch, geo.out_channels, height_out, width_out), dtype=x.dtype)  # (N, C_out, H_out, W_out)
    if out.size == 0:  # an empty batch needs no kernel (and no compilation)
        return out.reshape(geo.batch, geo.groups, geo.out_channels_per_group, *out_size)
    padded_height, padded_width = geo.padded_size
    already_padded = x.shape[2:] == (padded_height, padded_width)
    top, _, left, _ = (0, 0, 0, 0) if already_padded else geo.pads
    assert already_padded or geo.padding_mode == "zeros", "only zero padding is done in the kernel"
    (s_h, s_w), (d_h, d_w) = geo.stride, geo.dilation
    phase_height, phase_width = -(-padded_height // s_h), -(-padded_width // s_w)  # (H_q, W_q), see split_phases
    # numba does not bounds-check: make sure the last tap's slice (the furthest) lies inside its phase.
    (kernel_h, kernel_w) = geo.kernel
    last_tap_start = (kernel_h - 1) * d_h // s_h * phase_width + (kernel_w - 1) * d_w // s_w
    assert last_tap_start + wide_length(geo, (phase_height, phase_width)) <= phase_height * phase_width
    # Contiguous arrays: numba compiles one specialisation per array layout; keep it to one.
    direct_conv(np.ascontiguousarray(x), np.ascontiguousarray(weight), top, left, s_h, s_w, d_h, d_w,
                phase_height, phase_width, out)
    return out.reshape(geo.batch, geo.groups, geo.out_channels_per_group, *out_size)  # (N, G, O_g, *output_size)
