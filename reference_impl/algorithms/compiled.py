"""Direct convolution compiled by numba: the loop version's sum, at the speed of a C loop.

    y[n, o] = sum_{c, p, q} w[o, c, p, q] * x_tap(p, q)[n, g*C_g + c]        g = o // O_g

Loops: (n, o) in parallel (numba.prange over the flattened N*C_out), then the group's input
channels c and the kernel taps (p, q), and innermost one long contiguous multiply-add over the
whole output plane, which LLVM vectorises. That plane is the "wide" grid of phases.py: tap
(p, q) of a stride-1 phase is one flat slice of length L = (H_out-1)*W_q + W_out, so strides and
dilations never reach the inner loop (a runtime stride there makes LLVM emit gathers). The
(n, o) plane, ~13 KiB for a 56x56 layer, stays in L1 while all C_g*kH*kW taps are added into
it, and both cores work: where the NumPy tap loop (taps.py) makes two single-threaded passes
over memory per tap, this makes one pass per layer.

Measured choices (docs/performance.md): the whole wide plane as the inner loop, not one output
row (rows of 56 are too short: 6.1 vs 2.1 ms single-threaded on ConvNeXt's 7x7 depthwise);
up to three taps of a kernel row added in one pass (the accumulator is loaded and stored once
per three taps instead of once per tap: another ~20%).

No fastmath: every tap is an IEEE multiply then add, in conv2d_loops' (c, p, q) order, also
inside a fused pass (((acc + t0*x0) + t1*x1) + t2*x2). ``cache=True`` keeps the machine code in
__pycache__/*.nbi, *.nbc next to this file: compilation is paid once per machine and dtype
(float32, float64), not once per process.

numba is optional (``pip install .[fast]``) and imported on first use, not with reference_impl
(its import alone takes ~0.45 s): :func:`numba_available` says whether it imports, and the
chooser picks "compiled" only when it does. The kernel itself is in compiled_kernel.py.
"""
from __future__ import annotations

import functools

import numpy as np

from ..geometry import ConvGeometry
from .phases import split_phases, wide_length


@functools.cache
def numba_available() -> bool:
    """Whether numba imports here (it is optional). Imports it, once: ~0.45 s."""
    try:
        import numba  # noqa: F401
    except ImportError:  # absent, or broken (e.g. built against another NumPy): stay pure NumPy
        return False
    return True


def conv2d_compiled(x_padded: np.ndarray, weight: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """(N, C_in, H_pad, W_pad), (C_out, C_in/G, kH, kW) -> (N, G, C_out/G, H_out, W_out)."""
    if not numba_available():
        raise RuntimeError("algorithm 'compiled' needs numba: pip install '.[fast]' (or the pins in requirements.txt)")
    from .compiled_kernel import direct_conv  # compiles on the first call per dtype, or loads numba's cache

    height_out, width_out = geo.output_size
    out = np.empty((geo.batch, geo.out_channels, height_out, width_out), dtype=x_padded.dtype)  # (N, C_out, H_out, W_out)
    if out.size:  # an empty batch needs no kernel (and no compilation)
        phases = split_phases(x_padded, geo.stride)                      # (s_h, s_w, N, C_in, H_q, W_q), contiguous
        phase_width = phases.shape[-1]
        # numba does not bounds-check: make sure the last tap's slice (the furthest) lies inside its phase.
        (kernel_h, kernel_w), (s_h, s_w), (d_h, d_w) = geo.kernel, geo.stride, geo.dilation
        last_tap_start = (kernel_h - 1) * d_h // s_h * phase_width + (kernel_w - 1) * d_w // s_w
        assert last_tap_start + wide_length(geo, phase_width) <= phases.shape[-2] * phase_width
        phases_flat = phases.reshape(*phases.shape[:4], -1)             # (s_h, s_w, N, C_in, H_q*W_q), a view
        # Contiguous weight: numba compiles one specialisation per array layout; keep it to one.
        direct_conv(phases_flat, np.ascontiguousarray(weight), *geo.stride, *geo.dilation,
                     phase_width, width_out, out)
    return out.reshape(geo.batch, geo.groups, geo.out_channels_per_group, height_out, width_out)  # (N, G, O_g, H_out, W_out)
