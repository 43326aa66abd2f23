"""The numba kernels behind algorithms/compiled.py (see there for the why), each in a parallel and
a serial version (the end of this file); imports numba.

Kept in its own module so that importing reference_impl never imports numba: compiled.py
imports this on the first "compiled" call (and picks numba's threading layer before that).
numba caches the machine code in __pycache__/compiled_kernel.*.nbi / *.nbc next to this file.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

TAPS_PER_PASS = 8  # taps added per pass over the accumulator, across kernel rows and channels (_add_taps)
# Output channels of one group whose planes one pass fills together (_add_taps_4): each input value
# loaded feeds four multiply-adds instead of one. 1 would be _add_taps alone; 4 with 8 taps a pass
# keeps the four accumulators, eight input streams and 32 weights in the 32 vector registers.
OUTPUTS_PER_PASS = 4
# _add_taps_4 walks the plane in chunks of this many elements: four accumulators of a 2048-long
# plane (32 KiB) no longer fit L1 beside the input streams, and ran at 20 GMAC/s against 36 chunked.
CHUNK = 512
# The accumulator's length is rounded up to a multiple of this many elements: LLVM's vectorised
# loop takes 64 float32 per iteration (16 lanes of zmm, unrolled 4 times) and leaves the rest to a
# scalar loop, which on short planes was most of the work (ResNeXt stage 4's 7x7 outputs: a wide
# plane of 55, wholly scalar; docs/performance.md, round 5). The extra positions are junk, like the
# wide plane's own junk columns, never copied out; the buffers they read are that much longer.
VECTOR_BLOCK = 64


@numba.njit(cache=True)
def _rounded(length: int) -> int:
    """``length`` rounded up to a multiple of VECTOR_BLOCK."""
    return -(-length // VECTOR_BLOCK) * VECTOR_BLOCK


@numba.njit(cache=True, inline="always")
def _aligned_zeros(length: int, like: np.ndarray) -> np.ndarray:
    """A zeroed 1-d array of ``length`` elements of ``like``'s dtype whose first element lies on a
    64-byte boundary (one cache line, one zmm vector). numba's own allocations are 32-byte aligned:
    in some processes the accumulators then straddled cache lines on every vector store, and
    EfficientNet's layer took 0.9 ms instead of 0.6 (docs/performance.md, round 7)."""
    raw = np.zeros(length + 64, dtype=like.dtype)
    skip = ((-raw.ctypes.data) % 64) // raw.itemsize
    return raw[skip : skip + length]


# Element loops below go through 1-d row views indexed from 0, never through a computed index into
# the 4-d or 5-d array: numba adds a negative-index wraparound check to every index it cannot prove
# non-negative, and that check alone kept LLVM from vectorising the copies (a plane copy inside
# prange: 0.88 ms with x[i*size + j], 0.09 ms with views; docs/performance.md, round 5). Strides 1
# and 2 get loops with the step as a constant (a runtime step makes LLVM emit gathers); a stride-2
# store is still a scatter, which is why direct_conv_placed writes column phases in pairs. Row
# copies and splits called once a row take flat offsets instead of views (_copy_contiguous,
# _deinterleave_block): each view takes and drops a reference to the array's memory, two atomic
# instructions, which per row cost more than the row (round 10).


def _flat_arrays_and_offsets(arrays: tuple[types.Type, ...], offsets: tuple[types.Type, ...]) -> bool:
    """Whether ``arrays`` are 1-d, C-contiguous and of one dtype, and ``offsets`` integers: the one
    signature the offset-taking intrinsics below accept (anything else is a typing error)."""
    return (
        all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" for a in arrays)
        and len({a.dtype for a in arrays}) == 1
        and all(isinstance(i, types.Integer) for i in offsets)
    )


def _data(context: object, builder: ir.IRBuilder, kind: types.Array, value: ir.Value) -> ir.Value:
    """The pointer to element 0 of the numba array ``value`` of type ``kind``, in codegen."""
    return context.make_array(kind)(context, builder, value).data  # type: ignore[attr-defined]


@intrinsic
def _copy_contiguous(
    typingctx: object,
    target: types.Type,
    target_start: types.Type,
    source: types.Type,
    source_start: types.Type,
    count: types.Type,
) -> object:
    """target[target_start + v] = source[source_start + v] for v < ``count``, as one memcpy (LLVM's
    llvm.memcpy, which calls the C library's): both 1-d, C-contiguous, of one dtype, not overlapping,
    every index in range (not checked). A loop vectorises only past 64 elements (LLVM's vector body:
    16 lanes, unrolled four times), so the kernels' row copies of 7-56 elements ran one element at a
    time: EfficientNet's layer 0.55 -> 0.48 ms with its stride-2 rows copied this way
    (docs/performance.md, round 8). A plain loop of 16 with every load before the first store
    vectorised on its own but ran slower in the kernels.

    Offsets, not slices (round 10): each slice of a numba array takes and drops a reference to its
    memory, an atomic increment and decrement; with two slices a row, 7% of EfficientNet's layer
    went to those two instructions."""
    if not _flat_arrays_and_offsets((target, source), (target_start, source_start, count)):
        return None  # no such signature: numba reports a typing error, at compile time

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        target_data = _data(context, builder, signature.args[0], args[0])
        source_data = _data(context, builder, signature.args[2], args[2])
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(target_data.type.pointee))
        cgutils.raw_memcpy(
            builder, builder.gep(target_data, [args[1]]), builder.gep(source_data, [args[3]]), args[4], itemsize
        )
        return context.get_dummy_value()

    return types.void(target, target_start, source, source_start, count), codegen


# Elements per _deinterleave_block: one zmm vector of float32 in each half (float64 takes two).
DEINTERLEAVE_BLOCK = 16


@intrinsic
def _deinterleave_block(
    typingctx: object,
    flat: types.Type,
    even_start: types.Type,
    odd_start: types.Type,
    source: types.Type,
    source_start: types.Type,
) -> object:
    """flat[even_start + v] = source[source_start + 2v], flat[odd_start + v] = source[source_start +
    2v + 1] for v < DEINTERLEAVE_BLOCK: one vector load of 2*DEINTERLEAVE_BLOCK elements and two
    shuffles, in LLVM's own vector instructions (numba has no way to say "shuffle"). ``flat`` and
    ``source`` 1-d, C-contiguous, of one dtype, not overlapping; every index in range (not checked).

    Offsets, not slices: each slice of a numba array takes and drops a reference to its memory, an
    atomic increment and decrement, and per block that cost more than the block (EfficientNet's
    layer 0.49 -> 0.76 ms with slices, most of it in those two instructions; docs/performance.md,
    round 10). A loop doing this per row runs scalar (LLVM's vector body takes 64 pairs a turn, a row
    has 14-56).
    """
    if not _flat_arrays_and_offsets((flat, source), (even_start, odd_start, source_start)):
        return None  # no such signature: numba reports a typing error, at compile time

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        flat_data = _data(context, builder, signature.args[0], args[0])
        source_data = _data(context, builder, signature.args[3], args[3])
        pairs = ir.VectorType(flat_data.type.pointee, 2 * DEINTERLEAVE_BLOCK)
        half = ir.VectorType(flat_data.type.pointee, DEINTERLEAVE_BLOCK)
        source_at = builder.gep(source_data, [args[4]])
        both = builder.load(builder.bitcast(source_at, pairs.as_pointer()), align=1)
        for part, start in enumerate((args[1], args[2])):
            picks = ir.Constant(
                ir.VectorType(ir.IntType(32), DEINTERLEAVE_BLOCK), [2 * v + part for v in range(DEINTERLEAVE_BLOCK)]
            )
            values = builder.shuffle_vector(both, ir.Constant(pairs, ir.Undefined), picks)
            target = builder.bitcast(builder.gep(flat_data, [start]), half.as_pointer())
            builder.store(values, target, align=1)
        return context.get_dummy_value()

    return types.void(flat, even_start, odd_start, source, source_start), codegen


