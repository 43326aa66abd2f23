"""Metamorphic relations: what ``groups`` means, checked without trusting torch.

Each relation re-runs the *implementation under test* on inputs derived from the case and
compares it with its own grouped output, so a plug-in (``--impl``) is held to the definition of
grouping even where torch itself might be wrong:

(a) block-diagonal: the grouped convolution equals a ``groups=1`` convolution whose weight is the
    grouped weight spread into a block-diagonal dense weight (zeros between the groups);
(b) per-group concatenation: it equals the ``groups`` independent convolutions of the channel
    slices, concatenated along the channel axis;
(c) permutation: permuting the input channels *within* each group, together with the matching
    axis of the weight, leaves the output unchanged.

The same three hold for every op (1-, 2- and 3-d, convolutions and transposed ones); only where
the input channels sit in the weight differs: its second axis for a convolution
``(C_out, C_in/G, *k)``, its first for a transposed one ``(C_in, C_out/G, *k)``.

(a) and (b) need ``groups > 1`` (with one group they are identities); (c) needs at least two input
channels per group. Big cases are checked on a crop (see :func:`_metamorphic_input`): the
block-diagonal weight costs ``groups`` times the multiply-adds of the grouped layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from conformance.cases.schema import Case
from conformance.judging.verdict import Check
from conformance.running.case_run import CaseRun

MAX_DENSE_MULTIPLY_ADDS = 2_000_000  # above this, the relations run on a crop of the input
CROP_OUTPUT_ROWS = 4  # a crop keeps enough input for about this many output rows/columns
MAX_GROUP_CALLS = 32  # (b) checks at most this many groups, spread from first to last


def metamorphic_checks(run: CaseRun) -> Iterable[Check]:
    """Relations (a), (b) and (c) for one case, each as its own check."""
    conv = run.case.conv
    if run.impl.output is None or run.impl.output.size == 0 or not conv.is_divisible:
        return []
    in_per_group = conv.in_channels // conv.groups
    if conv.groups == 1 and in_per_group < 2:
        return []
    x, baseline, note = _metamorphic_input(run)
    if baseline is None:
        return [Check("metamorphic", False, f"metamorphic: {note}")]
    checks = []
    if conv.groups > 1:
        checks.append(_block_diagonal(run, x, baseline, note))
        checks.append(_per_group_concatenation(run, x, baseline, note))
    if in_per_group >= 2:
        checks.append(_permutation_within_groups(run, x, baseline, note))
    return checks


def block_diagonal_weight(weight: np.ndarray, groups: int) -> np.ndarray:
    """(A, B/G, *k) -> the dense (A, B, *k) weight with the groups on the diagonal. A convolution's
    weight is (C_out, C_in/G, *k), a transposed one's (C_in, C_out/G, *k): either way the first
    axis is split into G groups and each group's rows own one block of the second.

    >>> w = np.arange(1.0, 5.0).reshape(2, 2, 1, 1)          # 2 groups, 1 output and 2 inputs each
    >>> block_diagonal_weight(w, 2)[:, :, 0, 0].tolist()
    [[1.0, 2.0, 0.0, 0.0], [0.0, 0.0, 3.0, 4.0]]
    """
    first, second_per_group, *kernel = weight.shape
    first_per_group = first // groups
    dense = np.zeros((groups, first_per_group, groups, second_per_group, *kernel), dtype=weight.dtype)
    blocks = weight.reshape(groups, first_per_group, second_per_group, *kernel)  # (G, A/G, B/G, *k)
    group_index = np.arange(groups)
    dense[group_index, :, group_index] = blocks  # (G, A/G, G, B/G, *k), zero off the diagonal
    return dense.reshape(first, groups * second_per_group, *kernel)


def within_group_permutation(in_channels: int, groups: int) -> np.ndarray:
    """For each input channel, the channel it takes its data from: group g rotates its channels
    by 1 + g mod (C/G - 1) places, so neighbouring groups are permuted differently.

    >>> within_group_permutation(6, 2).tolist()             # 3 channels per group: rotate by 1, then 2
    [1, 2, 0, 5, 3, 4]
    """
    per_group = in_channels // groups
    channel = np.arange(in_channels)
    group, within = channel // per_group, channel % per_group
    shift = 1 + group % max(per_group - 1, 1)
    return group * per_group + (within + shift) % per_group


def _with_conv(case: Case, **changes) -> Case:
    return dataclasses.replace(case, conv=dataclasses.replace(case.conv, **changes))


def _metamorphic_input(run: CaseRun) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The input the relations use, the implementation's grouped output on it, and a note.

    Small cases use the case's own input and output. When the block-diagonal convolution would
    cost over MAX_DENSE_MULTIPLY_ADDS, the relations run on the first batch element and a crop of
    the first spatial positions that yields about CROP_OUTPUT_ROWS outputs along each axis (one more
    call): for a convolution the kernel's span plus that many strides, for a transposed one that
    many input positions.
    """
    case, x, output = run.case, run.tensors.input, run.impl.output
    conv = case.conv
    kernel_taps = int(np.prod(conv.kernel_dims))
    if conv.transposed:  # every input element meets every weight tap of its row's C_out outputs
        dense_cost = x.size * conv.out_channels * kernel_taps
    else:  # every output element sums C_in inputs per tap
        assert output is not None  # (narrowing: the relations run on a computed output)
        dense_cost = output.size * conv.in_channels * kernel_taps
    if dense_cost <= MAX_DENSE_MULTIPLY_ADDS:
        return x, output, ""
    dims = conv.spatial_dims
    crop = []
    for size, kernel, stride, dilation, padding in zip(
        x.shape[-dims:],
        conv.kernel_dims,
        conv.per_dim("stride"),
        conv.per_dim("dilation"),
        conv.per_dim("padding"),
        strict=False,
    ):
        span = dilation * (kernel - 1) + 1
        if conv.transposed:
            wanted = CROP_OUTPUT_ROWS
        else:  # both sides' padding counts towards the span; a padded side needs a pixel more than its padding
            pads = (span - 1, (span - 1 + 1) // 2) if conv.padding == "same" else (2 * padding, padding)
            wanted = max(span + stride * (CROP_OUTPUT_ROWS - 1) - pads[0], pads[1] + 1, 1)
        crop.append(min(size, wanted))
    spatial = tuple(slice(0, size) for size in crop)
    cropped = x[(slice(0, 1), slice(None)) + spatial] if x.ndim == dims + 2 else x[(slice(None),) + spatial]
    cropped = np.ascontiguousarray(cropped)
    note = f" (on a crop: input {list(cropped.shape)} of {list(x.shape)})"
    try:
        baseline = run.implementation.forward(case, cropped, run.tensors.weight, run.tensors.bias)
    except Exception as exc:
        return (
            cropped,
            None,
            f"the implementation refused the cropped input {list(cropped.shape)}: {type(exc).__name__}: {exc}",
        )
    return cropped, np.asarray(baseline), note


def _compare(
    run: CaseRun,
    name: str,
    x: np.ndarray,
    actual: np.ndarray,
    expected: np.ndarray,
    expected_name: str,
    note: str,
    explanation: str,
    actual_name: str = "",
    output_channels: np.ndarray | None = None,
) -> Check:
    """``actual``: the implementation's output on input ``x`` (``actual_name``, default "groups=G");
    ``expected``: what the relation predicts from another call of the same implementation."""
    implementation = run.implementation.name
    comparison = run.compare_outputs(
        actual,
        expected,
        x=x,
        output_channels=output_channels,
        actual_name=f"{implementation} {actual_name or f'groups={run.case.conv.groups}'}",
        expected_name=f"{implementation} {expected_name}",
    )
    summary = f"metamorphic ({name}): {comparison.summary()}{note}"
    details = [] if comparison.passed else [explanation]
    return Check(f"metamorphic:{name}", comparison.passed, summary, details, comparison)


def _refused(name: str, what: str, exc: Exception) -> Check:
    return Check(
        f"metamorphic:{name}",
        False,
        f"metamorphic ({name}): the implementation refused {what}: {type(exc).__name__}: {exc}",
    )


def _block_diagonal(run: CaseRun, x: np.ndarray, grouped: np.ndarray, note: str) -> Check:
    case = run.case
    dense = block_diagonal_weight(run.tensors.weight, case.conv.groups)
    try:
        predicted = run.implementation.forward(_with_conv(case, groups=1), x, dense, run.tensors.bias)
    except Exception as exc:
        return _refused("block-diagonal", "the groups=1 layer with the block-diagonal weight", exc)
    return _compare(
        run,
        "block-diagonal",
        x,
        grouped,
        np.asarray(predicted),
        "groups=1 with block-diagonal weight",
        note,
        "a groups=1 convolution whose weight is zero outside the diagonal blocks must give the "
        "grouped result: the implementation's grouping mixes or misplaces channels",
    )


def _per_group_concatenation(run: CaseRun, x: np.ndarray, grouped: np.ndarray, note: str) -> Check:
    case, conv = run.case, run.case.conv
    groups = conv.groups
    channel_axis = -(conv.spatial_dims + 1)
    in_per_group, out_per_group = conv.in_channels // groups, conv.out_channels // groups
    # the weight rows of group g: its output channels (convolution) or its input channels (transposed)
    rows_per_group = in_per_group if conv.transposed else out_per_group
    checked = sorted({int(round(g)) for g in np.linspace(0, groups - 1, min(groups, MAX_GROUP_CALLS))})
    slice_case = _with_conv(case, in_channels=in_per_group, out_channels=out_per_group, groups=1)
    # Unchecked groups keep the grouped output itself, so the comparison covers the whole tensor
    # (shape, bound and worst index in the case's own channel numbering).
    predicted = np.array(grouped, copy=True)
    for g in checked:
        x_slice = np.take(x, np.arange(g * in_per_group, (g + 1) * in_per_group), axis=channel_axis)  # (N, C/G, *s)
        w_slice = run.tensors.weight[g * rows_per_group : (g + 1) * rows_per_group]
        b_slice = None if run.tensors.bias is None else run.tensors.bias[g * out_per_group : (g + 1) * out_per_group]
        try:
            piece = np.asarray(run.implementation.forward(slice_case, np.ascontiguousarray(x_slice), w_slice, b_slice))
        except Exception as exc:
            return _refused("per-group", f"group {g}'s slice as a groups=1 layer", exc)
        target = [slice(None)] * predicted.ndim
        target[channel_axis] = slice(g * out_per_group, (g + 1) * out_per_group)
        if piece.shape != predicted[tuple(target)].shape:
            return Check(
                "metamorphic:per-group",
                False,
                f"metamorphic (per-group): group {g}'s slice as a groups=1 layer gave shape "
                f"{list(piece.shape)}, expected {list(predicted[tuple(target)].shape)}",
            )
        predicted[tuple(target)] = piece
    if len(checked) == groups:
        which = "all groups"
    elif len(checked) <= 8:
        which = f"groups {', '.join(map(str, checked))} of {groups}"
    else:
        which = f"{len(checked)} of {groups} groups, evenly spread from 0 to {groups - 1}"
    rows = "input" if conv.transposed else "output"
    return _compare(
        run,
        "per-group",
        x,
        grouped,
        predicted,
        f"per-group groups=1 slices ({which})",
        note,
        f"group g's output channels must equal a groups=1 {conv.type} of input channels "
        f"g*C_in/G ... (g+1)*C_in/G - 1 with the weight rows of its {rows} channels",
    )


def _permutation_within_groups(run: CaseRun, x: np.ndarray, grouped: np.ndarray, note: str) -> Check:
    case, conv = run.case, run.case.conv
    permutation = within_group_permutation(conv.in_channels, conv.groups)
    in_per_group, out_per_group = conv.in_channels // conv.groups, conv.out_channels // conv.groups
    x_permuted = np.ascontiguousarray(np.take(x, permutation, axis=-(conv.spatial_dims + 1)))
    weight = run.tensors.weight
    kernel_axes = (None,) * conv.spatial_dims
    if conv.transposed:
        # Row c of a transposed weight is input channel c: it moves with its channel.
        weight_permuted = np.ascontiguousarray(weight[permutation])
        axis_words = "first axis (its input channels)"
    else:
        # Output channel o (group g) must read the moved channels in the same moved order.
        within = permutation.reshape(conv.groups, in_per_group) % in_per_group  # (G, C/G): source index per slot
        rows = np.repeat(within, out_per_group, axis=0)  # (C_out, C/G)
        weight_permuted = np.take_along_axis(weight, rows[(slice(None), slice(None)) + kernel_axes], axis=1)
        axis_words = "second axis"
    try:
        predicted = run.implementation.forward(case, x_permuted, weight_permuted, run.tensors.bias)
    except Exception as exc:
        return _refused("permutation", "the channel-permuted input", exc)
    return _compare(
        run,
        "permutation",
        x,
        np.asarray(predicted),
        grouped,
        "unpermuted",
        note,
        f"permuting input channels within each group, with the same permutation of the weight's "
        f"{axis_words}, must not change the output: the implementation reads channels from the wrong "
        "places within a group",
        actual_name="channels permuted within groups",
    )
