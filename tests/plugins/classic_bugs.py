"""Classic grouped-convolution bugs, each planted into a copy of the reference.

Every function has the ``--impl`` signature (``torch.nn.functional.conv2d`` over NumPy arrays, plus
``padding_mode``) and is the reference with exactly one thing wrong, the way real kernels go wrong.
The kill-matrix test (tests/test_kill_matrix.py) shows that ``conformance run cases/`` fails every
one of them. ``BUGS`` lists them with a one-line description for the matrix.
"""

from __future__ import annotations

import numpy as np

from conformance.teaching.lesson_mistakes import first_group_input_order, interleaved_input_order
from reference_impl import conv2d, pad_input, plan_conv2d


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, (int, np.integer)) else (int(value[0]), int(value[1]))


def _as_batched(x: np.ndarray) -> tuple[np.ndarray, bool]:
    return (x[None], True) if x.ndim == 3 else (x, False)


def _conv_explicitly_padded(input, weight, bias, pads, stride, dilation, groups, padding_mode):
    """Pad (top, bottom, left, right) in the given mode ourselves, then convolve without padding."""
    x, unbatched = _as_batched(np.asarray(input))
    x = pad_input(x, pads, padding_mode)  # (N, C_in, H + top + bottom, W + left + right)
    out = conv2d(x, weight, bias, stride, 0, dilation, groups)
    return out[0] if unbatched else out


def inputs_modulo_groups(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Input channel c is assigned to group c % groups (strided) instead of c // (C_in/groups)."""
    channels = input.shape[-3]
    if groups > 0 and channels % groups == 0:  # slot g*C_g + j of the grouped layout takes channel j*G + g
        input = np.take(input, interleaved_input_order(channels, groups), axis=-3)
    return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)


