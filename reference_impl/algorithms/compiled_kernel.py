"""The numba kernel behind algorithms/compiled.py (see there for the why); imports numba.

Kept in its own module so that importing reference_impl never imports numba: compiled.py
imports this on the first "compiled" call (and picks numba's threading layer before that).
numba caches the machine code in __pycache__/compiled_kernel.*.nbi / *.nbc next to this file.
"""

from __future__ import annotations

import numba
import numpy as np

TAPS_PER_PASS = 3  # taps of one kernel row added per pass over the accumulator (see compiled.py)
FLAT_TAPS_PER_PASS = 4  # direct_conv_placed: taps per pass, taken across kernel rows and channels


@numba.njit(cache=True)
def _phase_span(pad_before: int, phase: int, stride: int, size: int, phase_length: int) -> tuple[int, int]:
    """The range [first, end) of phase positions u whose padded position u*stride + phase holds
    an input element (0 <= u*stride + phase - pad_before < size); the rest is zero padding.
    Multiplications only: a division per element (runtime stride) cost more than the copy."""
    first = max(0, -(-(pad_before - phase) // stride))  # ceil((pad - phase) / stride)
    end = min(phase_length, (size - 1 + pad_before - phase) // stride + 1)
    return first, max(first, end)


@numba.njit(parallel=True, cache=True, fastmath=False)
def direct_conv(
    x: np.ndarray,
    weight: np.ndarray,
    pad_top: int,
    pad_left: int,
    stride_h: int,
    stride_w: int,
    dilation_h: int,
    dilation_w: int,
    phase_height: int,
    phase_width: int,
    out: np.ndarray,
) -> None:
    """x (N, C_in, H, W), weight (C_out, C_g, kH, kW) -> out (N, C_out, H_out, W_out), every element written.

    ``x`` is zero-padded by (pad_top, pad_left) here, on the fly (bottom/right padding is what
    lies past x in the zeroed phase buffer); pass an already padded x with zero pads for the
    other padding modes. Each phase is (H_q, W_q) = (phase_height, phase_width).
    """
    batch, in_channels, height, width = x.shape
    out_channels, channels_per_group, kernel_h, kernel_w = weight.shape
    groups = in_channels // channels_per_group
    out_per_group = out_channels // groups
    height_out, width_out = out.shape[2], out.shape[3]
    phase_size = phase_height * phase_width
    length = (height_out - 1) * phase_width + width_out  # the wide plane, see phases.wide_length
    for n_g in numba.prange(batch * groups):
        n, g = n_g // groups, n_g % groups
        # This group's input channels, zero-padded and split into phases, in a buffer that
        # stays in L2 while every output channel of the group reads it:
        # phase[c, a, b][u*W_q + v] = x_pad[n, g*C_g + c, u*s_h + a, v*s_w + b]
        phases = np.zeros(
            (channels_per_group, stride_h, stride_w, phase_size), dtype=out.dtype
        )  # (C_g, s_h, s_w, H_q*W_q)
        for c in range(channels_per_group):
            channel = g * channels_per_group + c
            for a in range(stride_h):
                u_first, u_end = _phase_span(pad_top, a, stride_h, height, phase_height)
                for b in range(stride_w):
                    v_first, v_end = _phase_span(pad_left, b, stride_w, width, phase_width)
                    for u in range(u_first, u_end):
                        row = u * stride_h + a - pad_top
                        for v in range(v_first, v_end):  # contiguous writes; contiguous reads for s_w = 1
                            phases[c, a, b, u * phase_width + v] = x[n, channel, row, v * stride_w + b - pad_left]
        acc = np.empty(length, dtype=out.dtype)  # (L,): one output plane on the wide grid
        for o_g in range(out_per_group):
            o = g * out_per_group + o_g
            acc[:] = 0
            for c in range(channels_per_group):
                for p in range(kernel_h):
                    # Padded row i*s_h + p*d_h is row i + p*d_h//s_h of row-phase (p*d_h) % s_h.
                    row_phase, row_offset = (p * dilation_h) % stride_h, (p * dilation_h) // stride_h * phase_width
                    q = 0
                    while q < kernel_w:
                        taps_now = min(TAPS_PER_PASS, kernel_w - q)
                        # Tap (p, q) reads one flat slice of one phase, length L (see phases.py).
                        start0 = row_offset + (q * dilation_w) // stride_w
                        x0 = phases[c, row_phase, (q * dilation_w) % stride_w, start0 : start0 + length]
                        w0 = weight[o, c, p, q]
                        if taps_now == 1:
                            for j in range(length):
                                acc[j] += w0 * x0[j]
                        else:
                            start1 = row_offset + ((q + 1) * dilation_w) // stride_w
                            x1 = phases[c, row_phase, ((q + 1) * dilation_w) % stride_w, start1 : start1 + length]
                            w1 = weight[o, c, p, q + 1]
                            if taps_now == 2:
                                for j in range(length):
                                    acc[j] = (acc[j] + w0 * x0[j]) + w1 * x1[j]
                            else:
                                start2 = row_offset + ((q + 2) * dilation_w) // stride_w
                                x2 = phases[c, row_phase, ((q + 2) * dilation_w) % stride_w, start2 : start2 + length]
                                w2 = weight[o, c, p, q + 2]
                                for j in range(length):
                                    acc[j] = ((acc[j] + w0 * x0[j]) + w1 * x1[j]) + w2 * x2[j]
                        q += taps_now
            for i in range(height_out):  # crop the wide grid's junk columns W_out..W_q-1
                out[n, o, i, :] = acc[i * phase_width : i * phase_width + width_out]


@numba.njit(parallel=True, cache=True, fastmath=False)
def direct_conv3d(
    x: np.ndarray,
    weight: np.ndarray,
    pads: np.ndarray,
    stride: np.ndarray,
    dilation: np.ndarray,
    phase_dims: np.ndarray,
    out: np.ndarray,
) -> None:
    """x (N, C_in, D, H, W), weight (C_out, C_g, kD, kH, kW) -> out (N, C_out, D_out, H_out, W_out).

    :func:`direct_conv` with a depth axis, without unfolding depth into copies: each (n, g) splits
    its C_g channels, zero-padded by ``pads`` (front, top, left), into 3-d phases (C_g, s_d, s_h,
    s_w, D_q*H_q*W_q) once; then every output depth slice i of every output channel is one 2-d wide
    plane in L1, into which all C_g*kD*kH*kW taps are added in the loop version's (c, kd, kh, kw)
    order: tap (t, p, q) of slice i reads a flat slice of depth phase (t*d_d) % s_d starting at
    depth row i + t*d_d // s_d. ``stride``, ``dilation``, ``pads`` and ``phase_dims`` (D_q, H_q, W_q)
    are int64 arrays of 3.
    """
    batch, in_channels, depth, height, width = x.shape
    out_channels, channels_per_group, kernel_d, kernel_h, kernel_w = weight.shape
    groups = in_channels // channels_per_group
    out_per_group = out_channels // groups
    depth_out, height_out, width_out = out.shape[2], out.shape[3], out.shape[4]
    pad_front, pad_top, pad_left = pads[0], pads[1], pads[2]
    stride_d, stride_h, stride_w = stride[0], stride[1], stride[2]
    dilation_d, dilation_h, dilation_w = dilation[0], dilation[1], dilation[2]
    phase_depth, phase_height, phase_width = phase_dims[0], phase_dims[1], phase_dims[2]
    plane = phase_height * phase_width
    phase_size = phase_depth * plane
    length = (height_out - 1) * phase_width + width_out  # one output depth slice on the wide grid
    for n_g in numba.prange(batch * groups):
        n, g = n_g // groups, n_g % groups
        # phases[c, a, b, e][(u*H_q + v)*W_q + w] = x_pad[n, g*C_g + c, u*s_d + a, v*s_h + b, w*s_w + e]
        phases = np.zeros((channels_per_group, stride_d, stride_h, stride_w, phase_size), dtype=out.dtype)
        for c in range(channels_per_group):
            channel = g * channels_per_group + c
            for a in range(stride_d):
                u_first, u_end = _phase_span(pad_front, a, stride_d, depth, phase_depth)
                for b in range(stride_h):
                    v_first, v_end = _phase_span(pad_top, b, stride_h, height, phase_height)
                    for e in range(stride_w):
                        w_first, w_end = _phase_span(pad_left, e, stride_w, width, phase_width)
                        for u in range(u_first, u_end):
                            layer = u * stride_d + a - pad_front
                            for v in range(v_first, v_end):
                                row = v * stride_h + b - pad_top
                                base = u * plane + v * phase_width
                                for w in range(w_first, w_end):
                                    phases[c, a, b, e, base + w] = x[
                                        n, channel, layer, row, w * stride_w + e - pad_left
                                    ]
        acc = np.empty(length, dtype=out.dtype)  # (L,): one output depth slice on the wide grid
        for o_g in range(out_per_group):
            o = g * out_per_group + o_g
            for i in range(depth_out):
                acc[:] = 0
                for c in range(channels_per_group):
                    for t in range(kernel_d):
                        depth_phase = (t * dilation_d) % stride_d
                        depth_offset = (i + (t * dilation_d) // stride_d) * plane
                        for p in range(kernel_h):
                            row_phase = (p * dilation_h) % stride_h
                            row_offset = depth_offset + (p * dilation_h) // stride_h * phase_width
                            q = 0
                            while q < kernel_w:
                                taps_now = min(TAPS_PER_PASS, kernel_w - q)
                                start0 = row_offset + (q * dilation_w) // stride_w
                                x0 = phases[
                                    c, depth_phase, row_phase, (q * dilation_w) % stride_w, start0 : start0 + length
                                ]
                                w0 = weight[o, c, t, p, q]
                                if taps_now == 1:
                                    for j in range(length):
                                        acc[j] += w0 * x0[j]
                                else:
                                    start1 = row_offset + ((q + 1) * dilation_w) // stride_w
                                    x1 = phases[
                                        c,
                                        depth_phase,
                                        row_phase,
                                        ((q + 1) * dilation_w) % stride_w,
                                        start1 : start1 + length,
                                    ]
                                    w1 = weight[o, c, t, p, q + 1]
                                    if taps_now == 2:
                                        for j in range(length):
                                            acc[j] = (acc[j] + w0 * x0[j]) + w1 * x1[j]
                                    else:
                                        start2 = row_offset + ((q + 2) * dilation_w) // stride_w
                                        x2 = phases[
                                            c,
                                            depth_phase,
                                            row_phase,
                                            ((q + 2) * dilation_w) % stride_w,
                                            start2 : start2 + length,
                                        ]
                                        w2 = weight[o, c, t, p, q + 2]
                                        for j in range(length):
                                            acc[j] = ((acc[j] + w0 * x0[j]) + w1 * x1[j]) + w2 * x2[j]
                                q += taps_now
                for r in range(height_out):  # crop the wide grid's junk columns
                    out[n, o, i, r, :] = acc[r * phase_width : r * phase_width + width_out]


@numba.njit(parallel=True, cache=True, fastmath=False)
def direct_conv_placed(
    x: np.ndarray,
    weight: np.ndarray,
    pad_top: int,
    pad_left: int,
    dilation_h: int,
    dilation_w: int,
    phase_height: int,
    phase_width: int,
    height_out: int,
    width_out: int,
    placement: np.ndarray,
    row_step: int,
    col_step: int,
    out: np.ndarray,
) -> None:
    """:func:`direct_conv` at stride 1, each output channel's plane written straight to its place in
    ``out`` (N, C_target, H_t, W_t) instead of to its own channel: the phases of a transposed
    convolution land in the strided positions of its output without a plane in between.

    ``placement[o]`` = (target channel, first target row, first target column, first source row,
    first source column, rows, columns): source plane position (r0 + i, c0 + j) of output channel o
    goes to target (row0 + i*row_step, col0 + j*col_step), for i < rows, j < columns. The source plane
    is (height_out, width_out); ``x`` is zero-padded by (pad_top, pad_left) on the fly.

    A phase's sub-kernel is small (2x2 for an upsampler's k4 s2), so the taps are taken in passes of
    up to FLAT_TAPS_PER_PASS in (c, p, q) order across kernel rows, not per row: one load and store
    of the accumulator per four taps, the loop version's summation order kept.
    """
    batch, in_channels, height, width = x.shape
    out_channels, channels_per_group, kernel_h, kernel_w = weight.shape
    groups = in_channels // channels_per_group
    out_per_group = out_channels // groups
    phase_size = phase_height * phase_width
    length = (height_out - 1) * phase_width + width_out
    taps = channels_per_group * kernel_h * kernel_w
    for n_g in numba.prange(batch * groups):
        n, g = n_g // groups, n_g % groups
        padded = np.zeros(channels_per_group * phase_size, dtype=out.dtype)  # (C_g*H_q*W_q,): stride 1, one phase
        u_first, u_end = _phase_span(pad_top, 0, 1, height, phase_height)
        v_first, v_end = _phase_span(pad_left, 0, 1, width, phase_width)
        for c in range(channels_per_group):
            channel = g * channels_per_group + c
            for u in range(u_first, u_end):
                for v in range(v_first, v_end):
                    padded[c * phase_size + u * phase_width + v] = x[n, channel, u - pad_top, v - pad_left]
        starts = np.empty(taps, dtype=np.int64)  # flat start of tap (c, p, q)'s slice, in (c, p, q) order
        for c in range(channels_per_group):
            for p in range(kernel_h):
                for q in range(kernel_w):
                    starts[(c * kernel_h + p) * kernel_w + q] = (
                        c * phase_size + p * dilation_h * phase_width + q * dilation_w
                    )
        acc = np.empty(length, dtype=out.dtype)
        for o_g in range(out_per_group):
            o = g * out_per_group + o_g
            w = weight[o].ravel()  # (C_g*kH*kW,), the same (c, p, q) order
            acc[:] = 0
            t = 0
            while t < taps:
                taps_now = min(FLAT_TAPS_PER_PASS, taps - t)
                x0, w0 = padded[starts[t] : starts[t] + length], w[t]
                if taps_now == 1:
                    for j in range(length):
                        acc[j] += w0 * x0[j]
                elif taps_now == 2:
                    x1, w1 = padded[starts[t + 1] : starts[t + 1] + length], w[t + 1]
                    for j in range(length):
                        acc[j] = (acc[j] + w0 * x0[j]) + w1 * x1[j]
                elif taps_now == 3:
                    x1, w1 = padded[starts[t + 1] : starts[t + 1] + length], w[t + 1]
                    x2, w2 = padded[starts[t + 2] : starts[t + 2] + length], w[t + 2]
                    for j in range(length):
                        acc[j] = ((acc[j] + w0 * x0[j]) + w1 * x1[j]) + w2 * x2[j]
                else:
                    x1, w1 = padded[starts[t + 1] : starts[t + 1] + length], w[t + 1]
                    x2, w2 = padded[starts[t + 2] : starts[t + 2] + length], w[t + 2]
                    x3, w3 = padded[starts[t + 3] : starts[t + 3] + length], w[t + 3]
                    for j in range(length):
                        acc[j] = (((acc[j] + w0 * x0[j]) + w1 * x1[j]) + w2 * x2[j]) + w3 * x3[j]
                t += taps_now
            target, row0, col0 = placement[o, 0], placement[o, 1], placement[o, 2]
            src_row, src_col, rows, cols = placement[o, 3], placement[o, 4], placement[o, 5], placement[o, 6]
            for i in range(rows):
                source = (src_row + i) * phase_width + src_col
                row = row0 + i * row_step
                for j in range(cols):
                    out[n, target, row, col0 + j * col_step] = acc[source + j]


@numba.njit(parallel=True, cache=True, fastmath=False)
def col2im_add(cols: np.ndarray, stride: np.ndarray, dilation: np.ndarray, grad: np.ndarray) -> None:
    """grad (N, C, PD, PH, PW), zeroed, += every tap's plane of ``cols`` (N, C, kD, kH, kW, D, H, W) at the
    padded positions it reaches:
    grad[n, c, i*s_d + a*d_d, j*s_h + b*d_h, k*s_w + e*d_w] += cols[n, c, a, b, e, i, j, k].

    The scatter half of the transposed convolution's "scatter" path (backward.input_gradient_by_scatter):
    one parallel pass per (n, c) plane, which stays in cache while all taps are added, in tap order,
    where NumPy made one strided read-modify-write pass over the whole gradient per tap. 1-d and 2-d
    arrive with leading dims of size 1; ``stride`` and ``dilation`` are int64 arrays of 3.
    """
    batch, channels, kernel_d, kernel_h, kernel_w, depth, height, width = cols.shape
    for n_c in numba.prange(batch * channels):
        n, c = n_c // channels, n_c % channels
        for a in range(kernel_d):
            for b in range(kernel_h):
                for e in range(kernel_w):
                    for i in range(depth):
                        layer = i * stride[0] + a * dilation[0]
                        for j in range(height):
                            row = j * stride[1] + b * dilation[1]
                            column = e * dilation[2]
                            for k in range(width):
                                grad[n, c, layer, row, column + k * stride[2]] += cols[n, c, a, b, e, i, j, k]
