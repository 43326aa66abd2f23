"""The gradients of a grouped convolution, vectorised: the backward pass the oracle checks.
Written once for 1, 2 and 3 spatial dims.

For the loss ``L = sum(y * grad_output)`` (so ``dL/dy = grad_output``, written ``dy``):

* ``grad_input`` is a **transposed grouped convolution** of ``dy`` with the weight
  (:func:`padded_input_gradient`): every output position ``i`` sends ``dy[i] * w[t]`` back to the
  padded input position ``i*s + t*d`` it read. Groups stay groups: input channel ``c`` of group
  ``g`` gets gradient only from the output channels of group ``g``. The result is the gradient of
  the *padded* input; every padded position is then folded back onto the input position it copied
  (:func:`fold_padding`), which is how reflect, replicate and circular padding route gradient.
  The same function *is* ``conv_transpose``'s forward pass (transposed.py).
* ``grad_weight`` is a **grouped correlation** of the (padded) input with ``dy``: each weight tap
  ``w[o, c, t]`` sums ``dy[n, o, i] * x_pad[n, g*C_g + c, i*s + t*d]``.
* ``grad_bias`` is ``dy`` summed over batch and space.

:func:`reference_impl.conv2d_loops_backward` (and its 1-d/3-d siblings) write the same sums one
index at a time.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .algorithms.einsum import subscripts
from .algorithms.phases import crop_wide, grouped_flat_phases, wide_size
from .dtypes import bfloat16_in_float32
from .geometry import ConvGeometry, IntOrTuple, Padding, plan_conv
from .padding import pad_input, source_indices
from .vectorized import convolve_planned, result_dtype, sliding_windows


class ConvGradients(NamedTuple):
    """``(grad_input, grad_weight, grad_bias)``; ``grad_bias`` is None for a layer without bias."""

    grad_input: np.ndarray
    grad_weight: np.ndarray
    grad_bias: np.ndarray | None


Conv2dGradients = ConvGradients  # the 2-d name, kept for the code that imports it


def fold_padding(grad_padded: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """Add each padded position's gradient onto the input position it was copied from.

    ``grad_padded`` is (N, C_in, *padded); the result is (N, C_in, *spatial). With zero padding
    the padded border copied nothing (index -1) and is dropped; with reflect/replicate/circular
    several padded positions copy one input position, and ``np.add.at`` sums them all (a plain
    fancy-index ``+=`` would keep only one).

    >>> geo = plan_conv((1, 1, 1, 3), (1, 1, 1, 1), None, padding=(0, 1), padding_mode="replicate", spatial_dims=2)
    >>> fold_padding(np.array([[[[1.0, 2, 3, 4, 5]]]]), geo).tolist()   # a | a b c | c
    [[[[3.0, 3.0, 9.0]]]]
    """
    sources = [
        source_indices(n, before, after, geo.padding_mode)  # per dim: input index copied, -1 = zero
        for n, (before, after) in zip(geo.spatial, geo.pad_pairs, strict=False)
    ]
    kept = [np.flatnonzero(s >= 0) for s in sources]
    if geo.padding_mode == "zeros":  # each kept position copies a distinct input position: a slice
        return grad_padded[
            (slice(None), slice(None), *(slice(k[0], k[-1] + 1) if k.size else slice(0, 0) for k in kept))
        ].copy()
    grad = np.zeros((*grad_padded.shape[:2], *geo.spatial), dtype=grad_padded.dtype)  # (N, C_in, *spatial)
    kept_values = grad_padded[(slice(None), slice(None)) + np.ix_(*kept)]  # (N, C_in, *kept)
    targets = np.ix_(*(s[k] for s, k in zip(sources, kept, strict=False)))
    # NumPy's stubs type ufunc.at's indices as one integer array; a tuple index is what it takes.
    np.add.at(grad, (slice(None), slice(None)) + targets, kept_values)  # type: ignore[arg-type]
    return grad


def _phase_plan(
    phase: int, stride: int, dilation: int, kernel: int, dy_length: int, phase_length: int
) -> tuple[list[int], int, int, int] | None:
    """One spatial dim of one output phase of :func:`padded_input_gradient`.

    Padded position ``m = u*s + a`` (phase ``a``) receives ``dy[i] * w[t]`` from every tap with
    ``i*s + t*d = m``, i.e. ``t*d = a (mod s)`` and ``i = u - e_t`` with ``e_t = (t*d - a) / s``.
    Consecutive such taps differ in ``e`` by ``d / gcd(s, d)``: the phase is a stride-1
    correlation of ``dy`` (shifted by the largest ``e``) with those taps reversed, dilated by that step.

    Returns (taps reversed, dilation, first dy index read at u = 0, length of the dy window) or
    None when no tap lands on this phase.
    """
    taps = [t for t in range(kernel) if (t * dilation - phase) % stride == 0]
    if not taps or phase_length <= 0:
        return None
    step = dilation // math.gcd(stride, dilation)
    largest_shift = (taps[-1] * dilation - phase) // stride
    return taps[::-1], step, -largest_shift, phase_length + (len(taps) - 1) * step


INPUT_GRADIENT_PATHS = ("phases", "scatter")


def choose_input_gradient_path(geo: ConvGeometry, dtype: np.dtype) -> str:
    """ "phases" where each phase's convolution takes the compiled path (few output channels per
    group: depthwise upsamplers), else "scatter" (one GEMM for all taps: many channels per group,
    where the phases' convolutions would each rebuild their windows). docs/performance.md."""
    from .algorithms import COMPILED_DTYPES, COMPILED_MAX_CHANNELS_PER_GROUP, numba_available

    compiled = numba_available() and np.dtype(dtype) in COMPILED_DTYPES
    few = geo.out_channels_per_group <= COMPILED_MAX_CHANNELS_PER_GROUP
    return "phases" if (few and compiled) or geo.out_channels_per_group == 1 else "scatter"


Crop = Sequence[tuple[int, int]]  # per spatial dim, the [start, stop) of padded positions wanted


def padded_input_gradient(
    dy: np.ndarray, weight: np.ndarray, geo: ConvGeometry, path: str | None = None, crop: Crop | None = None
) -> np.ndarray:
    """The gradient of the padded input, (N, C_in, *padded), from dy (N, C_out, *dy_size); only
    the region ``crop`` of it when given (N, C_in, *cropped): the input itself for zero padding,
    a transposed convolution's output.

    ``dy_size`` may be shorter than ``geo.output_size`` (a transposed convolution's output_padding:
    the missing positions are zeros). Two ways, same sums (``path`` forces one, for the tests):
    :func:`input_gradient_by_phases` and :func:`input_gradient_by_scatter`.
    """
    path = choose_input_gradient_path(geo, dy.dtype) if path is None else path
    if path not in INPUT_GRADIENT_PATHS:
        raise ValueError(f"unknown input-gradient path {path!r}, should be one of {INPUT_GRADIENT_PATHS}")
    crop = [(0, n) for n in geo.padded_size] if crop is None else crop
    if path == "phases":
        return input_gradient_by_phases(dy, weight, geo, crop)
    return input_gradient_by_scatter(dy, weight, geo)[(slice(None), slice(None), *(slice(a, b) for a, b in crop))]


def input_gradient_by_scatter(dy: np.ndarray, weight: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """col2im: per group, one GEMM gives every tap's contribution of every dy element at once,
    (C_g*T, O_g) @ (O_g, positions); then each tap's plane is added into the padded-input
    positions it reaches, i*s + t*d (a strided slice per tap). What the loop version does, with
    the sums over output channels done by BLAS. Returns (N, C_in, *padded)."""
    G, C_g, O_g = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    batch, dy_size, taps = dy.shape[0], dy.shape[2:], math.prod(geo.kernel)
    # weight (C_out, C_g, *k) = (G, O_g, C_g, T) -> (G, C_g, T, O_g) -> (G, C_g*T, O_g)
    w = weight.reshape(G, O_g, C_g, taps).transpose(0, 2, 3, 1).reshape(G, C_g * taps, O_g)
    y = dy.reshape(batch, G, O_g, math.prod(dy_size))  # (N, G, O_g, positions)
    cols = w * y if O_g == 1 else np.matmul(w, y)  # (N, G, C_g*T, positions)
    cols = cols.reshape(batch, geo.in_channels, taps, *dy_size)  # (N, C_in, T, *dy_size)
    grad = np.zeros((batch, geo.in_channels, *geo.padded_size), dtype=dy.dtype)  # (N, C_in, *padded)
    if scatter_in_kernel(dy.dtype):
        return scatter_compiled(cols, grad, geo, dy_size)
    for t, tap in enumerate(itertools.product(*(range(k) for k in geo.kernel))):
        reached = tuple(
            slice(k * d, k * d + (n - 1) * s + 1, s)
            for k, d, n, s in zip(tap, geo.dilation, dy_size, geo.stride, strict=False)
        )
        grad[(slice(None), slice(None), *reached)] += cols[:, :, t]
    return grad


def scatter_in_kernel(dtype: np.dtype) -> bool:
    """Whether the scatter's strided adds run in the compiled col2im kernel (numba, float32/64)."""
    from .algorithms import COMPILED_DTYPES, numba_available

    return numba_available() and np.dtype(dtype) in COMPILED_DTYPES


def scatter_compiled(cols: np.ndarray, grad: np.ndarray, geo: ConvGeometry, dy_size: tuple[int, ...]) -> np.ndarray:
    """The taps' planes ``cols`` (N, C_in, T, *dy_size) added into ``grad`` (N, C_in, *padded) by the
    compiled col2im kernel, 1-d and 2-d as 3-d with leading dims of size 1. Returns ``grad``."""
    from .algorithms.compiled import kernel_for, thread_count

    lead = 3 - geo.spatial_dims
    kernel, size = (1,) * lead + tuple(geo.kernel), (1,) * lead + tuple(dy_size)
    stride, dilation = (1,) * lead + tuple(geo.stride), (1,) * lead + tuple(geo.dilation)
    cols3 = np.ascontiguousarray(cols).reshape(*cols.shape[:2], *kernel, *size)  # (N, C, kD, kH, kW, D, H, W)
    grad3 = grad.reshape(*grad.shape[:2], *((1,) * lead), *grad.shape[2:])  # (N, C, PD, PH, PW), a view
    # numba does not bounds-check: the furthest tap's last position must lie inside the padded size.
    for k, s, d, n, padded in zip(kernel, stride, dilation, size, grad3.shape[2:], strict=True):
        assert n == 0 or (n - 1) * s + (k - 1) * d < padded
    col2im_add = kernel_for("col2im_add", thread_count(), cols3.size)  # one add per element of cols
    col2im_add(cols3, np.array(stride, dtype=np.int64), np.array(dilation, dtype=np.int64), grad3)
    return grad


# The allocation of a result whose every element is written anyway; tests replace it with a NaN fill,
# so that an element left unwritten shows instead of reading as whatever the memory held (often 0).
uninitialised = np.empty


def input_gradient_by_phases(dy: np.ndarray, weight: np.ndarray, geo: ConvGeometry, crop: Crop) -> np.ndarray:
    """The padded input's gradient, region ``crop``, phase by phase (sub-pixel decomposition): each
    of the prod(stride) phases of the padded input is a stride-1 grouped convolution of ``dy``
    with the taps that land on it, run by the fast forward convolution itself; no zero-stuffed
    ``dy``, so no multiplications by inserted zeros, and only the phase positions inside ``crop``
    are computed, written straight to their place. The weight (C_out, C_g, *k) is read as a layer
    from C_out to C_in channels: (G, O_g, C_g, *k) -> swap the channel axes within each group ->
    (G, C_g, O_g, *k) -> (C_in, O_g, *k), taps reversed.
    """
    G, C_g, O_g = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    batch, d = dy.shape[0], geo.spatial_dims
    swapped = weight.reshape(G, O_g, C_g, *geo.kernel).swapaxes(1, 2)  # (G, C_g, O_g, *k)
    swapped = swapped.reshape(geo.in_channels, O_g, *geo.kernel)  # (C_in, O_g, *k)
    jobs: list[PhaseJob] = []
    for phase in itertools.product(*(range(s) for s in geo.stride)):
        # Phase positions u with start <= u*s + a < stop: u in [first_u, end_u).
        first_u = [max(0, -(-(start - a) // s)) for a, s, (start, _) in zip(phase, geo.stride, crop, strict=False)]
        end_u = [-(-(stop - a) // s) for a, s, (_, stop) in zip(phase, geo.stride, crop, strict=False)]
        plans = [
            _phase_plan(a, s, dil, k, n, end - first)
            for a, s, dil, k, n, first, end in zip(
                phase, geo.stride, geo.dilation, geo.kernel, dy.shape[2:], first_u, end_u, strict=False
            )
        ]
        found = [plan for plan in plans if plan is not None]
        if len(found) < len(plans):
            continue  # no tap reaches this phase (or none of it is wanted): its gradient stays zero
        target = tuple(
            slice(a + u0 * s - start, None, s)
            for a, u0, s, (start, _) in zip(phase, first_u, geo.stride, crop, strict=False)
        )
        jobs.append(
            PhaseJob(
                target=target,
                taps=tuple(p[0] for p in found),
                dilation=tuple(p[1] for p in found),
                first=tuple(p[2] + u0 for p, u0 in zip(found, first_u, strict=False)),
                outputs=tuple(end - first for first, end in zip(first_u, end_u, strict=False)),
            )
        )
    # Every phase with a job has all its positions inside ``crop`` written below, so where every phase
    # has one the result needs no zeroing first (a pass over the whole output: 0.3 ms of the upsampler's 1).
    every_phase_written = len(jobs) == math.prod(geo.stride)
    allocate = uninitialised if every_phase_written else np.zeros
    grad = allocate((batch, geo.in_channels, *(b - a for a, b in crop)), dtype=dy.dtype)  # (N, C_in, *cropped)
    # Phases with the same tap counts and dilations (an upsampler's k = 2s: all of them) share one
    # convolution: their sub-kernels stacked as more output channels per group, over the union of
    # their windows; each phase then takes its outputs at its own offset. One call, one copy of
    # dy into the kernel's buffers, instead of one per phase.
    batches = (
        [jobs] if len({(tuple(map(len, job.taps)), job.dilation) for job in jobs}) == 1 else [[job] for job in jobs]
    )
    grad_grouped = grad.reshape(batch, G, C_g, *grad.shape[2:])  # (N, G, C_g, *cropped), a view
    for batch_jobs in batches:
        first = tuple(min(job.first[k] for job in batch_jobs) for k in range(d))
        end = tuple(
            max(job.first[k] + job.outputs[k] + (len(job.taps[k]) - 1) * job.dilation[k] for job in batch_jobs)
            for k in range(d)
        )
        lo = tuple(max(0, f) for f in first)
        hi = tuple(min(n, e) for n, e in zip(dy.shape[2:], end, strict=False))
        if any(stop <= start for start, stop in zip(lo, hi, strict=False)):  # the window lies wholly in the zeros
            for job in batch_jobs:
                grad_grouped[(slice(None), slice(None), slice(None), *job.target)] = 0
            continue
        window = dy[
            (slice(None), slice(None), *(slice(start, stop) for start, stop in zip(lo, hi, strict=False)))
        ]  # (N, C_out, *kept)
        pads = tuple(p for start, stop, f, e in zip(lo, hi, first, end, strict=False) for p in (start - f, e - stop))
        # (C_in, O_g, *taps) per phase -> (G, P, C_g, O_g, *taps) -> (G*P*C_g, O_g, *taps): group-major
        stacked = np.stack(
            [
                swapped[(slice(None), slice(None)) + np.ix_(*job.taps)].reshape(G, C_g, O_g, *map(len, job.taps))
                for job in batch_jobs
            ],
            axis=1,
        )
        stacked = np.ascontiguousarray(stacked.reshape(G * len(batch_jobs) * C_g, O_g, *stacked.shape[4:]))
        phase_geo = ConvGeometry(
            batch=batch,
            in_channels=geo.out_channels,
            spatial=window.shape[2:],
            out_channels=stacked.shape[0],
            groups=G,
            kernel=stacked.shape[2:],
            stride=(1,) * d,
            dilation=batch_jobs[0].dilation,
            pads=pads,
            padding_mode="zeros",
            unbatched=False,
        )
        if placed_in_kernel(phase_geo, dy.dtype):
            own_starts = [tuple(f - f0 for f, f0 in zip(job.first, first, strict=False)) for job in batch_jobs]
            write_phases_placed(window, stacked, phase_geo, batch_jobs, own_starts, grad)
            continue
        if len(batch_jobs) == 1 and written_in_3d_kernel(phase_geo, dy.dtype):
            # one phase: its convolution's output is exactly its strided positions of grad (a view)
            from .algorithms.compiled import conv_compiled_3d

            phase_out = grad[(slice(None), slice(None), *batch_jobs[0].target)]  # (N, C_in, *phase positions)
            conv_compiled_3d(window, stacked, phase_geo, out=phase_out)
            continue
        out = convolve_planned(window, stacked, phase_geo)  # (N, G*P*C_g, *union outputs)
        out = out.reshape(batch, G, len(batch_jobs), C_g, *out.shape[2:])  # (N, G, P, C_g, *union outputs)
        for p, job in enumerate(batch_jobs):
            own = tuple(slice(f - f0, f - f0 + n) for f, f0, n in zip(job.first, first, job.outputs, strict=False))
            grad_grouped[(slice(None), slice(None), slice(None), *job.target)] = out[
                (slice(None), slice(None), p, slice(None)) + own
            ]  # (N, G, C_g, *phase positions)
    return grad


def placed_in_kernel(phase_geo: ConvGeometry, dtype: np.dtype) -> bool:
    """Whether the phases' convolution runs in the compiled kernel that writes each phase straight
    into the strided output (1-d and 2-d; where the chooser would pick "compiled" anyway)."""
    from .algorithms import choose_algorithm

    return phase_geo.spatial_dims <= 2 and choose_algorithm(phase_geo, dtype=dtype) == "compiled"


def written_in_3d_kernel(phase_geo: ConvGeometry, dtype: np.dtype) -> bool:
    """Whether a 3-d phase's convolution runs in the compiled 3-d kernel writing straight into the
    phase's strided positions of the output (compiled.conv_compiled_3d's ``out``): numba, its dtypes
    and few enough channels per group (the pointwise rule for 1x1x1 sub-kernels aside: an upsampler's
    phases are often one tap). Otherwise each phase's result is copied there by NumPy, a strided
    copy that took 0.7 ms of the depthwise ConvTranspose3d's 1.8 on one thread, and ran on one
    thread whatever the count (docs/performance.md, round 6)."""
    from .algorithms import COMPILED_DTYPES, COMPILED_MAX_CHANNELS_PER_GROUP, numba_available

    return (
        phase_geo.spatial_dims == 3
        and phase_geo.in_channels_per_group <= COMPILED_MAX_CHANNELS_PER_GROUP
        and np.dtype(dtype) in COMPILED_DTYPES
        and numba_available()
    )


def write_phases_placed(
    window: np.ndarray,
    stacked: np.ndarray,
    phase_geo: ConvGeometry,
    jobs: Sequence[PhaseJob],
    own_starts: Sequence[tuple[int, ...]],
    grad: np.ndarray,
) -> None:
    """The stacked phases' convolution (:func:`input_gradient_by_phases`), each phase's outputs written
    by the compiled kernel straight into their strided positions of ``grad`` (N, C_in, *cropped):
    the four stride-2 copies of an upsampler's phases, a pass over the output each, are gone.
    Stacked output channel (g, p, c) is phase p's gradient of input channel g*C_g + c; the kernel
    gets them reordered (g, c, p)."""
    from .algorithms.compiled import kernel_for, thread_count

    G, P = phase_geo.groups, len(jobs)
    C_g = phase_geo.out_channels // (G * P)
    pads, dilation, output = phase_geo.pads, phase_geo.dilation, phase_geo.output_size
    steps: tuple[int, ...] = tuple(t.step for t in jobs[0].target)
    rows_cols: list[tuple[int, ...]] = [tuple(job.outputs) for job in jobs]
    firsts: list[tuple[int, ...]] = [tuple(own) for own in own_starts]
    target_starts: list[tuple[int, ...]] = [tuple(t.start or 0 for t in job.target) for job in jobs]
    if phase_geo.spatial_dims == 1:  # as height 1: one leading row, read and written at row 0
        window, stacked, grad = window[:, :, None], stacked[:, :, None], grad[:, :, None]
        pads, dilation, output, steps = (0, 0, *pads), (1, *dilation), (1, *output), (1, *steps)
        rows_cols = [(1, *rc) for rc in rows_cols]
        firsts = [(0, *f) for f in firsts]
        target_starts = [(0, *t) for t in target_starts]
    for p in range(P):  # numba does not bounds-check: every write must land inside grad and read inside the plane
        for k in range(2):
            assert firsts[p][k] + rows_cols[p][k] <= output[k]
            assert rows_cols[p][k] == 0 or target_starts[p][k] + (rows_cols[p][k] - 1) * steps[k] < grad.shape[2 + k]
    # Column phases written as interleaved pairs (see direct_conv_placed's ``partner``): phase p2 fills
    # the odd columns of phase p's target rows when it starts one column right, on the same rows.
    pairs: list[tuple[int, int]] = []
    if steps[1] == 2:
        for p in range(P):
            for p2 in range(P):
                paired = {q for pair in pairs for q in pair}
                same_rows = target_starts[p2][0] == target_starts[p][0] and rows_cols[p2][0] == rows_cols[p][0]
                if (
                    p not in paired
                    and p2 not in paired
                    and same_rows
                    and target_starts[p2][1] == target_starts[p][1] + 1
                    and rows_cols[p][1] - rows_cols[p2][1] in (0, 1)
                ):
                    pairs.append((p, p2))
    # The kernel takes the stacked channels phase-minor, (g, c, phase), the phases in this order:
    # each pair, the phase then its partner, then the phases written alone. A partner is then the
    # next channel, at an odd place in its group, and one pass of four output channels
    # (compiled_kernel._add_taps_4) computes both.
    order = [p for pair in pairs for p in pair] + [p for p in range(P) if all(p not in pair for pair in pairs)]
    stacked = stacked.reshape(G, P, C_g, *stacked.shape[1:])[:, order].swapaxes(1, 2)  # (G, C_g, P, O_g, *taps)
    placement = np.empty((G, C_g, P, 7), dtype=np.int64)  # per kernel output channel, see direct_conv_placed
    partner = np.full((G, C_g, P), -1, dtype=np.int64)  # per kernel output channel, like placement
    channels = np.arange(G * C_g * P).reshape(G, C_g, P)
    for k, p in enumerate(order):
        placement[:, :, k, 0] = np.arange(G * C_g).reshape(G, C_g)  # target channel g*C_g + c
        placement[:, :, k, 1:3] = target_starts[p]
        placement[:, :, k, 3:5] = firsts[p]
        placement[:, :, k, 5:7] = rows_cols[p]
        if k < 2 * len(pairs):  # even k: the pair's first phase; odd: its partner
            partner[:, :, k] = channels[:, :, k + 1] if k % 2 == 0 else -2
    height, width = window.shape[2:]
    top, left = pads[0], pads[2]
    phase_height, phase_width = height + pads[0] + pads[1], width + pads[2] + pads[3]
    assert (stacked.shape[-2] - 1) * dilation[0] * phase_width + (stacked.shape[-1] - 1) * dilation[1] + (
        output[0] - 1
    ) * phase_width + output[1] <= phase_height * phase_width
    multiply_adds = window.shape[0] * math.prod(output) * math.prod(stacked.shape)  # N * outputs * (G*C_g*P*O_g*taps)
    threads = thread_count()
    sizes = [top, left, dilation[0], dilation[1], phase_height, phase_width, *output, *steps, threads]
    kernel_for("direct_conv_placed", threads, multiply_adds)(
        np.ascontiguousarray(window),
        np.ascontiguousarray(stacked).reshape(G * C_g * P, *stacked.shape[3:]),
        np.array(sizes, dtype=np.int64),
        placement.reshape(G * C_g * P, 7),
        partner.reshape(G * C_g * P),
        grad,
    )


class PhaseJob(NamedTuple):
    """One output phase of :func:`input_gradient_by_phases`: where its positions go in the result,
    its taps (reversed) and dilation per dim, the dy index its first output reads, its output count."""

    target: tuple[slice, ...]
    taps: tuple[list[int], ...]
    dilation: tuple[int, ...]
    first: tuple[int, ...]
    outputs: tuple[int, ...]


def weight_gradient(x: np.ndarray, dy: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """(N, C_in, *spatial) input and (N, C_out, *out) dy -> grad_weight (C_out, C_in/G, *k).

    Up to 64x64 channels per group: :func:`weight_gradient_by_taps`; more (AlexNet's): one einsum over
    the windows (a GEMM per group). See WEIGHT_GRADIENT_TAPS_MAX_CHANNELS."""
    if geo.in_channels_per_group * geo.out_channels_per_group <= WEIGHT_GRADIENT_TAPS_MAX_CHANNELS:
        return weight_gradient_by_taps(x, dy, geo)
    return weight_gradient_by_einsum(x, dy, geo)


# C_g * O_g at or below which the weight gradient loops over taps (each tap a batched (O_g, L) @ (L, C_g)
# product) rather than einsum over the windows (round 4, docs/performance.md, float64, ms taps/einsum):
# depthwise 7x7 10/237, ResNeXt 4x4 per group 12/63, 16x16 per group 0.9/224, groups 1 64x64 1.0/9.3;
# einsum ahead only on AlexNet's 48x128 (113/67) and 192x192 (44/30) per group.
WEIGHT_GRADIENT_TAPS_MAX_CHANNELS = 4096


def weight_gradient_by_taps(x: np.ndarray, dy: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """The weight gradient one kernel tap at a time: grad[g, o, c, t] = sum over n and output
    positions of dy[n, g, o, i] * x_tap(t)[n, g, c, i], where each tap reads a contiguous slice of a
    phase of the padded input (phases.py) and dy is laid on the same wide grid (its junk columns
    zero, so they add nothing). No window copy: input + output memory, one product per tap."""
    G, C_g, O_g, batch = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group, geo.batch
    flat, taps, length, phase_dims = grouped_flat_phases(pad_input(x, geo.pads, geo.padding_mode), geo)
    wide = np.zeros((batch, G, O_g, wide_size(geo, phase_dims)), dtype=dy.dtype)  # (N, G, O_g, out_0*Q_1*...)
    crop_wide(wide, geo, phase_dims)[...] = dy.reshape(batch, G, O_g, *geo.output_size)
    dy_wide = wide[..., :length]  # (N, G, O_g, L)
    grad = np.zeros((G, O_g, C_g, len(taps)), dtype=dy.dtype)  # (G, O_g, C_g, T)
    for t, tap in enumerate(taps):
        for n in range(batch):
            x_tap = flat[tap.phase][n, :, :, tap.offset : tap.offset + length]  # (G, C_g, L)
            grad[:, :, :, t] += np.matmul(dy_wide[n], x_tap.transpose(0, 2, 1))  # (G, O_g, L) @ (G, L, C_g)
    return grad.reshape(geo.out_channels, C_g, *geo.kernel)


def weight_gradient_by_einsum(x: np.ndarray, dy: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """:func:`weight_gradient` as one einsum over the sliding windows (a GEMM per group)."""
    G, C_g, O_g = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    windows = sliding_windows(pad_input(x, geo.pads, geo.padding_mode), geo)  # (N, C_in, *out, *k)
    windows = windows.reshape(geo.batch, G, C_g, *geo.output_size, *geo.kernel)  # (N, G, C_g, *out, *k)
    dy_grouped = dy.reshape(geo.batch, G, O_g, *geo.output_size)  # (N, G, O_g, *out)
    out, taps = subscripts(geo.spatial_dims)
    # Correlate within each group: the group axis g is shared by both operands, never summed.
    # (G, O_g, C_g, *k)
    grad: np.ndarray = np.einsum(f"ngo{out},ngc{out}{taps}->goc{taps}", dy_grouped, windows, optimize=True)
    return grad.reshape(geo.out_channels, C_g, *geo.kernel)


def plan_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: IntOrTuple,
    padding: Padding,
    dilation: IntOrTuple,
    groups: int,
    padding_mode: str,
    spatial_dims: int = 2,
) -> tuple[ConvGeometry, np.dtype]:
    """The forward's checks plus grad_output's shape; the geometry and the dtype to compute in.
    Shared by the loop and the vectorised backward, so both refuse the same arguments."""
    geo = plan_conv(
        np.shape(input),
        np.shape(weight),
        None if bias is None else np.shape(bias),
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        spatial_dims=spatial_dims,
    )
    if tuple(np.shape(grad_output)) != geo.output_shape:
        raise ValueError(
            f"grad_output has shape {list(np.shape(grad_output))}, the output's is {list(geo.output_shape)}"
        )
    return geo, result_dtype(input, weight, grad_output, bias)


@bfloat16_in_float32
def convolve_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    spatial_dims: int,
) -> ConvGradients:
    """Gradients of ``sum(convolve(input, weight, bias, ...) * grad_output)`` w.r.t. input, weight, bias."""
    input, weight, grad_output = np.asarray(input), np.asarray(weight), np.asarray(grad_output)
    geo, dtype = plan_backward(
        grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims
    )
    x = input.astype(dtype, copy=False).reshape(geo.batched_input_shape)  # (N, C_in, *spatial)
    dy = grad_output.astype(dtype, copy=False).reshape(
        geo.batch, geo.out_channels, *geo.output_size
    )  # (N, C_out, *out)
    w = weight.astype(dtype, copy=False)
    if geo.padding_mode == "zeros":  # the zero border copied nothing: compute the input's region only
        inside = [(before, before + n) for (before, _), n in zip(geo.pad_pairs, geo.spatial, strict=False)]
        grad_input = padded_input_gradient(dy, w, geo, crop=inside)  # (N, C_in, *spatial)
    else:
        grad_input = fold_padding(padded_input_gradient(dy, w, geo), geo)  # (N, C_in, *spatial)
    grad_weight = weight_gradient(x, dy, geo)  # (C_out, C_g, *k)
    grad_bias = None if bias is None else dy.sum(axis=(0, *range(2, 2 + spatial_dims)))  # (C_out,)
    return ConvGradients(
        np.ascontiguousarray(grad_input).reshape(input.shape).astype(dtype, copy=False),
        grad_weight.astype(dtype, copy=False),
        grad_bias,
    )


def conv1d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> ConvGradients:
    """:func:`convolve_backward` for ``conv1d``."""
    return convolve_backward(
        grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=1
    )


def conv2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> ConvGradients:
    """Gradients of ``sum(conv2d(input, weight, bias, ...) * grad_output)`` w.r.t. input, weight, bias.

    The seed experiment backwards: with ``dy = 1`` a 1x1 weight's gradient is the input its
    output channel reads, so each row of ``grad_weight`` shows the group: outputs 0-1 saw inputs
    0.1 and 1, outputs 2-3 saw 10 and 100. ``grad_input`` sums the weights that read each input.

    >>> x = np.array([0.1, 1, 10, 100, 1000, 10000]).reshape(1, 6, 1, 1)
    >>> w = np.arange(1, 13.0).reshape(6, 2, 1, 1)
    >>> grads = conv2d_backward(np.ones((1, 6, 1, 1)), x, w, groups=3)
    >>> grads.grad_weight.reshape(6, 2).tolist()[:4]
    [[0.1, 1.0], [0.1, 1.0], [10.0, 100.0], [10.0, 100.0]]
    >>> grads.grad_input.ravel().tolist()          # 1+3, 2+4, 5+7, 6+8, 9+11, 10+12
    [4.0, 6.0, 12.0, 14.0, 20.0, 22.0]
    """
    return convolve_backward(
        grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=2
    )


def conv3d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> ConvGradients:
    """:func:`convolve_backward` for ``conv3d``."""
    return convolve_backward(
        grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial_dims=3
    )
