"""Direct convolution compiled by numba: the loop version's sum, at the speed of a C loop.

    y[n, o] = sum_{c, p, q} w[o, c, p, q] * x_tap(p, q)[n, g*C_g + c]        g = o // O_g

Loops: (n, g) work items in parallel (numba.prange over one chunk of the flattened N*G per thread,
each chunk with its own buffers; small planes take several samples per item, side by side: see
samples_per_item), then the group's output channels o, four at a time, its input channels c and
the kernel taps (p, q), and innermost one long contiguous multiply-add over the whole output plane
of each of the four, which LLVM vectorises. That plane is the "wide" grid
of phases.py: tap (p, q) of a stride-1 phase is one flat slice of length
L = (H_out-1)*W_q + W_out, so strides and dilations never reach the inner loop (a runtime
stride there makes LLVM emit gathers). Each (n, g) first copies its C_g input channels,
zero-padded and split into phases, into a small buffer that stays in L2 for all O_g outputs;
the (n, o) plane, ~13 KiB for a 56x56 layer, stays in L1 while all C_g*kH*kW taps are added
into it. Where the NumPy tap loop (taps.py) makes two single-threaded passes over memory per
tap, plus a padded copy and a phase copy of the input, this makes one pass per layer.

Measured choices (docs/performance.md): the whole wide plane as the inner loop, not one output
row (rows of 56 are too short: 6.1 vs 2.1 ms single-threaded on ConvNeXt's 7x7 depthwise);
up to eight taps, across kernel rows and channels, added in one pass (the accumulator is loaded
and stored once per pass instead of once per tap: compiled_kernel._add_taps), into four output
channels' planes at once (each input value loaded feeds four multiply-adds: _add_taps_4); a
depthwise plane at row stride 1 as its even and its odd output rows side by side, each input slice
loaded once for both (pairs_rows; ConvNeXt's 7x7 0.83-0.87x, round 12); copies through
0-based row views (a computed 4-d index kept every copy scalar); zero padding and the phase split done
inside the kernel, per (n, g), in parallel and in cache (conv2d's single-threaded padded copy
plus split_phases cost ~1.5 ms on EfficientNet's strided 5x5, the kernel itself ~0.2 ms).

No fastmath: every tap is an IEEE multiply then add, in conv2d_loops' (c, p, q) order, also
inside a fused pass (((acc + t0*x0) + t1*x1) + ...). ``cache=True`` keeps the machine code in
__pycache__/compiled_kernel.*.nbi, *.nbc: compilation (~3 s per dtype on the 2-core machine)
is paid once per machine and dtype (float32, float64), not once per process.

numba is optional (``pip install .[fast]``) and imported on first use, not with reference_impl
(its import alone takes ~0.45 s): :func:`numba_available` says whether it imports, and the
chooser picks "compiled" only when it does. The kernel itself is in compiled_kernel.py.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..geometry import ConvGeometry
from .phases import phase_shape


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


def kernel_for(name: str, threads: int) -> Callable[..., None]:
    """compiled_kernel's kernel ``name`` for ``threads`` threads (:func:`threads_for`): on one thread
    its ``_serial`` twin, whatever the size, else the parallel one. Looked up at each call, so that a
    test's spy on either one sees it.

    On one thread the parallel kernel still hands its one chunk to a workqueue thread while the
    calling thread waits, polling: 0.1-0.2 ms a call (MobileNetV2's depthwise 3x3: 0.70 -> 0.66 ms
    serial, ConvNeXt's 1.52 -> 1.32, ResNeXt's 1.37 -> 1.15; the Conv2d geometric mean 1.16 -> 1.06
    and 1.15 -> 1.12 in two same-minutes runs; docs/performance.md, round 8). Until round 8 only
    calls of up to 1M multiply-adds ran serial: the serial code had measured 10-40% slower on whole
    layers, before the kernels' buffers were aligned to a cache line (round 7).
    """
    from . import compiled_kernel  # compiles on the first call per dtype, or loads numba's cache

    serial = threads == 1
    kernel: Callable[..., None] = getattr(compiled_kernel, f"{name}_serial" if serial else name)
    return kernel


def thread_count() -> int:
    """numba's thread count now (what ``numba.set_num_threads`` last set): the kernels hand their
    work items out in that many chunks. Read here, not in the kernels: calling it from compiled
    code stops numba from caching that code."""
    import numba

    return int(numba.get_num_threads())


# Work (multiply-adds; additions for col2im) up to which a call runs on one thread, in the kernel's
# serial twin, whatever numba's thread count. A parallel launch wakes numba's workqueue threads and
# waits for them: 3-9 us more than the serial twin in a tight loop of a tiny layer, 40 us more when
# the calls are 1 ms apart and the threads have gone to sleep (100 against 60 us a call), and more
# where other threads hold the cores. The bundled library at the machine's 2 threads, nearly all of
# it tiny cases, four alternations: 5.8-6.3 s with a parallel launch at every size, 5.3-5.7 with this
# cut, 5.1-5.5 with none (docs/performance.md, round 9). Split in two, 1M multiply-adds (~50 us of
# work on one thread) would save at most ~25 us, about what a launch costs; every network layer
# benchmarked has more.
SERIAL_MAX_WORK = 1_000_000


def threads_for(work: int) -> int:
    """How many threads a call of ``work`` multiply-adds runs on: numba's thread count, or 1 for
    little work (SERIAL_MAX_WORK). Pass it to :func:`kernel_for` and into the kernel's sizes.

    >>> threads_for(SERIAL_MAX_WORK)
    1
    """
    return 1 if work <= SERIAL_MAX_WORK else thread_count()


def as_2d(x: np.ndarray, weight: np.ndarray, geo: ConvGeometry) -> tuple[np.ndarray, np.ndarray, ConvGeometry]:
    """The 1-d or 2-d convolution as the 2-d one the kernel runs: 1-d is the 2-d convolution of
    height 1 (views, no copy); 2-d passes through. (3-d runs in its own kernel, direct_conv3d.)
    """
    if geo.spatial_dims == 2:
        return x, weight, geo
    if geo.spatial_dims == 1:
        n, c, width = x.shape
        geo2 = dataclasses.replace(
            geo,
            spatial=(1, *geo.spatial),
            kernel=(1, *geo.kernel),
            stride=(1, *geo.stride),
            dilation=(1, *geo.dilation),
            pads=(0, 0, *geo.pads),
        )
        return x.reshape(n, c, 1, width), weight.reshape(*weight.shape[:2], 1, weight.shape[2]), geo2  # (N, C, 1, W)
    raise ValueError(f"as_2d takes 1 or 2 spatial dims, got {geo.spatial_dims} (3-d has its own kernel)")


def from_2d(out2: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """The kernel's (N, C_out, H_out, W_out) back to (N, G, O_g, *output_size) (as_2d's inverse)."""
    return out2.reshape(geo.batch, geo.groups, geo.out_channels_per_group, *geo.output_size)


def conv_compiled(x: np.ndarray, weight: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """(N, C_in, *padded), (C_out, C_in/G, *k) -> (N, G, C_out/G, *output_size), 1, 2 or 3 spatial dims.

    1-d runs as a 2-d convolution of height 1 (:func:`as_2d`), 3-d in its own kernel
    (:func:`conv_compiled_3d`). Also accepts the
    *unpadded* input when the padding mode is "zeros": the kernel then pads while it splits
    phases, in parallel and in cache, and conv skips its padded copy of the input (see
    ZERO_PADDING_INSIDE in algorithms/__init__.py).
    """
    if not numba_available():
        raise RuntimeError("algorithm 'compiled' needs numba: pip install '.[fast]' (or the pins in requirements.txt)")
    if geo.spatial_dims == 3:
        return conv_compiled_3d(x, weight, geo)
    original = geo
    x, weight, geo = as_2d(x, weight, geo)
    height_out, width_out = geo.output_size
    out = np.empty((geo.batch, geo.out_channels, height_out, width_out), dtype=x.dtype)  # (N2, C_out, H_out, W_out)
    if out.size == 0:  # an empty batch needs no kernel (and no compilation)
        return from_2d(out, original)
    if geo.in_channels_per_group == 0:  # every sum is empty; the kernel would divide by C_in/G
        out.fill(0)
        return from_2d(out, original)
    padded_height, padded_width = geo.padded_size
    already_padded = x.shape[2:] == (padded_height, padded_width)
    top, _, left, _ = (0, 0, 0, 0) if already_padded else geo.pads
    assert already_padded or geo.padding_mode == "zeros", "only zero padding is done in the kernel"
    (s_h, s_w), (d_h, d_w) = geo.stride, geo.dilation
    maps = by_element_map(x.shape[3], s_w), by_element_map(width_out, 1)  # the split's, the crop's
    pair = pairs_rows(geo) and not any(maps)
    rows = row_split(geo, pair)
    phase_height, phase_width = rows.phase_rows, -(-padded_width // s_w)  # (H_q, W_q), see split_phases
    # numba does not bounds-check: make sure the last tap's slice (the furthest) lies inside its phase.
    kernel_w = geo.kernel[1]
    last_tap_start = (rows.tap_rows - 1) * d_h // rows.stride * phase_width + (kernel_w - 1) * d_w // s_w
    assert last_tap_start + (rows.plane_rows - 1) * phase_width + width_out <= phase_height * phase_width
    # Contiguous arrays: numba compiles one specialisation per array layout; keep it to one.
    threads = threads_for(out.size * math.prod(weight.shape[1:]))  # (multiply-adds)
    samples = samples_per_item(geo.batch, geo.groups, phase_height * phase_width)
    sizes = np.array(
        [top, left, s_h, s_w, d_h, d_w, phase_height, phase_width, threads, samples, *maps, pair], dtype=np.int64
    )
    kernel_for("direct_conv", threads)(np.ascontiguousarray(x), np.ascontiguousarray(weight), sizes, out)
    return from_2d(out, original)  # (N, G, O_g, *output_size)


def can_pair_rows(geo: ConvGeometry) -> bool:
    """Whether the 2-d and 3-d kernels can compute each output plane as its even rows and its odd
    rows side by side, sharing input slices (compiled_kernel._add_row_pair_taps): depthwise (one input
    channel per group) with fewer than four outputs per group (four share their loads already,
    _add_taps_4), a row stride that is a multiple of the row dilation (an odd row's taps are then an
    even row's, shift = s_h / d_h kernel rows on), more kernel rows than that shift (else no slice
    is shared), and two output rows or more. Rows are the second-to-last spatial axis.

    >>> from reference_impl import plan_conv, plan_conv2d
    >>> can_pair_rows(plan_conv2d((2, 96, 56, 56), (96, 1, 7, 7), None, 1, 3, 1, 96))   # ConvNeXt's
    True
    >>> can_pair_rows(plan_conv2d((2, 8, 9, 9), (8, 1, 3, 3), None, 1, 1, (2, 1), 8))   # dilation 2, stride 1
    False
    >>> can_pair_rows(plan_conv((1, 40, 8, 28, 28), (40, 1, 5, 3, 3), None, 1, (2, 1, 1), 1, 40, spatial_dims=3))
    True
    """
    if geo.in_channels_per_group != 1:
        return False
    from .compiled_kernel import OUTPUTS_PER_PASS  # imports numba: only conv_compiled asks

    s_h, d_h = geo.stride[-2], geo.dilation[-2]
    return (
        geo.out_channels_per_group < OUTPUTS_PER_PASS
        and s_h % d_h == 0
        and s_h // d_h < geo.kernel[-2]
        and geo.output_size[-2] >= 2
    )


def pairs_rows(geo: ConvGeometry) -> bool:
    """Whether conv_compiled pairs output rows (:func:`can_pair_rows`): at row stride 1 with three
    kernel rows or more. Measured in one process against the unpaired kernel, one thread
    (docs/performance.md, round 12): ConvNeXt's 7x7 0.83-0.87x, MobileNetV2's 3x3 0.82-0.94x, a 5x5
    at 56x56 0.91-0.98x, X3D's 3x3x3 0.84-0.95x, MoViNet's 5x3x3 0.83-0.97x; strided (the input split
    into 2*s_h row phases, fewer rows shared) no faster: EfficientNet's 5x5 s2 0.96-0.98x,
    MobileNetV2's 3x3 s2 1.03-1.07x; two kernel rows slower: the depthwise ConvTranspose3d, whose
    phases have 2x2x2 sub-kernels, 1.26x. The kernels also leave out rows short enough to go by
    element map (:func:`by_element_map`)."""
    return geo.stride[-2] == 1 and geo.kernel[-2] >= 3 and can_pair_rows(geo)


class RowSplit(NamedTuple):
    """How the 2-d and 3-d kernels split rows (the second-to-last spatial axis), paired or not."""

    stride: int  # the row stride the input is split into phases by: s_h, or 2*s_h paired
    phase_rows: int  # rows of each phase (H_q); paired, one more as reading room (below)
    tap_rows: int  # kernel rows one plane's taps span: kH, or the kH + s_h/d_h merged rows paired
    plane_rows: int  # output rows of one wide plane: H_out, or the even plane's ceil(H_out/2) paired


def row_split(geo: ConvGeometry, pair: bool) -> RowSplit:
    """The kernels' row split for ``geo``, with row pairs (:func:`pairs_rows`) or without. Paired,
    each phase gets a row of reading room: the odd plane's last row, junk when H_out is odd, reads
    one row further than the even plane's.

    >>> from reference_impl import plan_conv2d
    >>> geo = plan_conv2d((2, 96, 56, 56), (96, 1, 7, 7), None, 1, 3, 1, 96)
    >>> row_split(geo, False)
    RowSplit(stride=1, phase_rows=62, tap_rows=7, plane_rows=56)
    >>> row_split(geo, True)
    RowSplit(stride=2, phase_rows=32, tap_rows=8, plane_rows=28)
    """
    s_h, d_h = geo.stride[-2], geo.dilation[-2]
    padded, kernel, out = geo.padded_size[-2], geo.kernel[-2], geo.output_size[-2]
    if not pair:
        return RowSplit(s_h, -(-padded // s_h), kernel, out)
    return RowSplit(2 * s_h, -(-padded // (2 * s_h)) + 1, kernel + s_h // d_h, -(-out // 2))


# Rows (of the input, of the output) whose pieces in a phase are shorter than this many elements
# (one 16-float vector) are split, or cropped, element by element through an index map: a row copy
# that short runs scalar and pays its set-up per row. Per 14x14 plane (ResNeXt stage 4) the split
# took 0.17 us by rows and 0.07-0.08 by map; at 28x28 stride 2, 0.34-0.36 against 0.29-0.31; at
# 20x20 stride 1, 0.11-0.12 against 0.16; at 56x56 stride 2, 0.77 against 1.25 (docs/performance.md,
# round 8).
SHORT_ROW = 16


def by_element_map(width: int, stride: int) -> bool:
    """Whether rows ``width`` long, split into ``stride`` column phases, go element by element
    (see SHORT_ROW): each phase's piece of a row is shorter than one vector.

    >>> by_element_map(14, 2), by_element_map(28, 2), by_element_map(20, 1), by_element_map(56, 2)
    (True, True, False, False)
    """
    return width < SHORT_ROW * stride


# A work item of the compiled kernel takes enough samples for its wide plane to reach this many
# elements (docs/performance.md, round 5: a plane of 55 ran at a third of a plane of 800's speed) ...
FOLDED_PLANE = 512
# ... while leaving at least this many items for the threads to share.
MIN_ITEMS = 8


def samples_per_item(batch: int, groups: int, phase_size: int) -> int:
    """How many samples one (sample block, group) work item of direct_conv takes.

    >>> samples_per_item(8, 32, 8 * 8), samples_per_item(2, 256, 29 * 29), samples_per_item(8, 1, 64)
    (8, 1, 1)
    """
    wanted = max(1, -(-FOLDED_PLANE // phase_size))
    while wanted > 1 and -(-batch // wanted) * groups < MIN_ITEMS:
        wanted -= 1
    return min(batch, wanted) if batch else 1


def conv_compiled_3d(x: np.ndarray, weight: np.ndarray, geo: ConvGeometry, out: np.ndarray | None = None) -> np.ndarray:
    """The 3-d convolution by its own kernel (compiled_kernel.direct_conv3d): depth is split into
    phases like height and width, never unfolded into kD copies of the input (round 3 unfolded it:
    kD copies of the input before the 2-d kernel's own copy; X3D 3-4x slower, docs/performance.md).
    Same contract as :func:`conv_compiled`.

    ``out``: where to write the (N, C_out, *output_size) result instead of a new array; any strides
    (a transposed convolution's phase writes into every s-th position of its output this way,
    phase_gradient.input_gradient_by_phases).
    Returns the result as (N, G, O_g, *output_size) either way.
    """
    shape = (geo.batch, geo.out_channels, *geo.output_size)
    if out is None:
        out = np.empty(shape, dtype=x.dtype)  # (N, C_out, *out)
    assert out.shape == shape and out.dtype == x.dtype, f"out must be {shape} {x.dtype}, got {out.shape} {out.dtype}"
    if out.size == 0:
        return out.reshape(geo.batch, geo.groups, geo.out_channels_per_group, *geo.output_size)
    if geo.in_channels_per_group == 0:  # every sum is empty; the kernel would divide by C_in/G
        out[...] = 0
        return out.reshape(geo.batch, geo.groups, geo.out_channels_per_group, *geo.output_size)
    already_padded = x.shape[2:] == geo.padded_size
    assert already_padded or geo.padding_mode == "zeros", "only zero padding is done in the kernel"
    pads = (0, 0, 0) if already_padded else tuple(before for before, _ in geo.pad_pairs)
    width_out, s_w = geo.output_size[2], geo.stride[2]
    # rows as short as the 2-d kernel maps element by element stay unpaired here too
    pair = pairs_rows(geo) and not (by_element_map(x.shape[4], s_w) or by_element_map(width_out, 1))
    rows = row_split(geo, pair)
    split = (geo.stride[0], rows.stride, s_w)
    depth_q, _, width_q = phase_shape(geo.padded_size, split)
    phase_dims = (depth_q, rows.phase_rows, width_q)  # (D_q, H_q, W_q)
    plane = phase_dims[1] * phase_dims[2]
    # numba does not bounds-check: the furthest tap's slice of the last depth slice must lie in its phase.
    reach = [
        (k - 1) * d // s
        for k, d, s in zip((geo.kernel[0], rows.tap_rows, geo.kernel[2]), geo.dilation, split, strict=True)
    ]
    last_start = (geo.output_size[0] - 1 + reach[0]) * plane + reach[1] * phase_dims[2] + reach[2]
    length = (rows.plane_rows - 1) * phase_dims[2] + width_out
    assert last_start + length <= math.prod(phase_dims)
    threads = threads_for(out.size * math.prod(weight.shape[1:]))  # (multiply-adds)
    sizes = np.array([*pads, *geo.stride, *geo.dilation, *phase_dims, threads, pair], dtype=np.int64)
    # A contiguous out also goes in flat: its rows are then copied by offset (direct_conv3d's ``flat``).
    flat = out.reshape(-1) if out.flags.c_contiguous else np.empty(0, dtype=out.dtype)
    kernel_for("direct_conv3d", threads)(np.ascontiguousarray(x), np.ascontiguousarray(weight), sizes, out, flat)
    return out.reshape(geo.batch, geo.groups, geo.out_channels_per_group, *geo.output_size)