def outputs_interleaved(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Output channel o is taken from group o % groups (interleaved) instead of o // (C_out/groups)."""
    out = conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)
    per_group = weight.shape[0] // groups
    order = [(o % groups) * per_group + o // groups for o in range(weight.shape[0])]
    return np.take(out, order, axis=-3)


def weight_rows_interleaved(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """The weight's output axis is split as (C_out/G, G) instead of (G, C_out/G): output channel
    g*O_g + j is computed with weight row j*G + g (but the right input group)."""
    out_channels = weight.shape[0]
    per_group = out_channels // groups
    rows = [(o % per_group) * groups + o // per_group for o in range(out_channels)]
    return conv2d(input, weight[rows], bias, stride, padding, dilation, groups, **kwargs)


def group_offset_missing(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Every group reads the first group's input channels (the g * C_in/G offset is forgotten)."""
    channels = input.shape[-3]
    if groups > 0 and channels % groups == 0:
        input = np.take(input, first_group_input_order(channels, groups), axis=-3)
    return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)


def in_channels_equal_groups_taken_as_depthwise(
    input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs
):
    """in_channels == groups is taken for depthwise with one output per group (pytorch/pytorch#54136):
    only the first output channel of each group is computed, the others stay zero."""
    out = conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)
    if input.shape[-3] == groups:
        per_group = weight.shape[0] // groups
        keep = (np.arange(weight.shape[0]) % per_group == 0)[:, None, None]  # (C_out, 1, 1)
        out = np.where(keep, out, 0).astype(out.dtype)
    return out


def depth_multiplier_interleaved(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Depthwise with multiplier m: output channel o reads input o % C_in (TensorFlow's layout)
    instead of o // m."""
    channels, out_channels = input.shape[-3], weight.shape[0]
    if groups != channels or out_channels == channels:
        return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)
    dense = np.zeros((out_channels, channels, *weight.shape[2:]), dtype=weight.dtype)  # (C_out, C_in, kH, kW)
    dense[np.arange(out_channels), np.arange(out_channels) % channels] = weight[:, 0]
    return conv2d(input, dense, bias, stride, padding, dilation, 1, **kwargs)


def kernel_flipped(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """A true convolution (kernel rotated 180 degrees) instead of torch's cross-correlation."""
    return conv2d(
        input, np.ascontiguousarray(weight[..., ::-1, ::-1]), bias, stride, padding, dilation, groups, **kwargs
    )


def stride_dilation_swapped(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """The stride is used as the dilation and the dilation as the stride."""
    return conv2d(input, weight, bias, dilation, padding, stride, groups, **kwargs)


def hw_pairs_swapped(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """(h, w) pairs for stride, padding and dilation are read as (w, h)."""

    def swap(value):
        return (value[1], value[0]) if isinstance(value, (tuple, list)) else value

    return conv2d(input, weight, bias, swap(stride), swap(padding), swap(dilation), groups, **kwargs)


def same_padding_extra_before(
    input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"
):
    """padding='same' with an odd total puts the extra row/column before (top/left), not after."""
    if padding != "same":
        return conv2d(input, weight, bias, stride, padding, dilation, groups, padding_mode)
    pads = []
    for kernel, dil in zip(weight.shape[2:], _pair(dilation), strict=False):
        total = dil * (kernel - 1)
        pads += [total - total // 2, total // 2]  # the bug: the larger half first
    return _conv_explicitly_padded(input, weight, bias, tuple(pads), stride, dilation, groups, padding_mode)


def same_padding_ignores_dilation(
    input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"
):
    """padding='same' pads k - 1 in total instead of dilation * (k - 1)."""
    if padding != "same":
        return conv2d(input, weight, bias, stride, padding, dilation, groups, padding_mode)
    pads = []
    for kernel in weight.shape[2:]:
        total = kernel - 1
        pads += [total // 2, total - total // 2]
    return _conv_explicitly_padded(input, weight, bias, tuple(pads), stride, dilation, groups, padding_mode)


def bias_per_group(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """One bias per group: output channel o gets bias[o // (C_out/groups)] instead of bias[o]."""
    if bias is None:
        return conv2d(input, weight, None, stride, padding, dilation, groups, **kwargs)
    per_group = weight.shape[0] // groups
    return conv2d(
        input, weight, bias[np.arange(weight.shape[0]) // per_group], stride, padding, dilation, groups, **kwargs
    )


def reflect_as_replicate(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """padding_mode='reflect' pads by repeating the edge (replicate)."""
    mode = "replicate" if padding_mode == "reflect" else padding_mode
    return conv2d(input, weight, bias, stride, padding, dilation, groups, mode)


def output_size_rounds_up(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """An off-by-one output size: (padded - span) / stride is rounded up, not down, so a stride that
    does not divide evenly yields one extra row/column (reading zeros past the end)."""
    geometry = plan_conv2d(
        input.shape, weight.shape, None if bias is None else bias.shape, stride, padding, dilation, groups, padding_mode
    )
    top, bottom, left, right = geometry.pads
    extra = [
        (-(padded - span)) % step
        for padded, span, step in zip(geometry.padded_size, geometry.effective_kernel, geometry.stride, strict=False)
    ]
    x, unbatched = _as_batched(np.asarray(input))
    x = pad_input(x, geometry.pads, geometry.padding_mode)  # (N, C, H_pad, W_pad)
    x = np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))  # the rounding-up rows/columns
    out = conv2d(x, weight, bias, stride, 0, dilation, groups)
    return out[0] if unbatched else out


def accepts_indivisible_channels(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """Channels not divisible by groups are accepted silently: the leftover input channels are
    dropped and the leftover output channels are zero."""
    in_channels, out_channels = input.shape[-3], weight.shape[0]
    if groups <= 0 or (in_channels % groups == 0 and out_channels % groups == 0):
        return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)
    used_in = (in_channels // groups) * groups
    used_out = (out_channels // groups) * groups
    x = np.take(input, np.arange(used_in), axis=-3)
    b = None if bias is None else bias[:used_out]
    out = conv2d(x, weight[:used_out], b, stride, padding, dilation, groups, **kwargs)
    missing = list(out.shape)
    missing[-3] = out_channels - used_out
    return np.concatenate([out, np.zeros(missing, dtype=out.dtype)], axis=-3)


def empty_batch_fails(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
    """A batch of 0 raises instead of returning an empty output (facebookresearch/detectron2#772)."""
    if input.ndim == 4 and input.shape[0] == 0:
        raise RuntimeError("std::exception")
    return conv2d(input, weight, bias, stride, padding, dilation, groups, **kwargs)


# (function, what is wrong): the kill matrix's rows.
BUGS = [
    (inputs_modulo_groups, "input channel c read by group c % groups"),
    (outputs_interleaved, "output channels interleaved across groups"),
    (weight_rows_interleaved, "weight rows split as (C_out/G, G)"),
    (group_offset_missing, "every group reads group 0's inputs"),
    (in_channels_equal_groups_taken_as_depthwise, "in_channels == groups taken as depthwise (one output per group)"),
    (depth_multiplier_interleaved, "depth multiplier outputs interleaved (o % C_in)"),
    (kernel_flipped, "kernel flipped (convolution, not correlation)"),
    (stride_dilation_swapped, "stride and dilation swapped"),
    (hw_pairs_swapped, "(h, w) pairs read as (w, h)"),
    (same_padding_extra_before, "'same' padding's extra row/column before, not after"),
    (same_padding_ignores_dilation, "'same' padding ignores dilation"),
    (bias_per_group, "one bias per group"),
    (reflect_as_replicate, "reflect padding done as replicate"),
    (output_size_rounds_up, "output size rounded up (off by one)"),
    (accepts_indivisible_channels, "channels not divisible by groups accepted"),
    (empty_batch_fails, "an empty batch raises"),
]

# The bugs of the other five ops, one plug-in module each (tests/plugins/nd_bugs/NAME.py): the kill
# matrix takes a module name where it takes a conv2d function.
from tests.plugins.nd_bugs import BUGS as ND_BUGS  # noqa: E402

ALL_BUGS = BUGS + ND_BUGS
