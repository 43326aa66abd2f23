"""The input gradient (a transposed convolution's forward pass) phase by phase: the sub-pixel
decomposition behind backward.padded_input_gradient's "phases" path.

Each of the prod(stride) phases of the padded input is a stride-1 grouped convolution of ``dy``
with the taps that land on it, run by the fast forward convolution itself: no zero-stuffed ``dy``,
so no multiplications by inserted zeros, and only the phase positions inside ``crop`` are computed,
written straight to their place.

Everything that depends only on the shapes (which taps reach which phase, the dy window each
phase reads, the order and placement of the stacked kernels, the route each convolution takes)
is worked out once per geometry by :func:`plan_phases` and cached: worked out per call, it was
0.19 ms of the depthwise upsampler's 0.93 on one thread and 0.49 of the depthwise
ConvTranspose3d's 1.33 (docs/performance.md, round 7). A call then gathers the weight into the
stacked kernels with one index array, allocates the result and runs the kernels.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .geometry import ConvGeometry
from .vectorized import convolve_planned

Crop = Sequence[tuple[int, int]]  # per spatial dim, the [start, stop) of padded positions wanted

# The allocation of a result whose every element is written anyway; tests replace it with a NaN fill,
# so that an element left unwritten shows instead of reading as whatever the memory held (often 0).
uninitialised = np.empty


def _phase_plan(
    phase: int, stride: int, dilation: int, kernel: int, dy_length: int, phase_length: int
) -> tuple[list[int], int, int, int] | None:
    """One spatial dim of one output phase of the input gradient.

    Padded position ``m = u*s + a`` (phase ``a``) receives ``dy[i] * w[t]`` from every tap with
    ``i*s + t*d = m``, i.e. ``t*d = a (mod s)`` and ``i = u - e_t`` with ``e_t = (t*d - a) / s``.
    Consecutive such taps differ in ``e`` by ``d / gcd(s, d)``: the phase is a stride-1
    correlation of ``dy`` (shifted by the largest ``e``) with those taps reversed, dilated by that step.

    Returns (taps reversed, dilation, first dy index read at u = 0, length of the dy window) or
    None when no tap lands on this phase.

    >>> _phase_plan(1, 2, 1, 4, 8, 8)   # k4 s2, odd positions: taps 3 and 1, reversed
    ([3, 1], 1, -1, 9)
    """
    taps = [t for t in range(kernel) if (t * dilation - phase) % stride == 0]
    if not taps or phase_length <= 0:
        return None
    step = dilation // math.gcd(stride, dilation)
    largest_shift = (taps[-1] * dilation - phase) // stride
    return taps[::-1], step, -largest_shift, phase_length + (len(taps) - 1) * step


class PhaseJob(NamedTuple):
    """One output phase: where its positions go in the result, its taps (reversed) and dilation per
    dim, the dy index its first output reads, its output count."""

    target: tuple[slice, ...]
    taps: tuple[list[int], ...]
    dilation: tuple[int, ...]
    first: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class PlacedCall:
    """The arguments of compiled_kernel.direct_conv_placed that depend only on the shapes (the
    thread count is added per call): see :func:`plan_placed`."""

    placement: np.ndarray  # (kernel output channels, 7), int64
    partner: np.ndarray  # (kernel output channels,), int64
    sizes: tuple[int, ...]  # direct_conv_placed's ``sizes`` but the last (threads)
    one_dimensional: bool  # 1-d runs as height 1: window, kernels and result get a leading row axis


@dataclass(frozen=True)
class PhaseConvolution:
    """One convolution of the plan: the phases ``jobs``, their sub-kernels stacked as more output
    channels per group, over the union of their dy windows. ``route``:

    * "zero": the window lies wholly in dy's zero padding; the jobs' positions are set to zero.
    * "placed": compiled_kernel.direct_conv_placed writes every phase straight into its strided
      positions of the result (1-d and 2-d).
    * "3d": one 3-d phase through conv_compiled_3d, writing into a strided view of the result.
    * "general": the chooser's forward convolution, each phase's outputs then copied into place.
    """

    route: str
    jobs: tuple[PhaseJob, ...]
    window: tuple[slice, ...]  # the dy region read, per spatial dim
    gather: np.ndarray  # indices into weight.ravel(): weight.ravel()[gather] is the kernel to run
    phase_geo: ConvGeometry | None  # None for "zero"
    own: tuple[tuple[slice, ...], ...]  # "general": each job's outputs within the union's
    placed: PlacedCall | None  # "placed"


@dataclass(frozen=True)
class PhasesPlan:
    """Everything :func:`input_gradient_by_phases` does that depends only on the shapes."""

    grad_shape: tuple[int, ...]  # (N, C_in, *cropped)
    every_phase_written: bool  # then the result needs no zeroing first
    convolutions: tuple[PhaseConvolution, ...]


def input_gradient_by_phases(dy: np.ndarray, weight: np.ndarray, geo: ConvGeometry, crop: Crop) -> np.ndarray:
    """The padded input's gradient, region ``crop`` (N, C_in, *cropped), phase by phase (see the
    module's docstring), by the plan :func:`plan_phases` made for these shapes."""
    from .algorithms import numba_available

    plan = plan_phases(geo, tuple(map(tuple, crop)), dy.shape, np.dtype(dy.dtype).str, numba_available())
    if dy.shape[1] == 0:  # no output channels: every sum is empty (the kernels would divide by zero)
        return np.zeros(plan.grad_shape, dtype=dy.dtype)
    # every position of a phase with a job is written, so where every phase has one the result
    # needs no zeroing first (a pass over the whole output: 0.3 ms of the upsampler's 1)
    grad = (uninitialised if plan.every_phase_written else np.zeros)(plan.grad_shape, dtype=dy.dtype)
    G, C_g = geo.groups, geo.in_channels_per_group
    grad_grouped = grad.reshape(grad.shape[0], G, C_g, *grad.shape[2:])  # (N, G, C_g, *cropped), a view
    flat_weight = weight.reshape(-1)
    for step in plan.convolutions:
        if step.route == "zero":
            for job in step.jobs:
                grad_grouped[(slice(None), slice(None), slice(None), *job.target)] = 0
            continue
        window = dy[(slice(None), slice(None), *step.window)]  # (N, C_out, *kept)
        stacked = flat_weight[step.gather]  # the stacked sub-kernels, contiguous
        assert step.phase_geo is not None
        if step.route == "placed":
            assert step.placed is not None
            write_phases_placed(window, stacked, step.placed, grad)
        elif step.route == "3d":
            from .algorithms.compiled import conv_compiled_3d

            phase_out = grad[(slice(None), slice(None), *step.jobs[0].target)]  # (N, C_in, *phase positions)
            conv_compiled_3d(window, stacked, step.phase_geo, out=phase_out)
        else:
            out = convolve_planned(window, stacked, step.phase_geo)  # (N, G*P*C_g, *union outputs)
            out = out.reshape(grad.shape[0], G, len(step.jobs), C_g, *out.shape[2:])  # (N, G, P, C_g, *union)
            for p, (job, own) in enumerate(zip(step.jobs, step.own, strict=True)):
                grad_grouped[(slice(None), slice(None), slice(None), *job.target)] = out[
                    (slice(None), slice(None), p, slice(None)) + own
                ]  # (N, G, C_g, *phase positions)
    return grad