@numba.njit(cache=True, inline="always")  # once per input plane (2-d) or depth layer (3-d)
def _split_plane(
    flat: np.ndarray,
    start: int,
    phase_pitch: int,
    image: np.ndarray,
    image_start: int,
    height: int,
    width: int,
    geometry: tuple[int, int, int, int, int, int],
    scratch: np.ndarray,
) -> None:
    """The plane image[image_start : image_start + H*W] (rows W long), zero-padded by (pad_top,
    pad_left), split into its s_h*s_w phases: phase (a, b) at flat[start + (a*s_w + b)*phase_pitch:],
    rows W_q apart, where ``geometry`` = (pad_top, pad_left, s_h, s_w, H_q, W_q). Input row r is row
    u of phases (a, :), (u, a) = divmod(r + pad_top, s_h); phase b holds its padded columns v*s_w + b.

    Rows in order, so the input is read front to back. The stride is tested once, outside the loop
    over rows, and each stride has its own row loop (a per-row routine holding all three cases ran
    every copy scalar: docs/performance.md, round 7). Nothing but intrinsics is called in the stride 1
    and 2 loops, and with offsets, not slices: an inlined call, or a slice, per row takes and drops
    references to the arrays, atomic operations that cost a third of EfficientNet's layer when
    round 10 first moved its rows into this loop.

    s = 1: one memcpy a row (:func:`_copy_contiguous`). s = 2: each row straight into its two phases,
    :func:`_deinterleave_block` after block (the last block ending at the row's end, overlapping
    the one before: it writes the same values again). Until round 10 an even width deinterleaved the
    whole plane into a scratch plane first, then copied its rows into place by memcpy: a 56x56 plane
    of EfficientNet's 0.45 us that way, 0.23 this way. Rows of fewer than 16 pairs (only the 3-d
    kernel's: the 2-d one maps those, compiled.by_element_map) go element by element. s > 2:
    ``scratch`` (length s*W_q, zero outside the row's place) holds the padded row: one contiguous
    copy, then one pass that reads it in order and writes every phase.
    """
    pad_top, pad_left, stride_h, stride_w, _, phase_width = geometry
    row_phase_pitch = stride_w * phase_pitch  # from phases (a, :) to (a + 1, :)
    u, a = divmod(pad_top, stride_h)  # where input row 0 lands, then one row phase further per row
    if stride_w == 1:
        for r in range(height):
            row_start = start + a * row_phase_pitch + u * phase_width
            _copy_contiguous(flat, row_start + pad_left, image, image_start + r * width, width)
            a += 1
            if a == stride_h:
                u, a = u + 1, 0
    elif stride_w == 2:
        # element 2v lands at padded 2v + pad_left: phase pad_left % 2, index v + pad_left // 2;
        # element 2v + 1 in the other phase, at v + (pad_left + 1) // 2
        half = width // 2
        first_phase = pad_left % 2
        first_offset = first_phase * phase_pitch + pad_left // 2
        second_offset = (1 - first_phase) * phase_pitch + (pad_left + 1) // 2
        block = DEINTERLEAVE_BLOCK
        for r in range(height):
            row_start = start + a * row_phase_pitch + u * phase_width
            first, second, source = row_start + first_offset, row_start + second_offset, image_start + r * width
            if half < block:
                row = image[source : source + width]
                evens, odds = flat[first : first + half], flat[second : second + half]
                for v in range(half):
                    evens[v] = row[2 * v]
                    odds[v] = row[2 * v + 1]
            else:
                for v0 in range(0, half - block, block):
                    _deinterleave_block(flat, first + v0, second + v0, image, source + 2 * v0)
                v0 = half - block
                _deinterleave_block(flat, first + v0, second + v0, image, source + 2 * v0)
            if width % 2:
                flat[first + half] = image[source + width - 1]
            a += 1
            if a == stride_h:
                u, a = u + 1, 0
    else:
        phase_count = scratch.shape[0] // stride_w  # W_q
        interior = scratch[pad_left : pad_left + width]
        for r in range(height):
            row = image[image_start + r * width : image_start + (r + 1) * width]
            for v in range(width):
                interior[v] = row[v]
            row_start = start + a * row_phase_pitch + u * phase_width
            for b in range(stride_w):
                target = flat[row_start + b * phase_pitch : row_start + b * phase_pitch + phase_count]
                for v in range(phase_count):
                    target[v] = scratch[v * stride_w + b]
            a += 1
            if a == stride_h:
                u, a = u + 1, 0


@numba.njit(cache=True, inline="always")  # called once per row: a call costs more than a short row's copy
def _scatter_row(dst: np.ndarray, src: np.ndarray, step: int) -> None:
    """dst[v*step] = src[v] for every v < len(src)."""
    if step == 1:
        for v in range(src.shape[0]):
            dst[v] = src[v]
    elif step == 2:
        for v in range(src.shape[0]):
            dst[2 * v] = src[v]
    else:
        for v in range(src.shape[0]):
            dst[v * step] = src[v]


@numba.njit(cache=True)
def _split_map(height: int, width: int, geometry: tuple[int, int, int, int, int, int], phase_pitch: int) -> np.ndarray:
    """Where each element of an (H, W) input plane lands in its phases, as :func:`_split_plane`
    places it (phase (a, b) at (a*s_w + b)*phase_pitch, rows W_q apart): map[r*W + v], relative to
    the plane's start. Every element lands inside its phase: H_q = ceil(padded H / s_h), likewise W_q."""
    pad_top, pad_left, stride_h, stride_w, _, phase_width = geometry
    where = np.empty(height * width, dtype=np.int64)
    for r in range(height):
        u, a = divmod(r + pad_top, stride_h)
        for v in range(width):
            w, b = divmod(v + pad_left, stride_w)
            where[r * width + v] = (a * stride_w + b) * phase_pitch + u * phase_width + w
    return where


@numba.njit(cache=True, inline="always")  # once per plane
def _scatter_plane(flat: np.ndarray, start: int, image: np.ndarray, where: np.ndarray) -> None:
    """flat[start + where[i]] = image[i] for every i: :func:`_split_plane` for planes whose phase
    rows are shorter than one vector (SHORT_ROW), element by element through a map from
    :func:`_split_map`, instead of a row copy of a few elements each (docs/performance.md, round 8)."""
    target = flat[start:]
    for i in range(image.shape[0]):
        target[where[i]] = image[i]


@numba.njit(cache=True, inline="always")  # once per output plane
def _gather_plane(plane: np.ndarray, acc: np.ndarray, where: np.ndarray) -> None:
    """plane[k] = acc[where[k]] for every k: the crop of a wide plane's junk columns for output rows
    shorter than one vector, through the map k = i*W_out + j -> i*W_q + j."""
    for k in range(plane.shape[0]):
        plane[k] = acc[where[k]]


