"""The index mistakes a learner (or a kernel) makes with ``groups``, as wrong outputs of a case.

The lesson's exercises recognise a wrong prediction that equals one of these and name the mistake;
"spot the bug" shows one and asks which. Each mistake is the reference computation with exactly one
index rule wrong, the same rules the kill matrix plants as classic bugs (tests/plugins/classic_bugs.py
takes its channel orders from here):

* ``groups_ignored``: every output channel reads every input channel, its group's kernels reused
  for each group (the values of ``groups=1``);
* ``interleaved_groups``: input channel ``c`` is put in group ``c % groups`` instead of
  ``c // (in_channels/groups)``;
* ``weight_over_all_inputs``: the weight is read as ``(out, in)`` over all inputs, so ``W[o, j]``
  multiplies input channel ``j`` instead of ``g·in_channels/groups + j`` (the group offset forgotten);
* ``transposed_weight_as_conv``: a transposed convolution's weight ``(in, out/G, …)`` read as a
  convolution's ``(out, in/G, …)``.

    >>> interleaved_input_order(6, 3)
    [0, 3, 1, 4, 2, 5]
    >>> first_group_input_order(6, 3)
    [0, 1, 0, 1, 0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import reference_impl
from conformance.cases.schema import Case
from conformance.running.runner import CaseTensors

MISTAKES = {
    "groups_ignored": "these are the values of groups=1: each output summed every input channel, not only the "
    "channels of its group",
    "interleaved_groups": "these are the values of interleaved groups: you put input channel c in group c % groups, "
    "but a group is a block of consecutive channels (c // (in_channels/groups))",
    "weight_over_all_inputs": "these are the values of reading the weight as (out, in) over all inputs: W[o, j] "
    "multiplies input channel g·in_channels/groups + j of its group, not input channel j",
    "transposed_weight_as_conv": "these are the values of reading a transposed weight as (out, in/G): its rows "
    "are input channels, (in, out/G, …)",
}


@dataclass(frozen=True)
class WrongOutput:
    """One mistake's output for a case: ``name`` (a key of MISTAKES) and the float64 ``output``."""

    name: str
    output: np.ndarray

    @property
    def explanation(self) -> str:
        return MISTAKES[self.name]


def interleaved_input_order(channels: int, groups: int) -> list[int]:
    """For each slot of the grouped layout, the input channel read when groups are interleaved:
    slot ``g·C_g + j`` takes channel ``j·G + g``."""
    per_group = channels // groups
    return [(slot % per_group) * groups + slot // per_group for slot in range(channels)]


def first_group_input_order(channels: int, groups: int) -> list[int]:
    """For each slot, the input channel read when the group offset is forgotten: slot ``g·C_g + j``
    takes channel ``j``, so every group reads group 0's inputs."""
    per_group = channels // groups
    return [slot % per_group for slot in range(channels)]


def _run(case: Case, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, groups: int) -> np.ndarray:
    conv = case.conv
    kwargs = dict(conv.functional_kwargs(), groups=groups)
    op = getattr(reference_impl, conv.functional_name)
    return np.asarray(op(x, weight, bias, **kwargs), dtype=np.float64)


def correct_output(case: Case, tensors: CaseTensors) -> np.ndarray:
    """The case's output from the reference, in float64."""
    return _run(case, *_float64(tensors), case.conv.groups)


def _float64(tensors: CaseTensors) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    bias = None if tensors.bias is None else np.asarray(tensors.bias, dtype=np.float64)
    return np.asarray(tensors.input, dtype=np.float64), np.asarray(tensors.weight, dtype=np.float64), bias


def wrong_outputs(case: Case, tensors: CaseTensors) -> list[WrongOutput]:
    """The mistakes that apply to ``case`` and change its output, each with its wrong output.

    A mistake that gives the right output (or the same output as an earlier mistake) is left out:
    it could not be told apart from the answer it imitates.
    """
    conv = case.conv
    x, weight, bias = _float64(tensors)
    groups, channel_axis = conv.groups, x.ndim - conv.spatial_dims - 1
    outputs: list[WrongOutput] = []
    if groups > 1 and conv.is_divisible:
        # conv (C_out, C_in/G, …): each kernel reused for every input group; transposed
        # (C_in, C_out/G, …): each input row feeds every output group, not only its own.
        dense = np.concatenate([weight] * groups, axis=1)
        outputs.append(WrongOutput("groups_ignored", _run(case, x, dense, bias, 1)))
        if not conv.transposed:
            channels = x.shape[channel_axis]
            interleaved = np.take(x, interleaved_input_order(channels, groups), axis=channel_axis)
            outputs.append(WrongOutput("interleaved_groups", _run(case, interleaved, weight, bias, groups)))
            offsetless = np.take(x, first_group_input_order(channels, groups), axis=channel_axis)
            outputs.append(WrongOutput("weight_over_all_inputs", _run(case, offsetless, weight, bias, groups)))
    if conv.transposed and conv.is_divisible:
        as_conv = _transposed_weight_read_as_conv(case, weight)
        if as_conv is not None:
            outputs.append(WrongOutput("transposed_weight_as_conv", _run(case, x, as_conv, bias, groups)))
    right = correct_output(case, tensors)
    kept: list[WrongOutput] = []
    for wrong in outputs:
        seen = [right] + [k.output for k in kept]
        if wrong.output.shape == right.shape and not any(np.allclose(wrong.output, s) for s in seen):
            kept.append(wrong)
    return kept


def _transposed_weight_read_as_conv(case: Case, weight: np.ndarray) -> np.ndarray | None:
    """The stored numbers, in order, read as a convolution's ``(C_out, C_in/G, …)`` weight, then
    put where a transposed convolution would use them: the learner's weight in transposed layout."""
    conv = case.conv
    c_in, c_out, groups = conv.in_channels, conv.out_channels, conv.groups
    in_per_group, out_per_group = c_in // groups, c_out // groups
    kernel = weight.shape[2:]
    if weight.size != c_out * in_per_group * int(np.prod(kernel, dtype=np.int64)):
        return None
    read = weight.reshape(c_out, in_per_group, *kernel)  # what the learner believes W[o, j] is
    placed = np.empty_like(weight)  # (C_in, C_out/G, …)
    for c in range(c_in):
        g = c // in_per_group
        for j in range(out_per_group):
            placed[c, j] = read[g * out_per_group + j, c - g * in_per_group]
    return placed
