"""The harness's geometry of a convolution, in one place: the ops and their names, the padding
modes, how an int-or-tuple argument spreads over the spatial dimensions, which group a channel
belongs to, what "depthwise" means, and the output size per op.

The case model, explain's sums, the pictures, the feature table and the fuzzer's strategies all
use these. The from-scratch reference (``reference_impl/geometry.py``) keeps its own on purpose:
an oracle that shares code with what it checks proves less (docs/layout.md).

>>> op_name("ConvTranspose2d"), per_dim(3, 2), group_of(5, channels=6, groups=3)
('conv_transpose2d', (3, 3), 2)
>>> output_length(5, kernel=3, stride=2, padding=(1, 1)), output_length(5, kernel=3, stride=2, transposed=True)
(3, 11)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# The torch.nn modules a case can name as conv.type, and the torch.nn.functional op of each (the
# name a plug-in module defines), in the same order.
OP_TYPES = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
OP_NAMES = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")  # padding_mode
PADDING_STRINGS = ("same", "valid")  # padding given as a word
DENSE, DEPTHWISE, GROUPED = "dense", "depthwise", "grouped"


def is_transposed(op_type: str) -> bool:
    return op_type.startswith("ConvTranspose")


def spatial_dims_of(op_type: str) -> int:
    """1, 2 or 3: the d of ConvNd / ConvTransposeNd."""
    return int(op_type[-2])


def op_name(op_type: str) -> str:
    """The ``torch.nn.functional`` name of a ``torch.nn`` module: Conv2d -> conv2d,
    ConvTranspose1d -> conv_transpose1d."""
    dims = spatial_dims_of(op_type)
    return f"conv_transpose{dims}d" if is_transposed(op_type) else f"conv{dims}d"


def per_dim(value: Any, dims: int) -> tuple[Any, ...]:
    """An int-or-sequence argument as one value per spatial dimension (a one-element sequence is
    spread too, as torch does).

    >>> per_dim(2, 3), per_dim([1, 2], 2), per_dim((4,), 2)
    ((2, 2, 2), (1, 2), (4, 4))
    """
    if isinstance(value, (list, tuple)):
        values = tuple(value)
        return values * dims if len(values) == 1 else values
    return (value,) * dims


def group_of(channel: Any, *, channels: int, groups: int) -> Any:
    """The group of ``channel`` (an int, or an integer array of them) among ``channels`` cut into
    ``groups`` equal blocks, on the input or the output side."""
    return channel // (channels // groups)


def layer_kind(groups: int, in_channels: int) -> str:
    """``dense`` (groups = 1), ``depthwise`` (groups = in_channels > 1: each output reads one input
    channel; out_channels may be a multiple of it, the depth multiplier) or ``grouped``.

    >>> layer_kind(1, 8), layer_kind(8, 8), layer_kind(4, 8)
    ('dense', 'depthwise', 'grouped')
    """
    if groups == 1:
        return DENSE
    return DEPTHWISE if groups == in_channels else GROUPED


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) of ``padding='same'`` on one axis: dilation·(kernel − 1) in all, the odd one
    after, as torch does."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def output_length(
    length: int,
    kernel: int,
    stride: int = 1,
    padding: tuple[int, int] = (0, 0),
    dilation: int = 1,
    output_padding: int = 0,
    transposed: bool = False,
) -> int:
    """The output size along one spatial axis of length ``length`` (``padding``: before, after).

    Convolution: ``(L + before + after - d(k-1) - 1) // s + 1``; transposed:
    ``(L - 1)s - 2p + d(k-1) + output_padding + 1`` (p: ``padding[0]``, a transposed op pads both sides alike).
    """
    span = dilation * (kernel - 1) + 1
    if transposed:
        return (length - 1) * stride - 2 * padding[0] + span + output_padding
    return (length + padding[0] + padding[1] - span) // stride + 1


def output_lengths(
    lengths: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    output_padding: Sequence[int],
    transposed: bool,
) -> tuple[int, ...]:
    """:func:`output_length` for every spatial axis."""
    return tuple(
        output_length(n, k, s, p, d, op, transposed)
        for n, k, s, p, d, op in zip(lengths, kernel, stride, padding, dilation, output_padding, strict=True)
    )