@numba.njit(cache=True)
def _add_taps(
    acc: np.ndarray, flat: np.ndarray, starts: np.ndarray, weights: np.ndarray, offset: int, accumulate: bool
) -> None:
    """acc[j] = the sum over every tap t, in order, of weights[t] * flat[offset + starts[t] + j], for
    every j < len(acc), from +0.0: whatever acc held is never read. With ``accumulate``, added to
    what acc holds instead, the sum going on in the same order (:func:`_add_row_pair_taps`).

    The taps go in passes of up to TAPS_PER_PASS (then 4, 2, 1 for the rest): the accumulator is
    loaded and stored once per pass, not once per tap, and each pass is one loop over contiguous
    slices that LLVM vectorises. Nine taps left are one pass: every odd square kernel (3x3, 5x5,
    7x7: 8k + 1 taps) would otherwise end with a pass of one tap, an accumulator's load and store
    for one multiply-add (MobileNetV2's depthwise 3x3: its taps 0.33-0.40 -> 0.32 ms on one thread;
    docs/performance.md, round 7). Within a pass the sum keeps the loop version's order,
    ((acc + w0*x0) + w1*x1) + ..., each product rounded before its add (no fastmath, no FMA).

    The first pass starts each sum from +0.0 instead of reading acc, the sum a zeroed acc gives,
    bit for bit (+0.0 + w0*x0, so a -0.0 product still becomes +0.0): no zeroing pass, and
    one load less per element (a 3x3 plane's single pass, 0.29 -> 0.23 ms for 288 planes of 56x56;
    docs/performance.md, round 10). The test is per pass, outside the loop: LLVM takes it out.
    """
    length = acc.shape[0]
    taps = starts.shape[0]
    zero = acc.dtype.type(0)
    t = 0
    while t < taps:
        left = taps - t
        from_zero = t == 0 and not accumulate  # the first pass starts each sum from +0.0, not from acc
        s0 = offset + starts[t]
        x0, w0 = flat[s0 : s0 + length], weights[t]
        if left == 1:
            for j in range(length):
                acc[j] = (zero if from_zero else acc[j]) + w0 * x0[j]
            t += 1
            continue
        s1 = offset + starts[t + 1]
        x1, w1 = flat[s1 : s1 + length], weights[t + 1]
        if left < 4:
            for j in range(length):
                acc[j] = ((zero if from_zero else acc[j]) + w0 * x0[j]) + w1 * x1[j]
            t += 2
            continue
        s2, s3 = offset + starts[t + 2], offset + starts[t + 3]
        x2, w2 = flat[s2 : s2 + length], weights[t + 2]
        x3, w3 = flat[s3 : s3 + length], weights[t + 3]
        if left < TAPS_PER_PASS:
            for j in range(length):
                acc[j] = ((((zero if from_zero else acc[j]) + w0 * x0[j]) + w1 * x1[j]) + w2 * x2[j]) + w3 * x3[j]
            t += 4
            continue
        s4, s5, s6, s7 = offset + starts[t + 4], offset + starts[t + 5], offset + starts[t + 6], offset + starts[t + 7]
        x4, w4 = flat[s4 : s4 + length], weights[t + 4]
        x5, w5 = flat[s5 : s5 + length], weights[t + 5]
        x6, w6 = flat[s6 : s6 + length], weights[t + 6]
        x7, w7 = flat[s7 : s7 + length], weights[t + 7]
        if left == TAPS_PER_PASS + 1:  # the last nine in one pass, not eight and then one alone
            s8 = offset + starts[t + 8]
            x8, w8 = flat[s8 : s8 + length], weights[t + 8]
            for j in range(length):
                a0 = zero if from_zero else acc[j]
                acc[j] = (
                    (
                        ((((((a0 + w0 * x0[j]) + w1 * x1[j]) + w2 * x2[j]) + w3 * x3[j]) + w4 * x4[j]) + w5 * x5[j])
                        + w6 * x6[j]
                    )
                    + w7 * x7[j]
                ) + w8 * x8[j]
            t += TAPS_PER_PASS + 1
            continue
        for j in range(length):
            a0 = zero if from_zero else acc[j]
            acc[j] = (
                ((((((a0 + w0 * x0[j]) + w1 * x1[j]) + w2 * x2[j]) + w3 * x3[j]) + w4 * x4[j]) + w5 * x5[j])
                + w6 * x6[j]
            ) + w7 * x7[j]
        t += TAPS_PER_PASS


@numba.njit(cache=True)
def _add_taps_4(
    acc_0: np.ndarray,
    acc_1: np.ndarray,
    acc_2: np.ndarray,
    acc_3: np.ndarray,
    flat: np.ndarray,
    starts: np.ndarray,
    weights_0: np.ndarray,
    weights_1: np.ndarray,
    weights_2: np.ndarray,
    weights_3: np.ndarray,
    offset: int,
) -> None:
    """:func:`_add_taps` for four output channels at once: acc_b[j] = the sum of weights_b[t] *
    flat[offset + starts[t] + j] over every tap t in order, from +0.0, b < 4. The same taps, so each
    value read from ``flat`` is used four times while in a register (41 GMAC/s against 23 for four _add_taps calls on a
    plane of 448 and 288 taps, one core; docs/performance.md, round 6). Each accumulator still
    gets its taps one after another, in order, each product rounded before its add: the sums, and
    so the results, are bit for bit those of _add_taps.
    """
    length = acc_0.shape[0]
    taps = starts.shape[0]
    zero = acc_0.dtype.type(0)
    for j0 in range(0, length, CHUNK):  # one L1-sized chunk of the four planes at a time
        n = min(CHUNK, length - j0)
        a0, a1, a2, a3 = acc_0[j0 : j0 + n], acc_1[j0 : j0 + n], acc_2[j0 : j0 + n], acc_3[j0 : j0 + n]
        t = 0
        while t < taps:
            from_zero = t == 0  # see _add_taps
            if taps - t >= TAPS_PER_PASS:
                base = offset + j0
                s0, s1, s2, s3 = starts[t] + base, starts[t + 1] + base, starts[t + 2] + base, starts[t + 3] + base
                s4, s5, s6, s7 = starts[t + 4] + base, starts[t + 5] + base, starts[t + 6] + base, starts[t + 7] + base
                x0, x1, x2, x3 = flat[s0 : s0 + n], flat[s1 : s1 + n], flat[s2 : s2 + n], flat[s3 : s3 + n]
                x4, x5, x6, x7 = flat[s4 : s4 + n], flat[s5 : s5 + n], flat[s6 : s6 + n], flat[s7 : s7 + n]
                # the weights as scalars: read inside the loop, they kept it from vectorising
                p0, p1, p2, p3 = weights_0[t : t + 8], weights_1[t : t + 8], weights_2[t : t + 8], weights_3[t : t + 8]
                w00, w01, w02, w03 = p0[0], p0[1], p0[2], p0[3]
                w04, w05, w06, w07 = p0[4], p0[5], p0[6], p0[7]
                w10, w11, w12, w13 = p1[0], p1[1], p1[2], p1[3]
                w14, w15, w16, w17 = p1[4], p1[5], p1[6], p1[7]
                w20, w21, w22, w23 = p2[0], p2[1], p2[2], p2[3]
                w24, w25, w26, w27 = p2[4], p2[5], p2[6], p2[7]
                w30, w31, w32, w33 = p3[0], p3[1], p3[2], p3[3]
                w34, w35, w36, w37 = p3[4], p3[5], p3[6], p3[7]
                for j in range(n):
                    v0, v1, v2, v3, v4, v5, v6, v7 = x0[j], x1[j], x2[j], x3[j], x4[j], x5[j], x6[j], x7[j]
                    b0, b1 = (zero, zero) if from_zero else (a0[j], a1[j])  # the sums so far
                    b2, b3 = (zero, zero) if from_zero else (a2[j], a3[j])
                    a0[j] = (
                        (((((b0 + w00 * v0 + w01 * v1) + w02 * v2) + w03 * v3) + w04 * v4) + w05 * v5) + w06 * v6
                    ) + w07 * v7
                    a1[j] = (
                        (((((b1 + w10 * v0 + w11 * v1) + w12 * v2) + w13 * v3) + w14 * v4) + w15 * v5) + w16 * v6
                    ) + w17 * v7
                    a2[j] = (
                        (((((b2 + w20 * v0 + w21 * v1) + w22 * v2) + w23 * v3) + w24 * v4) + w25 * v5) + w26 * v6
                    ) + w27 * v7
                    a3[j] = (
                        (((((b3 + w30 * v0 + w31 * v1) + w32 * v2) + w33 * v3) + w34 * v4) + w35 * v5) + w36 * v6
                    ) + w37 * v7
                t += TAPS_PER_PASS
            else:  # the last taps, one at a time
                s0 = starts[t] + offset + j0
                x0 = flat[s0 : s0 + n]
                w0, w1, w2, w3 = weights_0[t], weights_1[t], weights_2[t], weights_3[t]
                for j in range(n):
                    v0 = x0[j]
                    a0[j] = (zero if from_zero else a0[j]) + w0 * v0
                    a1[j] = (zero if from_zero else a1[j]) + w1 * v0
                    a2[j] = (zero if from_zero else a2[j]) + w2 * v0
                    a3[j] = (zero if from_zero else a3[j]) + w3 * v0
                t += 1


