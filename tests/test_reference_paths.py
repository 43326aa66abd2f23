"""Every algorithm behind reference_impl.conv2d, forced, agrees with the loop version.

The loop version (conv2d_loops) is the definition; shapes stay tiny because it is slow.
float64 everywhere, so agreement is to rounding (rtol 1e-10), not to a loose tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

import reference_impl
from reference_impl import conv2d, conv2d_loops, plan_conv, plan_conv2d
from reference_impl.algorithms import ALGORITHMS, choose_algorithm, numba_available
from tests.helpers import launch_threads, record_variants_run, spy_on_kernel

GENERAL = ["im2col", "taps", "einsum"]  # any kernel; "pointwise" needs 1x1

# The numba path is optional: its tests skip, saying why, where numba does not import. Its
# first call per dtype compiles (~4 s each on the 2-core machine) unless numba's cache
# (reference_impl/algorithms/__pycache__/compiled_kernel.*.nb*) already holds it.
needs_numba = pytest.mark.skipif(
    not numba_available(), reason="numba not installed: the 'compiled' algorithm is optional (pip install '.[fast]')"
)
COMPILED = pytest.param("compiled", marks=needs_numba)

# (batch, C_in, C_out, groups, kernel, H, W, stride, padding, dilation, padding_mode, bias)
# batch None = unbatched (C, H, W) input.
CASES = [
    pytest.param(2, 3, 4, 1, (3, 3), 6, 7, 1, 1, 1, "zeros", True, id="groups1"),
    pytest.param(2, 6, 4, 2, (3, 2), 7, 5, (2, 1), (1, 2), 1, "zeros", False, id="grouped-nonsquare-stride-tuple"),
    pytest.param(
        1, 8, 8, 2, (3, 3), 9, 8, 1, "same", (2, 1), "reflect", True, id="grouped-same-dilation-tuple-reflect"
    ),
    pytest.param(2, 4, 4, 4, (3, 3), 8, 6, 2, 1, 1, "replicate", True, id="depthwise-stride2-replicate"),
    pytest.param(1, 3, 6, 3, (5, 5), 9, 10, 1, 2, 1, "circular", False, id="depth-multiplier-5x5-circular"),
    pytest.param(2, 4, 8, 4, (2, 4), 7, 9, 1, "same", (1, 2), "zeros", True, id="depthwise-even-kernel-same"),
    pytest.param(1, 6, 3, 3, (2, 2), 6, 5, 1, "same", 1, "reflect", True, id="even-kernel-same-reflect"),
    pytest.param(2, 4, 6, 2, (3, 3), 8, 7, (1, 3), "valid", (2, 1), "zeros", False, id="valid-stride-dilation"),
    pytest.param(None, 6, 6, 3, (3, 3), 5, 6, 1, 1, 1, "zeros", True, id="unbatched"),
    pytest.param(0, 4, 4, 2, (3, 3), 5, 5, 1, 1, 1, "zeros", True, id="empty-batch"),
    pytest.param(1, 8, 4, 2, (3, 3), 11, 9, (3, 2), (2, 1), (1, 2), "circular", True, id="stride3-circular"),
    pytest.param(2, 6, 6, 6, (7, 7), 9, 8, 1, 3, 1, "reflect", False, id="depthwise-7x7-reflect"),
    pytest.param(1, 4, 4, 1, (1, 3), 5, 6, (1, 2), (0, 1), (1, 2), "replicate", True, id="1x3-groups1"),
]

POINTWISE_CASES = [
    pytest.param(2, 6, 9, 3, 6, 7, 1, 0, "zeros", True, id="1x1-grouped"),
    pytest.param(1, 8, 8, 8, 7, 6, (2, 3), 0, "zeros", False, id="1x1-depthwise-stride-tuple"),
    pytest.param(2, 4, 6, 2, 5, 4, 2, (1, 2), "reflect", True, id="1x1-padded-reflect"),
    pytest.param(None, 6, 3, 1, 4, 5, 1, "same", "circular", True, id="1x1-unbatched-same"),
    pytest.param(0, 4, 4, 2, 3, 3, 1, "valid", "zeros", True, id="1x1-empty-batch"),
    pytest.param(1, 4, 4, 2, 6, 5, 2, 1, "replicate", False, id="1x1-stride-pad-replicate"),
]


def _tensors(seed, batch, c_in, c_out, groups, kernel, h, w, bias):
    rng = np.random.default_rng(seed)
    x_shape = (c_in, h, w) if batch is None else (batch, c_in, h, w)
    x = rng.standard_normal(x_shape)
    weight = rng.standard_normal((c_out, c_in // groups, *kernel))
    b = rng.standard_normal(c_out) if bias else None
    return x, weight, b


@pytest.mark.parametrize("algorithm", [*GENERAL, COMPILED])
@pytest.mark.parametrize("batch,c_in,c_out,groups,kernel,h,w,stride,padding,dilation,mode,bias", CASES)
def test_forced_algorithm_matches_loops(
    algorithm, batch, c_in, c_out, groups, kernel, h, w, stride, padding, dilation, mode, bias
):
    x, weight, b = _tensors(7, batch, c_in, c_out, groups, kernel, h, w, bias)
    args = (b, stride, padding, dilation, groups, mode)
    expected = conv2d_loops(x, weight, *args)
    got = conv2d(x, weight, *args, algorithm=algorithm)
    assert got.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("algorithm", ["pointwise", *GENERAL, COMPILED])
@pytest.mark.parametrize("batch,c_in,c_out,groups,h,w,stride,padding,mode,bias", POINTWISE_CASES)
def test_1x1_algorithms_match_loops(algorithm, batch, c_in, c_out, groups, h, w, stride, padding, mode, bias):
    x, weight, b = _tensors(3, batch, c_in, c_out, groups, (1, 1), h, w, bias)
    args = (b, stride, padding, 1, groups, mode)
    expected = conv2d_loops(x, weight, *args)
    np.testing.assert_allclose(conv2d(x, weight, *args, algorithm=algorithm), expected, rtol=1e-10, atol=1e-12)


def test_all_algorithms_are_tested():
    assert set(ALGORITHMS) == {"pointwise", "compiled", *GENERAL}


# Shapes the compiled path is chosen for: (C_in, C_out, groups, kernel, stride, dilation), each
# with every padding mode, float32 and float64, batched, unbatched and empty batch.
COMPILED_SHAPES = [
    pytest.param(6, 6, 6, (3, 3), 1, 1, id="depthwise-3x3"),
    pytest.param(4, 8, 4, (3, 5), (2, 1), (1, 2), id="depthwise-multiplier2-stride-h2-dilation-w2"),
    pytest.param(6, 6, 3, (3, 3), (1, 3), (2, 1), id="Cg2-stride-w3-dilation-h2"),
    pytest.param(9, 6, 3, (2, 4), (3, 2), (2, 3), id="Cg3-even-kernel"),
    pytest.param(8, 4, 2, (5, 5), (2, 2), 1, id="Cg4-5x5-stride2"),
    pytest.param(12, 12, 12, (7, 7), 1, (1, 2), id="depthwise-7x7-dilation-w2"),
    pytest.param(16, 8, 1, (3, 3), 1, 1, id="Cg16-groups1"),
    pytest.param(10, 12, 2, (3, 3), 1, 1, id="Cg5-Og6"),  # a block of four outputs and two alone, 45 taps
]


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [2, None, 0], ids=["batch2", "unbatched", "empty-batch"])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("c_in,c_out,groups,kernel,stride,dilation", COMPILED_SHAPES)
def test_compiled_matches_loops(c_in, c_out, groups, kernel, stride, dilation, mode, batch, dtype):
    rng = np.random.default_rng(hash((c_in, groups, kernel, mode, batch)) % 2**32)
    x_shape = (c_in, 11, 10) if batch is None else (batch, c_in, 11, 10)
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal((c_out, c_in // groups, *kernel)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    # "same" needs stride 1; otherwise an uneven explicit padding, as large as reflect allows.
    padding = "same" if stride == 1 else (2, 3)
    args = (bias, stride, padding, dilation, groups, mode)
    expected = conv2d_loops(x.astype(np.float64), weight.astype(np.float64), bias.astype(np.float64), *args[1:])
    got = conv2d(x, weight, *args, algorithm="compiled")
    assert got.shape == expected.shape and got.dtype == dtype
    if dtype == np.float64:  # same (c, p, q) order, no fastmath: only the bias is added at another point
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@needs_numba
@pytest.mark.parametrize("batch,groups", [(5, 4), (8, 8), (3, 16)])
def test_compiled_folds_samples_of_small_planes_into_one_wide_plane(batch, groups, monkeypatch):
    """Small planes: one work item of the kernel takes several samples side by side (one wide
    plane across them), including a last item with fewer samples than the others; every sample's
    output is still its own, with zero and other padding modes and strides."""
    from reference_impl.algorithms import compiled

    taken = []
    spy_on_kernel(monkeypatch, "direct_conv", lambda *a: taken.append(a[2][9]))  # sizes[9]: samples per item
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 2 * groups, 5, 6))
    weight = rng.standard_normal((3 * groups, 2, 3, 3))
    for stride, padding, mode in ((1, 1, "zeros"), (2, (2, 1), "zeros"), (1, 1, "reflect"), ((2, 1), 2, "circular")):
        args = (None, stride, padding, 1, groups, mode)
        np.testing.assert_allclose(
            conv2d(x, weight, *args, algorithm="compiled"), conv2d_loops(x, weight, *args), rtol=1e-10, atol=1e-12
        )
    assert all(samples > 1 for samples in taken), taken
    assert any(batch % samples for samples in taken) == (batch == 5), taken  # (5, 4): items of 2, 2, 1
    assert compiled.samples_per_item(batch, groups, 7 * 8) == taken[0]


@needs_numba
@pytest.mark.parametrize("by_map", [False, True], ids=["by-rows", "by-map"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
# phase rows below one vector (16 elements), above it, and over several (the deinterleave's blocks)
@pytest.mark.parametrize("width", [9, 10, 37, 38, 71])
@pytest.mark.parametrize("stride", [(2, 2), (1, 2), (2, 3), (1, 1)])
def test_compiled_splits_every_left_padding_into_column_phases(stride, width, dtype, by_map, monkeypatch):
    """The kernel pads while it splits rows into column phases, and stride 2 deinterleaves each row
    in vector blocks, the last one overlapping the one before (compiled_kernel._split_plane): every
    left padding puts the first element in the other phase or the same one, an odd width leaves a
    last element without its pair, depthwise and two-channel groups, float32 and float64 alike. The same through
    the element maps that short rows take instead (compiled.by_element_map, forced either way here,
    whatever the width would pick), for the split and the crop."""
    from reference_impl.algorithms import compiled

    monkeypatch.setattr(compiled, "by_element_map", lambda width, stride: by_map)
    rng = np.random.default_rng(width * 10 + stride[1])
    for pad_left in range(4):
        for groups in (4, 2):
            x = rng.standard_normal((2, 4, 7, width)).astype(dtype)
            weight = rng.standard_normal((4, 4 // groups, 3, 5)).astype(dtype)
            args = (None, stride, (1, pad_left), 1, groups)
            expected = conv2d_loops(x.astype(np.float64), weight.astype(np.float64), *args)
            got = conv2d(x, weight, *args, algorithm="compiled")
            tolerance = 1e-12 if dtype == np.float64 else 1e-5
            np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance, err_msg=f"pad_left {pad_left}")


@needs_numba
def test_compiled_accepts_non_contiguous_inputs():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 10, 9, 4)).transpose(0, 3, 1, 2)  # (N, C=4, H, W), not C-contiguous
    weight = rng.standard_normal((3, 3, 2, 8)).transpose(3, 2, 0, 1)[:, :, ::-1]  # (8, 2, 3, 3), strided
    args = (None, 1, 1, 1, 2)
    np.testing.assert_allclose(
        conv2d(x, weight, *args, algorithm="compiled"), conv2d_loops(x, weight, *args), rtol=1e-10, atol=1e-12
    )


@needs_numba
def test_compiled_takes_padded_or_unpadded_input():
    """conv2d hands "compiled" the unpadded input for zero padding; the padded one (the common
    contract of ALGORITHMS) must give the same result."""
    from reference_impl.padding import pad_input

    rng = np.random.default_rng(6)
    x, weight = rng.standard_normal((2, 6, 7, 8)), rng.standard_normal((6, 2, 3, 3))
    geo = plan_conv2d(x.shape, weight.shape, None, (2, 1), (1, 2), 1, 3, "zeros")
    from_padded = ALGORITHMS["compiled"](pad_input(x, geo.pads, "zeros"), weight, geo)
    from_unpadded = ALGORITHMS["compiled"](x, weight, geo)
    np.testing.assert_array_equal(from_padded, from_unpadded)
    np.testing.assert_allclose(
        from_padded.reshape(2, 6, *geo.output_size),
        conv2d_loops(x, weight, None, (2, 1), (1, 2), 1, 3),
        rtol=1e-10,
        atol=1e-12,
    )


def test_compiled_without_numba_says_so(monkeypatch):
    from reference_impl.algorithms import compiled

    monkeypatch.setattr(compiled, "numba_available", lambda: False)
    with pytest.raises(RuntimeError, match="needs numba"):
        conv2d(np.ones((1, 2, 4, 4)), np.ones((2, 1, 3, 3)), groups=2, algorithm="compiled")


def _geo(c_in, c_out, groups, k, size=16, stride=1):
    return plan_conv2d((2, c_in, size, size), (c_out, c_in // groups, k, k), None, stride, k // 2, 1, groups)


# (geometry, choice without numba, choice with numba)
@pytest.mark.parametrize(
    "geo,numpy_choice,numba_choice",
    [
        (_geo(240, 240, 3, 1), "pointwise", "pointwise"),  # ShuffleNet grouped 1x1
        (_geo(64, 64, 1, 1, stride=2), "pointwise", "pointwise"),  # strided 1x1 projection
        (_geo(144, 144, 144, 3), "taps", "compiled"),  # MobileNetV2 depthwise
        (_geo(96, 96, 96, 7), "taps", "compiled"),  # ConvNeXt 7x7 depthwise: no 49x im2col
        (_geo(32, 64, 32, 3), "taps", "compiled"),  # depth multiplier 2
        (_geo(128, 128, 32, 3), "taps", "compiled"),  # ResNeXt: 4 channels per group
        (_geo(256, 256, 32, 3, stride=2), "einsum", "compiled"),  # 8 channels per group
        (_geo(96, 256, 2, 5), "einsum", "einsum"),  # AlexNet groups=2: 48 per group
        (_geo(16, 16, 1, 3), "einsum", "compiled"),  # plain convolution, 16 channels
        (_geo(1024, 1024, 32, 3, stride=2), "einsum", "compiled"),  # ResNeXt stage 4: 32 per group
        (_geo(64, 64, 1, 3), "einsum", "einsum"),  # plain convolution, 64 channels
        (_geo(48, 48, 1, 9), "taps", "compiled"),  # 48 per group, a long kernel (81 taps)
        (_geo(128, 128, 1, 9), "taps", "taps"),  # 128 per group, a long kernel
    ],
)
def test_choose_algorithm(geo, numpy_choice, numba_choice):
    assert choose_algorithm(geo, use_compiled=False) == numpy_choice
    assert choose_algorithm(geo, use_compiled=True) == numba_choice
    assert choose_algorithm(geo) == (numba_choice if numba_available() else numpy_choice)
    # numba has no float16: a float16 computation always takes the NumPy choice
    assert choose_algorithm(geo, use_compiled=True, dtype=np.float16) == numpy_choice


@pytest.mark.parametrize("algorithm", [None, *GENERAL, COMPILED])
def test_float32_in_float32_out(algorithm):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6, 6), dtype=np.float32)
    w = rng.standard_normal((4, 2, 3, 3), dtype=np.float32)
    b = rng.standard_normal(4, dtype=np.float32)
    got = conv2d(x, w, b, padding=1, groups=2, algorithm=algorithm)
    assert got.dtype == np.float32
    np.testing.assert_allclose(
        got,
        conv2d_loops(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), padding=1, groups=2),
        rtol=1e-4,
        atol=1e-4,
    )


def test_pointwise_float32_and_unknown_algorithm():
    x = np.ones((1, 4, 3, 3), dtype=np.float32)
    assert conv2d(x, np.ones((4, 2, 1, 1), dtype=np.float32), groups=2, algorithm="pointwise").dtype == np.float32
    with pytest.raises(ValueError, match="unknown algorithm"):
        conv2d(x, np.ones((4, 4, 3, 3)), algorithm="fft")
    with pytest.raises(ValueError, match="1x1"):
        conv2d(x, np.ones((4, 4, 3, 3)), algorithm="pointwise")


def test_errors_still_come_from_plan_before_algorithm():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        conv2d(np.ones((1, 5, 4, 4)), np.ones((4, 1, 3, 3)), groups=4, algorithm="taps")


# The same algorithms in 1 and 3 spatial dims: (batch, C_in, C_out, groups, kernel, size, stride,
# padding, dilation, padding_mode). "compiled" runs 1-d as a 2-d layer of height 1 and 3-d in its own
# kernel (direct_conv3d, depth split into phases like height and width): strides and dilations in
# depth and every padding mode included.
ND_CASES = [
    pytest.param(2, 6, 4, 2, (3,), (11,), (2,), 1, (2,), "zeros", id="1d-grouped-stride-dilation"),
    pytest.param(None, 4, 4, 4, (4,), (9,), 1, 3, 1, "zeros", id="1d-mamba-causal-depthwise-unbatched"),
    pytest.param(1, 3, 6, 3, (5,), (12,), 3, "valid", 1, "reflect", id="1d-depth-multiplier-stride3"),
    pytest.param(0, 4, 4, 2, (3,), (6,), 1, "same", 2, "circular", id="1d-empty-batch-same"),
    pytest.param(2, 4, 4, 4, (3, 3, 3), (5, 6, 4), 1, 1, 1, "zeros", id="3d-x3d-depthwise"),
    pytest.param(1, 6, 4, 2, (2, 3, 1), (6, 5, 7), (2, 1, 3), (1, 0, 2), (1, 2, 1), "replicate", id="3d-grouped-mixed"),
    pytest.param(None, 4, 8, 2, (3, 1, 2), (5, 4, 6), (1, 2, 1), "valid", (2, 1, 1), "circular", id="3d-unbatched"),
    pytest.param(0, 3, 3, 3, (3, 3, 3), (4, 4, 4), 2, 1, 1, "reflect", id="3d-empty-batch"),
]


@pytest.mark.parametrize("algorithm", [*GENERAL, COMPILED])
@pytest.mark.parametrize("batch,c_in,c_out,groups,kernel,size,stride,padding,dilation,mode", ND_CASES)
def test_forced_algorithm_matches_loops_in_1d_and_3d(
    algorithm, batch, c_in, c_out, groups, kernel, size, stride, padding, dilation, mode
):
    d = len(kernel)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((c_in, *size) if batch is None else (batch, c_in, *size))
    weight, bias = rng.standard_normal((c_out, c_in // groups, *kernel)), rng.standard_normal(c_out)
    args = (bias, stride, padding, dilation, groups, mode)
    convolve = reference_impl.conv1d if d == 1 else reference_impl.conv3d
    expected = (reference_impl.conv1d_loops if d == 1 else reference_impl.conv3d_loops)(x, weight, *args)
    got = convolve(x, weight, *args, algorithm=algorithm)
    assert got.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("d", [1, 3])
def test_pointwise_in_1d_and_3d(d):
    rng = np.random.default_rng(d)
    x, weight = rng.standard_normal((2, 6, *(5,) * d)), rng.standard_normal((4, 3, *(1,) * d))
    convolve, loops = (
        (reference_impl.conv1d, reference_impl.conv1d_loops)
        if d == 1
        else (reference_impl.conv3d, reference_impl.conv3d_loops)
    )
    np.testing.assert_allclose(
        convolve(x, weight, None, 2, 0, 1, 2, algorithm="pointwise"),
        loops(x, weight, None, 2, 0, 1, 2),
        rtol=1e-10,
        atol=1e-12,
    )


def test_a_long_kernel_with_many_channels_per_group_never_takes_einsum():
    """wav2vec2's positional conv (k128, 48 channels per group): einsum would copy the input 128
    times. With numba the compiled kernel takes it (parallel, where the tap loop is not); without,
    the tap loop. A 25-tap kernel with as many channels is einsum's without numba; with numba, 48
    per group exceeds COMPILED_MAX_CHANNELS_PER_GROUP for a short kernel."""
    geo = reference_impl.plan_conv((1, 768, 200), (768, 48, 128), None, 1, 64, 1, 16, spatial_dims=1)
    assert choose_algorithm(geo, use_compiled=True) == "compiled"
    assert choose_algorithm(geo, use_compiled=False) == "taps"
    shorter = reference_impl.plan_conv((1, 768, 200), (768, 48, 25), None, 1, 12, 1, 16, spatial_dims=1)
    assert choose_algorithm(shorter, use_compiled=True) == choose_algorithm(shorter, use_compiled=False) == "einsum"


@pytest.mark.parametrize("use_compiled", [True, False])
def test_3d_takes_the_compiled_path_when_numba_does(use_compiled):
    """The 3-d kernel splits depth into phases, never unfolds it: channels per group are counted
    as in 2-d. X3D's depthwise 3x3x3 and 32 per group: compiled; 48 per group: einsum."""
    depthwise = reference_impl.plan_conv((2, 16, 8, 8, 8), (16, 1, 3, 3, 3), None, 1, 1, 1, 16, spatial_dims=3)
    assert choose_algorithm(depthwise, use_compiled=use_compiled) == ("compiled" if use_compiled else "taps")
    grouped = reference_impl.plan_conv((2, 64, 8, 8, 8), (64, 32, 3, 3, 3), None, 1, 1, 1, 2, spatial_dims=3)
    assert choose_algorithm(grouped, use_compiled=use_compiled) == ("compiled" if use_compiled else "einsum")
    wide = reference_impl.plan_conv((2, 96, 8, 8, 8), (96, 48, 3, 3, 3), None, 1, 1, 1, 2, spatial_dims=3)
    assert choose_algorithm(wide, use_compiled=use_compiled) == "einsum"