@functools.lru_cache(maxsize=64)  # a plan holds index arrays the size of the stacked kernels
def plan_phases(
    geo: ConvGeometry, crop: tuple[tuple[int, int], ...], dy_shape: tuple[int, ...], dtype: str, compiled: bool
) -> PhasesPlan:
    """The plan of :func:`input_gradient_by_phases` for these shapes (cached: the same layer's
    next call reuses it). ``compiled``: whether numba imports (the routes depend on it).

    The weight (C_out, C_g, *k) is read as a layer from C_out to C_in channels: (G, O_g, C_g, *k)
    -> swap the channel axes within each group -> (G, C_g, O_g, *k) -> (C_in, O_g, *k), taps
    reversed; the plan holds that reading as an index array into the weight.
    """
    G, C_g, O_g = geo.groups, geo.in_channels_per_group, geo.out_channels_per_group
    batch, d, dy_size = dy_shape[0], geo.spatial_dims, dy_shape[2:]
    weight_shape = (geo.out_channels, C_g, *geo.kernel)
    indices = np.arange(math.prod(weight_shape)).reshape(weight_shape)  # where each weight element is
    swapped = indices.reshape(G, O_g, C_g, *geo.kernel).swapaxes(1, 2)  # (G, C_g, O_g, *k)
    swapped = swapped.reshape(geo.in_channels, O_g, *geo.kernel)  # (C_in, O_g, *k)
    jobs: list[PhaseJob] = []
    for phase in itertools.product(*(range(s) for s in geo.stride)):
        # Phase positions u with start <= u*s + a < stop: u in [first_u, end_u).
        first_u = [max(0, -(-(start - a) // s)) for a, s, (start, _) in zip(phase, geo.stride, crop, strict=True)]
        end_u = [-(-(stop - a) // s) for a, s, (_, stop) in zip(phase, geo.stride, crop, strict=True)]
        plans = [
            _phase_plan(a, s, dil, k, n, end - first)
            for a, s, dil, k, n, first, end in zip(
                phase, geo.stride, geo.dilation, geo.kernel, dy_size, first_u, end_u, strict=True
            )
        ]
        found = [plan for plan in plans if plan is not None]
        if len(found) < len(plans):
            continue  # no tap reaches this phase (or none of it is wanted): its gradient stays zero
        target = tuple(
            slice(a + u0 * s - start, None, s)
            for a, u0, s, (start, _) in zip(phase, first_u, geo.stride, crop, strict=True)
        )
        jobs.append(
            PhaseJob(
                target=target,
                taps=tuple(p[0] for p in found),
                dilation=tuple(p[1] for p in found),
                first=tuple(p[2] + u0 for p, u0 in zip(found, first_u, strict=True)),
                outputs=tuple(end - first for first, end in zip(first_u, end_u, strict=True)),
            )
        )
    grad_shape = (batch, geo.in_channels, *(b - a for a, b in crop))
    # Phases with the same tap counts and dilations (an upsampler's k = 2s: all of them) share one
    # convolution: their sub-kernels stacked as more output channels per group, over the union of
    # their windows; each phase then takes its outputs at its own offset. One call, one copy of
    # dy into the kernel's buffers, instead of one per phase.
    same = len({(tuple(map(len, job.taps)), job.dilation) for job in jobs}) == 1
    batches = [jobs] if same else [[job] for job in jobs]
    convolutions = []
    for batch_jobs in batches:
        first = tuple(min(job.first[k] for job in batch_jobs) for k in range(d))
        end = tuple(
            max(job.first[k] + job.outputs[k] + (len(job.taps[k]) - 1) * job.dilation[k] for job in batch_jobs)
            for k in range(d)
        )
        lo = tuple(max(0, f) for f in first)
        hi = tuple(min(n, e) for n, e in zip(dy_size, end, strict=True))
        window = tuple(slice(start, stop) for start, stop in zip(lo, hi, strict=True))
        if any(stop <= start for start, stop in zip(lo, hi, strict=True)):  # the window lies wholly in the zeros
            convolutions.append(PhaseConvolution("zero", tuple(batch_jobs), window, indices[:0], None, (), None))
            continue
        pads = tuple(p for start, stop, f, e in zip(lo, hi, first, end, strict=True) for p in (start - f, e - stop))
        # (C_in, O_g, *taps) per phase -> (G, P, C_g, O_g, *taps) -> (G*P*C_g, O_g, *taps): group-major
        stacked = np.stack(
            [
                swapped[(slice(None), slice(None)) + np.ix_(*job.taps)].reshape(G, C_g, O_g, *map(len, job.taps))
                for job in batch_jobs
            ],
            axis=1,
        )
        stacked = stacked.reshape(G * len(batch_jobs) * C_g, O_g, *stacked.shape[4:])
        phase_geo = ConvGeometry(
            batch=batch,
            in_channels=geo.out_channels,
            spatial=tuple(b - a for a, b in zip(lo, hi, strict=True)),
            out_channels=stacked.shape[0],
            groups=G,
            kernel=stacked.shape[2:],
            stride=(1,) * d,
            dilation=batch_jobs[0].dilation,
            pads=pads,
            padding_mode="zeros",
            unbatched=False,
        )
        dtype_ = np.dtype(dtype)
        if compiled and placed_in_kernel(phase_geo, dtype_):
            own_starts = [tuple(f - f0 for f, f0 in zip(job.first, first, strict=True)) for job in batch_jobs]
            order, placed = plan_placed(phase_geo, batch_jobs, own_starts, grad_shape)
            # the kernel takes the stacked channels phase-minor, (g, c, phase), phases in ``order``
            kernel = stacked.reshape(G, len(batch_jobs), C_g, *stacked.shape[1:])[:, order].swapaxes(1, 2)
            gather = np.ascontiguousarray(kernel).reshape(stacked.shape)  # (G*C_g*P, O_g, *taps)
            convolutions.append(PhaseConvolution("placed", tuple(batch_jobs), window, gather, phase_geo, (), placed))
            continue
        gather = np.ascontiguousarray(stacked)
        if compiled and len(batch_jobs) == 1 and written_in_3d_kernel(phase_geo, dtype_):
            # one phase: its convolution's output is exactly its strided positions of grad (a view)
            convolutions.append(PhaseConvolution("3d", tuple(batch_jobs), window, gather, phase_geo, (), None))
            continue
        own = tuple(
            tuple(slice(f - f0, f - f0 + n) for f, f0, n in zip(job.first, first, job.outputs, strict=True))
            for job in batch_jobs
        )
        convolutions.append(PhaseConvolution("general", tuple(batch_jobs), window, gather, phase_geo, own, None))
    every_phase_written = len(jobs) == math.prod(geo.stride)
    return PhasesPlan(grad_shape, every_phase_written, tuple(convolutions))


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


def plan_placed(
    phase_geo: ConvGeometry,
    jobs: Sequence[PhaseJob],
    own_starts: Sequence[tuple[int, ...]],
    grad_shape: tuple[int, ...],
) -> tuple[list[int], PlacedCall]:
    """The order of the phases in the kernel and the shape-only arguments of
    compiled_kernel.direct_conv_placed, for the stacked phases' convolution ``phase_geo`` whose
    outputs go straight into their strided positions of the result ``grad_shape`` (N, C_in, *cropped).

    Stacked output channel (g, p, c) is phase p's gradient of input channel g*C_g + c; the kernel
    gets them reordered (g, c, p), the phases in the returned order.
    """
    G, P = phase_geo.groups, len(jobs)
    C_g = phase_geo.out_channels // (G * P)
    pads, dilation, output = phase_geo.pads, phase_geo.dilation, phase_geo.output_size
    steps: tuple[int, ...] = tuple(t.step for t in jobs[0].target)
    rows_cols: list[tuple[int, ...]] = [tuple(job.outputs) for job in jobs]
    firsts: list[tuple[int, ...]] = [tuple(own) for own in own_starts]
    target_starts: list[tuple[int, ...]] = [tuple(t.start or 0 for t in job.target) for job in jobs]
    window_size, kernel, target_size = phase_geo.spatial, phase_geo.kernel, grad_shape[2:]
    one_dimensional = phase_geo.spatial_dims == 1
    if one_dimensional:  # as height 1: one leading row, read and written at row 0
        pads, dilation, output, steps = (0, 0, *pads), (1, *dilation), (1, *output), (1, *steps)
        rows_cols = [(1, *rc) for rc in rows_cols]
        firsts = [(0, *f) for f in firsts]
        target_starts = [(0, *t) for t in target_starts]
        window_size, kernel, target_size = (1, *window_size), (1, *kernel), (1, *target_size)
    for p in range(P):  # numba does not bounds-check: every write must land inside grad and read inside the plane
        for k in range(2):
            assert firsts[p][k] + rows_cols[p][k] <= output[k]
            assert rows_cols[p][k] == 0 or target_starts[p][k] + (rows_cols[p][k] - 1) * steps[k] < target_size[k]
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
    # The phases in this order: each pair, the phase then its partner, then the phases written alone.
    # A partner is then the next channel, at an odd place in its group, and one pass of four output
    # channels (compiled_kernel._add_taps_4) computes both.
    order = [p for pair in pairs for p in pair] + [p for p in range(P) if all(p not in pair for pair in pairs)]
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
    height, width = window_size
    top, left = pads[0], pads[2]
    phase_height, phase_width = height + pads[0] + pads[1], width + pads[2] + pads[3]
    assert (kernel[0] - 1) * dilation[0] * phase_width + (kernel[1] - 1) * dilation[1] + (
        output[0] - 1
    ) * phase_width + output[1] <= phase_height * phase_width
    sizes = (top, left, dilation[0], dilation[1], phase_height, phase_width, *output, *steps)
    call = PlacedCall(
        placement=placement.reshape(G * C_g * P, 7),
        partner=partner.reshape(G * C_g * P),
        sizes=sizes,
        one_dimensional=one_dimensional,
    )
    return order, call


def write_phases_placed(window: np.ndarray, kernel: np.ndarray, call: PlacedCall, grad: np.ndarray) -> None:
    """The stacked phases' convolution of ``window`` (N, C_out, *kept) with ``kernel`` (the stacked
    sub-kernels, phase-minor: :func:`plan_placed`), each phase's outputs written by the compiled
    kernel straight into their strided positions of ``grad`` (N, C_in, *cropped): the four stride-2
    copies of an upsampler's phases, a pass over the output each, are gone."""
    from .algorithms.compiled import kernel_for, threads_for

    if call.one_dimensional:  # as height 1 (views)
        window, kernel, grad = window[:, :, None], kernel[:, :, None], grad[:, :, None]
    # each element of grad sums O_g channels times its phase's taps: a row of the stacked kernel
    threads = threads_for(grad.size * math.prod(kernel.shape[1:]))
    kernel_for("direct_conv_placed", threads)(
        np.ascontiguousarray(window),
        kernel,
        np.array((*call.sizes, threads), dtype=np.int64),
        call.placement,
        call.partner,
        grad,
    )