@numba.njit(cache=True, inline="always")
def _add_taps_to_planes(
    accs: np.ndarray, size: int, count: int, flat: np.ndarray, starts: np.ndarray, weights: np.ndarray, offset: int
) -> None:
    """Planes b < ``count`` of ``accs`` (flat, planes ``len(accs) // OUTPUTS_PER_PASS`` apart, each
    ``size`` long) set to the sum of the taps with weights[b], from zero: :func:`_add_taps_4` for a
    full block of four, :func:`_add_taps` one plane at a time for fewer (both start from +0.0: no
    zeroing pass first). There is at least one tap: a layer without input channels never reaches a kernel
    (compiled.conv_compiled returns its empty sums)."""
    pitch = accs.shape[0] // OUTPUTS_PER_PASS
    if count == OUTPUTS_PER_PASS:
        _add_taps_4(
            accs[:size],
            accs[pitch : pitch + size],
            accs[2 * pitch : 2 * pitch + size],
            accs[3 * pitch : 3 * pitch + size],
            flat,
            starts,
            weights[0],
            weights[1],
            weights[2],
            weights[3],
            offset,
        )
    else:
        for b in range(count):
            _add_taps(accs[b * pitch : b * pitch + size], flat, starts, weights[b], offset, False)


@numba.njit(cache=True)
def _add_taps_2(
    acc_even: np.ndarray,
    acc_odd: np.ndarray,
    flat: np.ndarray,
    starts: np.ndarray,
    weights_even: np.ndarray,
    weights_odd: np.ndarray,
    accumulate: bool,
) -> None:
    """Two sums over the same input slices: acc_even[j] += weights_even[t] * flat[starts[t] + j] and
    acc_odd[j] likewise with weights_odd, over every tap t in order, each product rounded before its
    add, in passes of up to TAPS_PER_PASS like :func:`_add_taps`. acc_even goes on from what it holds;
    acc_odd starts from +0.0 (its first taps are these) unless ``accumulate`` (a later depth tap of
    the 3-d kernel). Each value read from ``flat`` feeds both sums: the loads that bound a depthwise
    pass (docs/performance.md, round 11) are halved where two output rows share an input row
    (:func:`_add_row_pair_taps`)."""
    length = acc_even.shape[0]
    taps = starts.shape[0]
    zero = acc_odd.dtype.type(0)
    t = 0
    while t < taps:
        fresh = t == 0 and not accumulate  # acc_odd's first pass: from +0.0
        left = taps - t
        s0 = starts[t]
        x0, e0, o0 = flat[s0 : s0 + length], weights_even[t], weights_odd[t]
        if left == 1:
            for j in range(length):
                v0 = x0[j]
                acc_even[j] = acc_even[j] + e0 * v0
                acc_odd[j] = (zero if fresh else acc_odd[j]) + o0 * v0
            t += 1
            continue
        s1 = starts[t + 1]
        x1, e1, o1 = flat[s1 : s1 + length], weights_even[t + 1], weights_odd[t + 1]
        if left < 4:
            for j in range(length):
                v0, v1 = x0[j], x1[j]
                acc_even[j] = (acc_even[j] + e0 * v0) + e1 * v1
                acc_odd[j] = ((zero if fresh else acc_odd[j]) + o0 * v0) + o1 * v1
            t += 2
            continue
        s2, s3 = starts[t + 2], starts[t + 3]
        x2, e2, o2 = flat[s2 : s2 + length], weights_even[t + 2], weights_odd[t + 2]
        x3, e3, o3 = flat[s3 : s3 + length], weights_even[t + 3], weights_odd[t + 3]
        if left < TAPS_PER_PASS:
            for j in range(length):
                v0, v1, v2, v3 = x0[j], x1[j], x2[j], x3[j]
                acc_even[j] = (((acc_even[j] + e0 * v0) + e1 * v1) + e2 * v2) + e3 * v3
                acc_odd[j] = ((((zero if fresh else acc_odd[j]) + o0 * v0) + o1 * v1) + o2 * v2) + o3 * v3
            t += 4
            continue
        s4, s5, s6, s7 = starts[t + 4], starts[t + 5], starts[t + 6], starts[t + 7]
        x4, e4, o4 = flat[s4 : s4 + length], weights_even[t + 4], weights_odd[t + 4]
        x5, e5, o5 = flat[s5 : s5 + length], weights_even[t + 5], weights_odd[t + 5]
        x6, e6, o6 = flat[s6 : s6 + length], weights_even[t + 6], weights_odd[t + 6]
        x7, e7, o7 = flat[s7 : s7 + length], weights_even[t + 7], weights_odd[t + 7]
        for j in range(length):
            v0, v1, v2, v3, v4, v5, v6, v7 = x0[j], x1[j], x2[j], x3[j], x4[j], x5[j], x6[j], x7[j]
            a = acc_even[j]
            acc_even[j] = (
                ((((((a + e0 * v0) + e1 * v1) + e2 * v2) + e3 * v3) + e4 * v4) + e5 * v5) + e6 * v6
            ) + e7 * v7
            b = zero if fresh else acc_odd[j]
            acc_odd[j] = (((((((b + o0 * v0) + o1 * v1) + o2 * v2) + o3 * v3) + o4 * v4) + o5 * v5) + o6 * v6) + o7 * v7
        t += TAPS_PER_PASS


@numba.njit(cache=True)
def _add_taps_pair_3x3(
    acc_even: np.ndarray, acc_odd: np.ndarray, flat: np.ndarray, starts: np.ndarray, w: np.ndarray, accumulate: bool
) -> None:
    """:func:`_add_row_pair_taps` for a 3x3 kernel at shift 1, in one pass: the 12 slices of the four
    merged rows, (k, q) order, the even plane's taps the first nine, the odd plane's the last nine,
    both from +0.0 in the loops' order, or with ``accumulate`` from what the planes hold (the 3-d
    kernel's later depth taps). One load of each slice, two stores, where three runs made four
    passes over each plane (MobileNetV2's 3x3 1.02-1.27x the unpaired kernel that way)."""
    length = acc_even.shape[0]
    zero = acc_even.dtype.type(0)
    s = starts
    x0, x1, x2 = flat[s[0] : s[0] + length], flat[s[1] : s[1] + length], flat[s[2] : s[2] + length]
    x3, x4, x5 = flat[s[3] : s[3] + length], flat[s[4] : s[4] + length], flat[s[5] : s[5] + length]
    x6, x7, x8 = flat[s[6] : s[6] + length], flat[s[7] : s[7] + length], flat[s[8] : s[8] + length]
    x9, x10, x11 = flat[s[9] : s[9] + length], flat[s[10] : s[10] + length], flat[s[11] : s[11] + length]
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]
    for j in range(length):
        v0, v1, v2, v3, v4, v5 = x0[j], x1[j], x2[j], x3[j], x4[j], x5[j]
        v6, v7, v8, v9, v10, v11 = x6[j], x7[j], x8[j], x9[j], x10[j], x11[j]
        a, b = (acc_even[j], acc_odd[j]) if accumulate else (zero, zero)  # the test leaves the loop
        acc_even[j] = (
            (((((((a + w0 * v0) + w1 * v1) + w2 * v2) + w3 * v3) + w4 * v4) + w5 * v5) + w6 * v6) + w7 * v7
        ) + w8 * v8
        acc_odd[j] = (
            (((((((b + w0 * v3) + w1 * v4) + w2 * v5) + w3 * v6) + w4 * v7) + w5 * v8) + w6 * v9) + w7 * v10
        ) + w8 * v11