@pytest.mark.parametrize("width", [8, 37])  # rows of 4 and of 18 pairs at column stride 2
@pytest.mark.parametrize(
    "stride,dilation,padding", [(1, 1, 1), ((2, 1, 3), (1, 2, 1), (2, 0, 1)), (3, 2, 0), ((1, 2, 2), 1, (0, 2, 1))]
)
def test_3d_kernel_matches_loops_with_depth_strides_and_dilations(stride, dilation, padding, width):
    """The 3-d kernel reads depth through phases and flat offsets (no unfolded copy): depth strides
    and dilations that do not divide the padded depth, zero padding done inside the kernel; rows
    split at column stride 2 element by element and in vector blocks."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(3)
    x, weight = rng.standard_normal((2, 6, 9, 7, width)), rng.standard_normal((4, 3, 3, 2, 3))
    args = (None, stride, padding, dilation, 2)
    expected = reference_impl.conv3d_loops(x, weight, *args)
    got = reference_impl.conv3d(x.astype(np.float32), weight.astype(np.float32), *args, algorithm="compiled")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    exact = reference_impl.conv3d(x, weight, *args, algorithm="compiled")
    np.testing.assert_allclose(exact, expected, rtol=1e-12, atol=1e-12)


@needs_numba
@pytest.mark.parametrize("mode", ["zeros", "circular"])
@pytest.mark.parametrize("c_in,c_out,groups,kernel,stride,dilation", COMPILED_SHAPES)
def test_compiled_element_maps_move_what_the_row_copies_move(
    c_in, c_out, groups, kernel, stride, dilation, mode, monkeypatch
):
    """Short rows are split and cropped element by element through index maps, longer ones row by
    row (compiled.by_element_map): both only move values, so forced either way on the same layer
    they give the same bits, and the loops' result. Batch 3 with small planes folds samples into one
    item (the maps' offsets per sample); "circular" hands the kernel an already padded input."""
    from reference_impl.algorithms import compiled

    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, c_in, 11, 10))
    weight = rng.standard_normal((c_out, c_in // groups, *kernel))
    args = (None, stride, (2, 3), dilation, groups, mode)
    results = []
    for by_map in (False, True):
        monkeypatch.setattr(compiled, "by_element_map", lambda width, stride, by_map=by_map: by_map)
        results.append(conv2d(x, weight, *args, algorithm="compiled"))
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_allclose(results[1], conv2d_loops(x, weight, *args), rtol=1e-10, atol=1e-12)


@needs_numba
@pytest.mark.parametrize(
    "op,x_shape,w_shape,kwargs",
    [
        ("conv1d", (3, 4, 13), (8, 2, 3), dict(stride=2, padding=1, groups=2)),
        ("conv2d", (3, 4, 9, 8), (4, 1, 3, 3), dict(stride=2, padding=(1, 3), groups=4)),  # odd left pad
        ("conv2d", (3, 4, 9, 8), (6, 2, 3, 2), dict(stride=(1, 2), padding=2, groups=2)),
        ("conv3d", (2, 4, 5, 6, 7), (4, 2, 3, 3, 3), dict(stride=2, padding=1, groups=2)),
        ("conv_transpose2d", (3, 4, 5, 6), (4, 1, 4, 4), dict(stride=2, padding=1, groups=4)),
    ],
)
def test_compiled_kernels_reuse_their_buffers_item_after_item(op, x_shape, w_shape, kwargs, monkeypatch):
    """On one numba thread (the serial kernels) every work item runs, one after another, through the same
    buffers, zeroed once (compiled_kernel.direct_conv): the padding must still be zero for the last
    item, and no item may see the one before it. Each (sample, channel) is scaled by its own power
    of ten, so a value left over from another item would show far above the tolerance. On two
    threads the parallel kernel runs (launched although the work is small) and must give the same bits."""
    from reference_impl import conv_loops, convolve_transpose_loops

    rng = np.random.default_rng(7)
    scales = 10.0 ** rng.integers(-3, 4, size=x_shape[:2] + (1,) * (len(x_shape) - 2))
    x, weight = rng.standard_normal(x_shape) * scales, rng.standard_normal(w_shape)
    spatial_dims = len(x_shape) - 2
    if op.startswith("conv_transpose"):
        expected = convolve_transpose_loops(x, weight, **kwargs, spatial_dims=spatial_dims)
    else:
        expected = conv_loops(x, weight, **kwargs, spatial_dims=spatial_dims)
    kernel = {"conv3d": "direct_conv3d", "conv_transpose2d": "direct_conv_placed"}.get(op, "direct_conv")
    results = []
    for threads in (1, 2):
        ran = record_variants_run(monkeypatch, kernel)
        with launch_threads(monkeypatch, threads) as used:
            results.append(getattr(reference_impl, op)(x, weight, **kwargs))
        assert set(ran) == {kernel if used > 1 else f"{kernel}_serial"}
    for got in results:  # float64, the loops' order: equal up to the last bits
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12 * float(scales.max()))
    np.testing.assert_array_equal(results[0], results[-1])  # the thread count never changes a value


@needs_numba
@pytest.mark.parametrize(
    "x_shape,w_shape,stride,padding,groups",
    [
        ((3, 10, 9, 11), (12, 5, 3, 3), 1, 1, 2),  # O_g 6: a pass of four output channels, then two alone
        ((3, 10, 9, 11), (12, 5, 3, 3), 2, (1, 2), 2),
        ((2, 64, 7, 7), (64, 32, 3, 3), 2, 1, 2),  # ResNeXt stage 4's C_g = 32: 288 taps, 36 passes of 8
        ((2, 6, 9, 11), (6, 1, 3, 3), 1, 1, 6),  # depthwise 3x3: one pass of nine taps
        ((2, 6, 9, 11), (6, 1, 5, 5), 2, 2, 6),  # depthwise 5x5: 8 + 8 + 9
        ((2, 10, 5, 6, 7), (6, 5, 3, 2, 3), 1, 1, 2),  # 3-d
    ],
)
def test_compiled_float64_equals_the_loops_bit_for_bit(x_shape, w_shape, stride, padding, groups):
    """No bias: the compiled kernels add every tap in the loops' (c, *k) order, each product rounded
    before its add, also when one pass fills four output channels (compiled_kernel._add_taps_4), so
    float64 results are the loops' to the last bit. A reordered sum would differ in the last bits."""
    from reference_impl import conv_loops

    rng = np.random.default_rng(3)
    x, weight = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    spatial_dims = len(x_shape) - 2
    got = reference_impl.convolve(
        x, weight, None, stride, padding, 1, groups, spatial_dims=spatial_dims, algorithm="compiled"
    )
    np.testing.assert_array_equal(
        got, conv_loops(x, weight, None, stride, padding, 1, groups, spatial_dims=spatial_dims)
    )


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "c_in,c_out,groups,kernel,width",
    [(4, 4, 4, 3, 6), (8, 8, 2, 3, 6), (4, 4, 4, 3, 20), (4, 4, 4, 5, 20)],
    ids=["one-plane-a-pass", "four-planes-a-pass", "row-pairs-3x3", "row-pairs-5x5"],
)
def test_compiled_sums_start_from_positive_zero_like_the_loops(c_in, c_out, groups, kernel, width, dtype):
    """The kernels' first pass starts each sum from +0.0 instead of reading a zeroed accumulator
    (compiled_kernel._add_taps and _add_taps_4; for row pairs, _add_taps_pair_3x3 and the odd plane's
    first pass in _add_taps_2): where every product is -0.0 the output is still +0.0, as in the loops,
    and not whatever the buffer held from the item before."""
    x = np.full((3, c_in, 6, width), -0.0, dtype=dtype)
    weight = np.ones((c_out, c_in // groups, kernel, kernel), dtype=dtype)
    args = (None, 1, 0, 1, groups)  # no padding: a padded +0.0 would make its product +0.0
    expected = conv2d_loops(x, weight, *args)
    got = conv2d(x, weight, *args, algorithm="compiled")
    assert (expected == 0).all() and not np.signbit(expected).any()
    assert (got == 0).all() and not np.signbit(got).any()


# Depthwise shapes whose rows are long enough not to go by element map (compiled.by_element_map):
# (batch, channels, outputs per group, kernel, H, W, stride, padding, dilation). shift = s_h / d_h.
ROW_PAIR_CASES = [
    pytest.param(2, 3, 1, (3, 3), 9, 20, 1, 1, 1, id="3x3-one-pass"),  # _add_taps_pair_3x3, odd H_out
    pytest.param(2, 3, 1, (3, 3), 8, 20, 1, 1, 1, id="3x3-even-rows"),
    pytest.param(1, 2, 1, (7, 7), 12, 22, 1, 3, 1, id="7x7-three-runs"),  # head, shared rows, tail
    pytest.param(3, 2, 2, (5, 5), 6, 17, 1, 2, 1, id="5x5-two-outputs-several-samples"),  # items of 3 samples
    pytest.param(2, 2, 3, (4, 2), 7, 19, 1, "same", 1, id="4x2-three-outputs-same"),
    pytest.param(1, 2, 1, (2, 3), 3, 18, 1, 0, 1, id="two-output-rows"),
    pytest.param(2, 3, 1, (5, 5), 11, 37, 2, 2, 1, id="5x5-stride2-shift2"),
    pytest.param(1, 2, 1, (3, 3), 12, 36, (2, 1), 1, (2, 1), id="stride2-dilation2-shift1"),
    pytest.param(2, 2, 1, (5, 3), 13, 40, (3, 2), 2, 1, id="stride3-shift3"),
]


@needs_numba
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch,channels,multiplier,kernel,h,w,stride,padding,dilation", ROW_PAIR_CASES)
def test_compiled_row_pairs_equal_the_loops_bit_for_bit(
    batch, channels, multiplier, kernel, h, w, stride, padding, dilation, threads, monkeypatch
):
    """Depthwise planes computed as their even and their odd output rows, sharing the input rows
    between them (compiled_kernel._add_row_pair_taps), sum each output's taps in the loops' order:
    float64 results are the loops' to the last bit, at every shift, with odd and even output
    heights, one to three outputs per group, several samples per item, on the serial and on the
    parallel kernel. The strided shapes, which the rule leaves unpaired (compiled.pairs_rows), are
    paired here by force so that the kernel's general shift stays correct."""
    from reference_impl.algorithms import compiled

    monkeypatch.setattr(compiled, "pairs_rows", compiled.can_pair_rows)
    paired: list[int] = []
    spy_on_kernel(monkeypatch, "direct_conv", lambda *a: paired.append(int(a[2][12])))  # sizes[12]: pair_rows
    rng = np.random.default_rng(h * w)
    x = rng.standard_normal((batch, channels, h, w))
    weight = rng.standard_normal((channels * multiplier, 1, *kernel))
    args = (None, stride, padding, dilation, channels)
    with launch_threads(monkeypatch, threads):
        got = conv2d(x, weight, *args, algorithm="compiled")
    assert paired == [1]
    np.testing.assert_array_equal(got, conv2d_loops(x, weight, *args))


# The same for the 3-d kernel: (batch, channels, outputs per group, kernel, size, stride, padding, dilation).
ROW_PAIR_CASES_3D = [
    pytest.param(1, 3, 1, (3, 3, 3), (4, 9, 20), 1, 1, 1, id="3x3x3-one-pass-per-depth-tap"),
    pytest.param(2, 2, 1, (5, 3, 3), (5, 8, 18), 1, (2, 1, 1), 1, id="5x3x3-movinet-like"),
    pytest.param(1, 2, 2, (2, 5, 5), (3, 11, 17), 1, (0, 2, 2), 1, id="2x5x5-three-runs-two-outputs"),
    pytest.param(1, 2, 3, (3, 4, 2), (5, 7, 19), (2, 1, 1), 1, 1, id="depth-stride-three-outputs"),
    pytest.param(1, 2, 1, (3, 5, 3), (4, 11, 33), (1, 2, 1), (1, 2, 1), 1, id="row-stride2-shift2"),
]


@needs_numba
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch,channels,multiplier,kernel,size,stride,padding,dilation", ROW_PAIR_CASES_3D)
def test_compiled_3d_row_pairs_equal_the_loops_bit_for_bit(
    batch, channels, multiplier, kernel, size, stride, padding, dilation, threads, monkeypatch
):
    """The 3-d kernel pairs rows one depth tap at a time (the first from +0.0, the others going
    on), so each plane still gets its (t, p, q) taps in the loops' order: float64 equal to the last
    bit, serial and parallel, the strided shape paired by force."""
    from reference_impl import conv_loops
    from reference_impl.algorithms import compiled

    monkeypatch.setattr(compiled, "pairs_rows", compiled.can_pair_rows)
    paired: list[int] = []
    spy_on_kernel(monkeypatch, "direct_conv3d", lambda *a: paired.append(int(a[2][13])))  # sizes[13]: pair_rows
    rng = np.random.default_rng(sum(size))
    x = rng.standard_normal((batch, channels, *size))
    weight = rng.standard_normal((channels * multiplier, 1, *kernel))
    args = (None, stride, padding, dilation, channels)
    with launch_threads(monkeypatch, threads):
        got = reference_impl.convolve(x, weight, *args, spatial_dims=3, algorithm="compiled")
    assert paired == [1]
    np.testing.assert_array_equal(got, conv_loops(x, weight, *args, spatial_dims=3))


@needs_numba
@pytest.mark.parametrize("kernel", [(2, 3, 3), (2, 5, 5)], ids=["one-pass", "three-runs"])
def test_compiled_3d_row_pairs_start_from_positive_zero(kernel, monkeypatch):
    """Paired 3-d planes start from +0.0 at the first depth tap only: all products -0.0 give +0.0."""
    paired: list[int] = []
    spy_on_kernel(monkeypatch, "direct_conv3d", lambda *a: paired.append(int(a[2][13])))
    x = np.full((1, 2, 3, kernel[1] + 1, 20), -0.0, dtype=np.float32)
    weight = np.ones((2, 1, *kernel), dtype=np.float32)
    got = reference_impl.conv3d(x, weight, None, 1, 0, 1, 2, algorithm="compiled")
    assert paired == [1]
    assert got.shape[3] == 2 and (got == 0).all() and not np.signbit(got).any()


@needs_numba
def test_rows_are_paired_where_it_measured_faster():
    """Row pairs (compiled.pairs_rows) for depthwise kernels at row stride 1, ConvNeXt's 7x7 and
    MobileNetV2's 3x3; never where the kernel cannot pair (two input channels a group, four outputs
    a group, a dilation that the row stride is no multiple of, one kernel row, one output row), nor at
    row stride 2 or with two kernel rows, where pairing measured no faster."""
    from reference_impl.algorithms.compiled import can_pair_rows, pairs_rows

    def geo(c_in, c_out, groups, kernel, size=56, stride=1, dilation=1):
        return plan_conv2d((2, c_in, size, size), (c_out, c_in // groups, *kernel), None, stride, 1, dilation, groups)

    assert pairs_rows(geo(96, 96, 96, (7, 7))) and pairs_rows(geo(144, 144, 144, (3, 3)))
    assert pairs_rows(geo(8, 24, 8, (3, 3)))  # three outputs a group
    movinet = plan_conv((1, 40, 8, 28, 28), (40, 1, 5, 3, 3), None, 1, (2, 1, 1), 1, 40, spatial_dims=3)
    assert pairs_rows(movinet)  # rows are the 3-d kernel's second-to-last axis: its depth stride is free
    assert not pairs_rows(plan_conv((1, 8, 8, 28, 28), (8, 1, 3, 3, 3), None, (1, 2, 1), 1, 1, 8, spatial_dims=3))
    assert can_pair_rows(geo(96, 96, 96, (5, 5), stride=2)) and not pairs_rows(geo(96, 96, 96, (5, 5), stride=2))
    assert can_pair_rows(geo(8, 8, 8, (2, 2))) and not pairs_rows(geo(8, 8, 8, (2, 2)))  # two rows: slower
    for unpaired in (
        geo(16, 16, 8, (3, 3)),  # two input channels a group
        geo(8, 32, 8, (3, 3)),  # four outputs a group: _add_taps_4 shares their loads
        geo(8, 8, 8, (3, 3), dilation=2),  # s_h = 1 is no multiple of d_h = 2
        geo(8, 8, 8, (1, 3)),  # one kernel row: nothing shared
        geo(8, 8, 8, (3, 3), size=1),  # one output row
    ):
        assert not can_pair_rows(unpaired) and not pairs_rows(unpaired)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_kernel_buffers_start_on_a_cache_line(dtype):
    """The kernels' buffers (compiled_kernel._aligned_zeros) start on a 64-byte boundary, whatever
    the allocator returned: an unaligned accumulator split every vector store across two cache lines
    (a process in four or five ran EfficientNet's layer at 0.9 ms instead of 0.6)."""
    from reference_impl.algorithms.compiled_kernel import _aligned_zeros

    like = np.empty(0, dtype=dtype)
    for length in (1, 7, 64, 1000):
        buffers = [_aligned_zeros(length, like) for _ in range(8)]  # several allocations, several offsets
        for buffer in buffers:
            assert buffer.dtype == dtype and buffer.shape == (length,)
            assert buffer.ctypes.data % 64 == 0
            assert not buffer.any()


@needs_numba
def test_one_thread_runs_the_serial_twin_of_each_kernel():
    """On one thread the kernels' serial twins run, at any size (no parallel launch); on more, the
    parallel ones. test_compiled_kernels_reuse_their_buffers_item_after_item checks that both give
    equal values."""
    from reference_impl.algorithms import compiled_kernel
    from reference_impl.algorithms.compiled import kernel_for

    for name in ("direct_conv", "direct_conv3d", "direct_conv_placed", "col2im_add"):
        assert kernel_for(name, 1) is getattr(compiled_kernel, f"{name}_serial")
        assert kernel_for(name, 2) is getattr(compiled_kernel, name)


@needs_numba
def test_small_calls_run_the_serial_twin_on_any_number_of_threads(monkeypatch):
    """Up to SERIAL_MAX_WORK multiply-adds a call runs serial even where numba has more threads (a
    parallel launch would cost about what it saves); above it, the parallel kernel with numba's count."""
    import numba

    from reference_impl.algorithms import compiled

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs numba on two threads")
    ran = record_variants_run(monkeypatch, "direct_conv")
    x, weight = np.ones((1, 4, 12, 12), np.float32), np.ones((4, 2, 3, 3), np.float32)  # 7200 multiply-adds
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        assert compiled.threads_for(7200) == 1 and compiled.threads_for(compiled.SERIAL_MAX_WORK + 1) == 2
        small = conv2d(x, weight, groups=2)
        monkeypatch.setattr(compiled, "SERIAL_MAX_WORK", 7199)  # the same call, one multiply-add too many
        large = conv2d(x, weight, groups=2)
    finally:
        numba.set_num_threads(before)
    assert ran == ["direct_conv_serial", "direct_conv"]
    np.testing.assert_array_equal(small, large)
    assert float(small[0, 0, 0, 0]) == 18.0  # 2 channels x 9 taps of ones