@numba.njit(cache=True, inline="always")
def _add_row_pair_taps(
    acc_even: np.ndarray,
    acc_odd: np.ndarray,
    flat: np.ndarray,
    starts: np.ndarray,
    weights: np.ndarray,
    kernel_h: int,
    kernel_w: int,
    shift: int,
    accumulate: bool,
) -> None:
    """One depthwise output plane as two: its even output rows (acc_even) and its odd ones (acc_odd),
    each a wide plane of its own, from input phases split by twice the row stride (compiled.pairs_rows).

    Output row 2m + 1 reads the input rows that row 2m reads ``shift`` = s_h / d_h kernel rows
    further on, so kernel row p of the odd rows and kernel row p + shift of the even rows read one
    and the same slice. ``starts`` holds the kH + shift merged rows' slices, (k, q) order, k < kH + shift;
    merged row k feeds kernel row k of the even plane (k < kH) and kernel row k - shift of the odd
    one (k >= shift). In three runs, each plane's taps in the loops' (p, q) order, so the sums are
    the loops' bit for bit: rows k < shift into acc_even alone, from +0.0 (unless ``accumulate``);
    the shared rows into both
    (:func:`_add_taps_2`); rows k >= kH into acc_odd alone, going on from its sum. ConvNeXt's 7x7
    reads 56 slices per pair of output vectors instead of 98. ``accumulate``: both planes go on from
    what they hold (the 3-d kernel's depth taps after the first, one call each)."""
    if kernel_h == 3 and kernel_w == 3 and shift == 1:
        _add_taps_pair_3x3(acc_even, acc_odd, flat, starts, weights, accumulate)
        return
    head = shift * kernel_w  # merged rows k < shift: the even plane's alone
    shared = kernel_h * kernel_w  # merged rows k < kH: the end of the even plane's
    _add_taps(acc_even, flat, starts[:head], weights[:head], 0, accumulate)
    _add_taps_2(
        acc_even, acc_odd, flat, starts[head:shared], weights[head:shared], weights[: shared - head], accumulate
    )
    _add_taps(acc_odd, flat, starts[shared:], weights[shared - head :], 0, True)


@numba.njit(cache=True, inline="always")  # once per output row
def _row_start(b: int, row: int, pair: int, pitch: int, phase_width: int) -> int:
    """Where output row ``row`` of output channel ``b`` of a pass starts in the accumulators (planes
    ``pitch`` apart, rows ``phase_width`` apart). ``pair`` 0: one wide plane per channel, row by row.
    ``pair`` 1 (row pairs, :func:`_add_row_pair_taps`): planes 2b and 2b + 1 hold the channel's even
    and odd rows, so row r is row r >> 1 of plane 2b + (r & 1). Shifts and masks, not a division
    per row: one crop loop for both layouts."""
    return ((b << pair) + (row & pair)) * pitch + (row >> pair) * phase_width


@numba.njit(cache=True)
def _phase_span(pad_before: int, phase: int, stride: int, size: int, phase_length: int) -> tuple[int, int]:
    """The range [first, end) of phase positions u whose padded position u*stride + phase holds
    an input element (0 <= u*stride + phase - pad_before < size); the rest is zero padding.
    Multiplications only: a division per element (runtime stride) cost more than the copy."""
    first = max(0, -(-(pad_before - phase) // stride))  # ceil((pad - phase) / stride)
    end = min(phase_length, (size - 1 + pad_before - phase) // stride + 1)
    return first, max(first, end)


@numba.njit(cache=True, inline="always", fastmath=False)  # body of direct_conv and direct_conv_serial, below
def _direct_conv(x: np.ndarray, weight: np.ndarray, sizes: np.ndarray, out: np.ndarray) -> None:
    """x (N, C_in, H, W), weight (C_out, C_g, kH, kW) -> out (N, C_out, H_out, W_out), every element written.

    ``sizes`` (int64): pad_top, pad_left, stride_h, stride_w, dilation_h, dilation_w, phase_height,
    phase_width, threads, samples, split_by_map, crop_by_map, pair_rows (one array: each kernel is
    written twice below, parallel and serial).

    ``x`` is zero-padded by (pad_top, pad_left) here, on the fly (bottom/right padding is what
    lies past x in the zeroed phase buffer); pass an already padded x with zero pads for the
    other padding modes. Each phase is (H_q, W_q) = (phase_height, phase_width).

    ``threads``: numba's thread count (compiled.thread_count: read in Python, since a call to
    numba.get_num_threads in here would stop numba caching the machine code).

    ``samples``: how many samples one work item takes, their phases side by side, so that one wide
    plane spans them all (L = (B-1)*H_q*W_q + L_1): a 7x7 output is a plane of 55, too short for the
    vectorised loop to pay for a pass's set-up (ResNeXt stage 4: 8 samples per item, see
    compiled.samples_per_item).

    The work items go to numba's threads in equal chunks, one chunk per thread, each with its own
    buffers allocated and zeroed once, not once per item (that was 0.17 ms of EfficientNet's 0.8;
    docs/performance.md, round 6). The split never writes the zero padding, so its zeros last from
    item to item; an item with fewer samples than ``samples`` (the last) leaves the previous item's
    values past its own, read only into junk positions of the accumulator, never copied out.

    ``split_by_map``, ``crop_by_map`` (0 or 1, compiled.by_element_map): the split, and the crop,
    element by element through an index map made once per call (_split_map, _gather_plane) instead
    of row by row: for rows shorter than one vector, where a row copy of a few elements cost more
    per element than the map (ResNeXt stage 4's 14x14 planes: 0.18 -> 0.08 us a plane's split).

    ``pair_rows`` (0 or 1, compiled.pairs_rows; depthwise only, C_g = 1): each output plane as two
    wide planes, its even rows and its odd rows, whose taps share input slices
    (:func:`_add_row_pair_taps`). The input is then split by twice the row stride (2*s_h row phases,
    ``phase_height`` rows each), the even plane is a stride-2*s_h convolution's and the odd one the
    same ``shift`` = s_h / d_h kernel rows further down; the crop interleaves their rows again.
    """
    pad_top, pad_left, stride_h, stride_w, dilation_h, dilation_w = (
        sizes[0],
        sizes[1],
        sizes[2],
        sizes[3],
        sizes[4],
        sizes[5],
    )
    phase_height, phase_width, threads, samples = sizes[6], sizes[7], sizes[8], sizes[9]
    split_by_map, crop_by_map, pair_rows = sizes[10] != 0, sizes[11] != 0, sizes[12] != 0
    batch, in_channels, height, width = x.shape
    out_channels, channels_per_group, kernel_h, kernel_w = weight.shape
    groups = in_channels // channels_per_group
    out_per_group = out_channels // groups
    height_out, width_out = out.shape[2], out.shape[3]
    phase_size = phase_height * phase_width
    # the row stride the input is split by, and the kernel rows one plane's taps span: with
    # pair_rows, twice s_h and kH + shift merged rows (see _add_row_pair_taps)
    split_h = 2 * stride_h if pair_rows else stride_h
    shift = stride_h // dilation_h if pair_rows else 0
    rows_out = (height_out + 1) // 2 if pair_rows else height_out  # rows of one wide plane (the even one)
    pair = 1 if pair_rows else 0  # log2 of the wide planes per output channel, see _row_start
    length = (rows_out - 1) * phase_width + width_out  # one sample's wide plane, see phases.wide_length
    blocks = -(-batch // samples)
    items = blocks * groups
    block_size = samples * phase_size  # one phase of an item's samples, side by side
    total = channels_per_group * split_h * stride_w * block_size  # (C_g, split_h, s_w, B*H_q*W_q)
    # Tap (c, p, q) reads one flat slice of one phase, length L (see phases.py): padded row
    # i*s_h + p*d_h is row i + p*d_h//s_h of row-phase (p*d_h) % s_h, and likewise for columns
    # (with pair_rows, s_h is split_h and p runs over the merged rows).
    tap_rows = kernel_h + shift
    starts = np.empty(channels_per_group * tap_rows * kernel_w, dtype=np.int64)  # (C_g*rows*kW,), (c, p, q) order
    for c in range(channels_per_group):
        for p in range(tap_rows):
            for q in range(kernel_w):
                phase = (c * split_h + (p * dilation_h) % split_h) * stride_w + (q * dilation_w) % stride_w
                starts[(c * tap_rows + p) * kernel_w + q] = (
                    phase * block_size + (p * dilation_h) // split_h * phase_width + (q * dilation_w) // stride_w
                )
    weights = weight.reshape((out_channels, channels_per_group * kernel_h * kernel_w))  # (C_out, taps), a view
    geometry = (pad_top, pad_left, split_h, stride_w, phase_height, phase_width)  # what _split_plane needs
    # the element maps, shared by the threads (read only): input element -> phase position, output -> wide position
    split_map = _split_map(height, width, geometry, block_size) if split_by_map else np.empty(0, dtype=np.int64)
    crop_map = np.empty(height_out * width_out if crop_by_map else 0, dtype=np.int64)  # (H_out*W_out,)
    for k in range(crop_map.shape[0]):
        crop_map[k] = k // width_out * phase_width + k % width_out
    chunks = max(1, min(items, threads))
    for chunk in numba.prange(chunks):
        # One buffer per thread, zeroed once: every item writes the same interior positions and
        # never the padding, so the zeros survive from item to item.
        # the phases (C_g, s_h, s_w, B*H_q*W_q), flat, then reading room
        buffer = _aligned_zeros(total + VECTOR_BLOCK, out)
        scratch = np.zeros(stride_w * phase_width, dtype=out.dtype)  # one padded input row, see _split_plane
        pitch = _rounded((samples - 1) * phase_size + length)  # one output channel's accumulator
        planes = 2 * OUTPUTS_PER_PASS if pair_rows else OUTPUTS_PER_PASS  # pair_rows: even, odd, even, ...
        accs = _aligned_zeros(planes * pitch, out)  # (planes, pitch), flat
        for block_g in range(chunk * items // chunks, (chunk + 1) * items // chunks):
            block, g = block_g // groups, block_g % groups
            first = block * samples
            count = min(samples, batch - first)  # samples in this item
            for m in range(count):
                for c in range(channels_per_group):
                    image = x[first + m, g * channels_per_group + c].reshape(height * width)  # (H*W,), rows sliced
                    start = c * split_h * stride_w * block_size + m * phase_size  # phases[c, 0, 0] of sample m
                    if split_by_map:
                        _scatter_plane(buffer, start, image, split_map)
                    else:
                        _split_plane(buffer, start, block_size, image, 0, height, width, geometry, scratch)
            size = _rounded((count - 1) * phase_size + length)
            for o_g in range(0, out_per_group, OUTPUTS_PER_PASS):  # up to four output channels per pass
                o = g * out_per_group + o_g
                block = min(OUTPUTS_PER_PASS, out_per_group - o_g)
                if pair_rows:  # (depthwise: out_per_group < OUTPUTS_PER_PASS, compiled.pairs_rows)
                    for b in range(block):
                        even, odd = 2 * b * pitch, (2 * b + 1) * pitch
                        _add_row_pair_taps(
                            accs[even : even + size],
                            accs[odd : odd + size],
                            buffer,
                            starts,
                            weights[o + b],
                            kernel_h,
                            kernel_w,
                            shift,
                            False,
                        )
                else:
                    _add_taps_to_planes(accs, size, block, buffer, starts, weights[o : o + block], 0)
                for b in range(block):
                    for m in range(count):
                        # one flat view per plane, rows copied by offset into it: a view per row
                        # (of the 4-d array or of the plane), or a slice assignment, cost more than
                        # a short row's copy
                        plane = out[first + m, o + b].reshape(height_out * width_out)  # (H_out*W_out,)
                        if crop_by_map:  # (never with pair_rows: compiled.conv_compiled)
                            _gather_plane(plane, accs[b * pitch + m * phase_size :], crop_map)
                            continue
                        for i in range(height_out):  # crop the wide grid's junk columns W_out..W_q-1
                            start = _row_start(b, i, pair, pitch, phase_width) + m * phase_size
                            _copy_contiguous(plane, i * width_out, accs, start, width_out)


@numba.njit(cache=True, inline="always", fastmath=False)  # body of direct_conv3d and direct_conv3d_serial, below
def _direct_conv3d(x: np.ndarray, weight: np.ndarray, sizes: np.ndarray, out: np.ndarray, flat: np.ndarray) -> None:
    """x (N, C_in, D, H, W), weight (C_out, C_g, kD, kH, kW) -> out (N, C_out, D_out, H_out, W_out).

    :func:`direct_conv` with a depth axis, without unfolding depth into copies: each (n, g) splits
    its C_g channels, zero-padded by ``pads`` (front, top, left), into 3-d phases (C_g, s_d, s_h,
    s_w, D_q*H_q*W_q) once; then every output depth slice i of every output channel is one 2-d wide
    plane in L1, into which all C_g*kD*kH*kW taps are added in the loop version's (c, kd, kh, kw)
    order: tap (t, p, q) of slice i reads a flat slice of depth phase (t*d_d) % s_d starting at
    depth row i + t*d_d // s_d. ``sizes`` (int64): the pads (front, top, left), stride, dilation and
    phase dims (D_q, H_q, W_q), three each, then the thread count and pair_rows.

    ``flat``: ``out`` as one flat C-contiguous array where ``out`` is contiguous, else empty. Rows go
    into ``flat`` by offset when it is there; into a strided ``out`` (a transposed convolution's
    phase, every s-th position of its output) by a slice assignment per row, in place. The slice
    assignment into a contiguous ``out`` took 1.1 of X3D's 3.5 ms (docs/performance.md, round 12);
    for a strided one, a contiguous buffer copied in by NumPy measured no different (the depthwise
    ConvTranspose3d 0.88x and 0.98x in two runs with an A/A arm), so it stays in place.

    ``pair_rows`` (0 or 1, compiled.pairs_rows; depthwise only): each output depth slice as its even
    and its odd output rows, as in :func:`direct_conv`, one :func:`_add_row_pair_taps` call per depth
    tap t (the first from +0.0, the rest going on), so each plane still gets (t, p, q) in order.
    """
    batch, in_channels, depth, height, width = x.shape
    out_channels, channels_per_group, kernel_d, kernel_h, kernel_w = weight.shape
    groups = in_channels // channels_per_group
    out_per_group = out_channels // groups
    depth_out, height_out, width_out = out.shape[2], out.shape[3], out.shape[4]
    pad_front, pad_top, pad_left = sizes[0], sizes[1], sizes[2]
    stride_d, stride_h, stride_w = sizes[3], sizes[4], sizes[5]
    dilation_d, dilation_h, dilation_w = sizes[6], sizes[7], sizes[8]
    phase_depth, phase_height, phase_width = sizes[9], sizes[10], sizes[11]
    threads, pair_rows = sizes[12], sizes[13] != 0
    by_offset = flat.shape[0] > 0  # rows into the flat output by offset (see ``flat``)
    plane = phase_height * phase_width
    phase_size = phase_depth * plane
    # as in direct_conv: with pair_rows the rows split by twice s_h, kH + shift merged kernel rows
    split_h = 2 * stride_h if pair_rows else stride_h
    shift = stride_h // dilation_h if pair_rows else 0
    tap_rows = kernel_h + shift
    rows_out = (height_out + 1) // 2 if pair_rows else height_out  # rows of one wide plane
    pair = 1 if pair_rows else 0  # log2 of the wide planes per output channel, see _row_start
    length = (rows_out - 1) * phase_width + width_out  # one output depth slice on the wide grid
    # Tap (c, t, p, q) of output depth slice i reads a flat slice of depth phase (t*d_d) % s_d
    # starting at depth row i + t*d_d // s_d: its start for i = 0, plus i*plane.
    starts = np.empty(channels_per_group * kernel_d * tap_rows * kernel_w, dtype=np.int64)  # (c, t, p, q) order
    for c in range(channels_per_group):
        for t in range(kernel_d):
            for p in range(tap_rows):
                for q in range(kernel_w):
                    phase = (
                        (c * stride_d + (t * dilation_d) % stride_d) * split_h + (p * dilation_h) % split_h
                    ) * stride_w + (q * dilation_w) % stride_w
                    starts[((c * kernel_d + t) * tap_rows + p) * kernel_w + q] = (
                        phase * phase_size
                        + (t * dilation_d) // stride_d * plane
                        + (p * dilation_h) // split_h * phase_width
                        + (q * dilation_w) // stride_w
                    )
    total = channels_per_group * stride_d * split_h * stride_w * phase_size
    layer_geometry = (pad_top, pad_left, split_h, stride_w, phase_height, phase_width)  # see _split_plane
    weights = weight.reshape((out_channels, channels_per_group * kernel_d * kernel_h * kernel_w))  # (C_out, taps)
    kernel_plane = kernel_h * kernel_w  # one depth tap's weights
    tap_plane = tap_rows * kernel_w  # one depth tap's starts
    items = batch * groups
    chunks = max(1, min(items, threads))
    for chunk in numba.prange(chunks):  # one chunk of items per thread, buffers zeroed once (see direct_conv)
        # the phases (C_g, s_d, s_h, s_w, D_q*H_q*W_q), flat, then reading room:
        # phases[c, a, b, e][(u*H_q + v)*W_q + w] = x_pad[n, g*C_g + c, u*s_d + a, v*s_h + b, w*s_w + e]
        buffer = _aligned_zeros(total + _rounded(length) - length, out)
        scratch = np.zeros(stride_w * phase_width, dtype=out.dtype)  # one padded input row, see _split_plane
        pitch = _rounded(length)  # one output depth slice on the wide grid, per output channel
        planes = 2 * OUTPUTS_PER_PASS if pair_rows else OUTPUTS_PER_PASS  # pair_rows: even, odd, even, ...
        accs = _aligned_zeros(planes * pitch, out)  # (planes, pitch), flat
        for n_g in range(chunk * items // chunks, (chunk + 1) * items // chunks):
            n, g = n_g // groups, n_g % groups
            for c in range(channels_per_group):
                volume = x[n, g * channels_per_group + c].reshape(depth * height * width)  # (D*H*W,), rows sliced
                u, a = divmod(pad_front, stride_d)  # where input layer 0 lands, see _split_plane
                for layer in range(depth):  # input layer is depth row u of phases (a, :, :)
                    start = (c * stride_d + a) * split_h * stride_w * phase_size + u * plane  # phases[c, a, 0, 0][u]
                    image_start = layer * height * width
                    _split_plane(buffer, start, phase_size, volume, image_start, height, width, layer_geometry, scratch)
                    a += 1
                    if a == stride_d:
                        u, a = u + 1, 0
            for o_g in range(0, out_per_group, OUTPUTS_PER_PASS):  # up to four output channels per pass
                o = g * out_per_group + o_g
                block = min(OUTPUTS_PER_PASS, out_per_group - o_g)
                for i in range(depth_out):
                    if pair_rows:  # (depthwise: out_per_group < OUTPUTS_PER_PASS, compiled.pairs_rows)
                        for b in range(block):
                            w_o = weights[o + b]
                            for t in range(kernel_d):  # one depth tap at a time, in order
                                _add_row_pair_taps(
                                    accs[2 * b * pitch : (2 * b + 1) * pitch],
                                    accs[(2 * b + 1) * pitch : (2 * b + 2) * pitch],
                                    buffer[i * plane :],
                                    starts[t * tap_plane : (t + 1) * tap_plane],
                                    w_o[t * kernel_plane : (t + 1) * kernel_plane],
                                    kernel_h,
                                    kernel_w,
                                    shift,
                                    t > 0,
                                )
                    else:
                        _add_taps_to_planes(accs, pitch, block, buffer, starts, weights[o : o + block], i * plane)
                    for b in range(block):
                        for r in range(height_out):  # crop the wide grid's junk columns (see ``flat``)
                            start = _row_start(b, r, pair, pitch, phase_width)
                            if by_offset:
                                row = (((n * out_channels + o + b) * depth_out + i) * height_out + r) * width_out
                                _copy_contiguous(flat, row, accs, start, width_out)
                            else:
                                out[n, o + b, i, r, :] = accs[start : start + width_out]


@numba.njit(
    cache=True, inline="always", fastmath=False
)  # body of direct_conv_placed and direct_conv_placed_serial, below
def _direct_conv_placed(
    x: np.ndarray, weight: np.ndarray, sizes: np.ndarray, placement: np.ndarray, partner: np.ndarray, out: np.ndarray
) -> None:
    """:func:`direct_conv` at stride 1, each output channel's plane written straight to its place in
    ``out`` (N, C_target, H_t, W_t) instead of to its own channel: the phases of a transposed
    convolution land in the strided positions of its output without a plane in between.

    ``placement[o]`` = (target channel, first target row, first target column, first source row,
    first source column, rows, columns): source plane position (r0 + i, c0 + j) of output channel o
    goes to target (row0 + i*row_step, col0 + j*col_step), for i < rows, j < columns. The source plane
    is (height_out, width_out); ``x`` is zero-padded by (pad_top, pad_left) on the fly. ``sizes``
    (int64): pad_top, pad_left, dilation_h, dilation_w, phase_height, phase_width, height_out,
    width_out, row_step, col_step, threads.

    ``partner[o]`` >= 0: channel ``partner[o]`` = o + 1 fills the odd columns between o's
    (col_step 2, its first target column one right of o's, same rows, as many columns or one
    fewer): both planes are computed, then each target row is written once, interleaved. -2: o is
    some channel's partner (written with it); -1: o is written alone. A lone plane's stride-2 row
    write is a scatter, which LLVM turns into AVX-512 scatter instructions: on the upsampler
    1.7-2.0 ms of the kernel's 2.2-2.4, where the sum takes 0.4 (docs/performance.md, round 5).

    The taps are added four output channels at a time (:func:`_add_taps_4`), in passes across
    kernel rows: a phase's sub-kernel is small (2x2 for an upsampler's k4 s2), so one pass takes all
    four taps of four phases. A partner is always the next channel, o at an even place in its group
    (phase_gradient.plan_placed orders them so), so the pass that computes o computes its partner
    too.
    """
    pad_top, pad_left, dilation_h, dilation_w = sizes[0], sizes[1], sizes[2], sizes[3]
    phase_height, phase_width, height_out, width_out = sizes[4], sizes[5], sizes[6], sizes[7]
    row_step, col_step, threads = sizes[8], sizes[9], sizes[10]
    batch, in_channels, height, width = x.shape
    out_channels, channels_per_group, kernel_h, kernel_w = weight.shape
    groups = in_channels // channels_per_group
    out_per_group = out_channels // groups
    phase_size = phase_height * phase_width
    length = (height_out - 1) * phase_width + width_out
    taps = channels_per_group * kernel_h * kernel_w
    starts = np.empty(taps, dtype=np.int64)  # flat start of tap (c, p, q)'s slice, in (c, p, q) order
    for c in range(channels_per_group):
        for p in range(kernel_h):
            for q in range(kernel_w):
                tap = (c * kernel_h + p) * kernel_w + q
                starts[tap] = c * phase_size + p * dilation_h * phase_width + q * dilation_w
    u_first, u_end = _phase_span(pad_top, 0, 1, height, phase_height)
    v_first, v_end = _phase_span(pad_left, 0, 1, width, phase_width)
    weights = weight.reshape((out_channels, taps))  # (C_out, taps), a view
    items = batch * groups
    chunks = max(1, min(items, threads))
    for chunk in numba.prange(chunks):  # one chunk of items per thread, buffers zeroed once (see direct_conv)
        # (C_g*H_q*W_q + reading room,): stride 1, one phase per channel
        padded = _aligned_zeros(channels_per_group * phase_size + _rounded(length) - length, out)
        pitch = _rounded(length)  # one output channel's plane
        accs = _aligned_zeros(OUTPUTS_PER_PASS * pitch, out)  # (OUTPUTS_PER_PASS, pitch), flat
        for n_g in range(chunk * items // chunks, (chunk + 1) * items // chunks):
            n, g = n_g // groups, n_g % groups
            for c in range(channels_per_group):
                channel = g * channels_per_group + c
                for u in range(u_first, u_end):
                    start = c * phase_size + u * phase_width
                    dest = padded[start + v_first : start + v_end]
                    row = x[n, channel, u - pad_top, v_first - pad_left :]
                    for v in range(v_end - v_first):
                        dest[v] = row[v]
            for o_g in range(0, out_per_group, OUTPUTS_PER_PASS):  # up to four output channels per pass
                first = g * out_per_group + o_g
                block = min(OUTPUTS_PER_PASS, out_per_group - o_g)
                _add_taps_to_planes(accs, pitch, block, padded, starts, weights[first : first + block], 0)
                for b in range(block):
                    o = first + b
                    if partner[o] == -2:
                        continue  # written with the channel it partners
                    acc = accs[b * pitch : (b + 1) * pitch]
                    target, row0, col0 = placement[o, 0], placement[o, 1], placement[o, 2]
                    src_row, src_col, rows, cols = placement[o, 3], placement[o, 4], placement[o, 5], placement[o, 6]
                    if partner[o] < 0:
                        for i in range(rows):
                            source = (src_row + i) * phase_width + src_col
                            row = out[n, target, row0 + i * row_step, col0:]
                            _scatter_row(row, acc[source : source + cols], col_step)
                        continue
                    odd = partner[o]  # o + 1, at an odd place in the group: computed in this pass
                    odd_plane = accs[(b + 1) * pitch : (b + 2) * pitch]
                    odd_row, odd_col, odd_cols = placement[odd, 3], placement[odd, 4], placement[odd, 6]
                    for i in range(rows):
                        even_source = (src_row + i) * phase_width + src_col
                        odd_source = (odd_row + i) * phase_width + odd_col
                        even = acc[even_source : even_source + cols]
                        odd_values = odd_plane[odd_source : odd_source + odd_cols]
                        target_row = out[n, target, row0 + i * row_step, col0 : col0 + cols + odd_cols]
                        for v in range(odd_cols):  # an interleaved store: shuffles, not a scatter
                            target_row[2 * v] = even[v]
                            target_row[2 * v + 1] = odd_values[v]
                        if cols > odd_cols:
                            target_row[2 * odd_cols] = even[odd_cols]


@numba.njit(cache=True, inline="always", fastmath=False)  # body of col2im_add and col2im_add_serial, below
def _col2im_add(cols: np.ndarray, stride: np.ndarray, dilation: np.ndarray, grad: np.ndarray) -> None:
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
                            for k in range(width):  # rows of 7-28 here: a view per row cost more than the indexing
                                grad[n, c, layer, row, column + k * stride[2]] += cols[n, c, a, b, e, i, j, k]


# Each kernel twice, from the one body above (inlined into both, so prange is numba's parallel loop
# in the first and a plain loop in the second): on one thread the parallel kernel still goes through
# numba's threading layer (0.1-0.2 ms a call with workqueue), the serial twin is a plain call.
# compiled.kernel_for picks by thread count, which compiled.threads_for makes 1 for a call of little
# work (docs/performance.md, rounds 6, 8 and 9).


@numba.njit(parallel=True, cache=True, fastmath=False)
def direct_conv(x: np.ndarray, weight: np.ndarray, sizes: np.ndarray, out: np.ndarray) -> None:
    """:func:`_direct_conv` on numba's threads."""
    _direct_conv(x, weight, sizes, out)


@numba.njit(cache=True, fastmath=False)
def direct_conv_serial(x: np.ndarray, weight: np.ndarray, sizes: np.ndarray, out: np.ndarray) -> None:
    """:func:`_direct_conv` on the calling thread alone."""
    _direct_conv(x, weight, sizes, out)


@numba.njit(parallel=True, cache=True, fastmath=False)
def direct_conv3d(x: np.ndarray, weight: np.ndarray, sizes: np.ndarray, out: np.ndarray, flat: np.ndarray) -> None:
    """:func:`_direct_conv3d` on numba's threads."""
    _direct_conv3d(x, weight, sizes, out, flat)


@numba.njit(cache=True, fastmath=False)
def direct_conv3d_serial(
    x: np.ndarray, weight: np.ndarray, sizes: np.ndarray, out: np.ndarray, flat: np.ndarray
) -> None:
    """:func:`_direct_conv3d` on the calling thread alone."""
    _direct_conv3d(x, weight, sizes, out, flat)


@numba.njit(parallel=True, cache=True, fastmath=False)
def direct_conv_placed(
    x: np.ndarray, weight: np.ndarray, sizes: np.ndarray, placement: np.ndarray, partner: np.ndarray, out: np.ndarray
) -> None:
    """:func:`_direct_conv_placed` on numba's threads."""
    _direct_conv_placed(x, weight, sizes, placement, partner, out)


@numba.njit(cache=True, fastmath=False)
def direct_conv_placed_serial(
    x: np.ndarray, weight: np.ndarray, sizes: np.ndarray, placement: np.ndarray, partner: np.ndarray, out: np.ndarray
) -> None:
    """:func:`_direct_conv_placed` on the calling thread alone."""
    _direct_conv_placed(x, weight, sizes, placement, partner, out)


@numba.njit(parallel=True, cache=True, fastmath=False)
def col2im_add(cols: np.ndarray, stride: np.ndarray, dilation: np.ndarray, grad: np.ndarray) -> None:
    """:func:`_col2im_add` on numba's threads."""
    _col2im_add(cols, stride, dilation, grad)


@numba.njit(cache=True, fastmath=False)
def col2im_add_serial(cols: np.ndarray, stride: np.ndarray, dilation: np.ndarray, grad: np.ndarray) -> None:
    """:func:`_col2im_add` on the calling thread alone."""
    _col2im_add(cols, stride, dilation, grad)
