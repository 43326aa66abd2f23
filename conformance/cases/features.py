"""What a case exercises: a small table of named predicates over :class:`Case`.

Each row of :data:`FEATURES` is one cell of the coverage grid (``conformance coverage``): an
axis ("groups", "padding mode", ...), a cell name, and a predicate. Cells of one axis need not
exclude each other (a depthwise case with padding 'same' counts once on each axis). To cover a
new part of the space, add a row. Rows with ``on_error_cases`` count only the cases marked
``expect_error`` (the :data:`ERROR_KINDS` rows say *why* a layer is invalid); the others count
only the cases whose layer is valid.

The ``op`` axis counts the cases of each torch.nn module (Conv1d ... ConvTranspose3d);
:func:`conformance.tools.coverage.coverage_by_op` crosses it with every other cell.

Fields that newer case formats may add (``backward``, more dtypes) are read defensively, so
the table works with or without them.

>>> from conformance.cases.schema import ConvConfig
>>> sorted(error_kinds_of(ConvConfig(4, 6, 1, groups=4), (1, 4, 3, 3)))
['out_channels not divisible by groups']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from conformance.cases.geometry import DEPTHWISE, PADDING_MODES, PADDING_STRINGS, layer_kind
from conformance.cases.schema import DTYPES, Case, ConvConfig


@dataclass(frozen=True)
class Feature:
    """One cell of the coverage grid."""

    axis: str
    cell: str
    applies: Callable[[Case], bool]
    on_error_cases: bool | None = False  # None: counts valid and error cases alike (the op axis)


def _sizes(value: Any, dims: int) -> tuple[Any, ...]:
    """An int or a per-axis list as one value per spatial axis; anything else ``dims`` times
    (predicates then just say False)."""
    if isinstance(value, (tuple, list)) and len(value) == dims:
        return tuple(value)
    return (value,) * dims


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def pads_of(conv: ConvConfig) -> tuple[int, ...] | None:
    """(before, after) padding of each spatial axis, flat, as torch applies it (2-d: top, bottom,
    left, right); None if the padding is malformed.

    'same' pads dilation·(k − 1) in total per axis, the odd row/column after (as torch does).

    >>> pads_of(ConvConfig(1, 1, (2, 3), padding="same"))
    (0, 1, 1, 1)
    """
    dims = conv.spatial_dims
    if conv.padding == "valid":
        return (0,) * (2 * dims)
    if conv.padding == "same":
        pads: list[int] = []
        for k, d in zip(_sizes(conv.kernel_size, dims), _sizes(conv.dilation, dims), strict=False):
            if not (_is_int(k) and _is_int(d)):
                return None
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    sizes = _sizes(conv.padding, dims)
    if not all(_is_int(p) for p in sizes):
        return None
    return tuple(p for size in sizes for p in (size, size))


def _spatial(conv: ConvConfig, input_shape: Sequence[int]) -> tuple[int, ...] | None:
    dims = conv.spatial_dims
    return tuple(input_shape[-dims:]) if len(input_shape) in (dims + 1, dims + 2) else None


def _input_channels(conv: ConvConfig, input_shape: Sequence[int]) -> int | None:
    dims = conv.spatial_dims
    return input_shape[-dims - 1] if len(input_shape) in (dims + 1, dims + 2) else None


# --- why a layer is invalid: predicates over the layer and the input shape -------------------


def _not_divisible(count: Callable[[ConvConfig], int]) -> Callable[[ConvConfig, Sequence[int]], bool]:
    return lambda conv, shape: conv.groups > 0 and count(conv) % conv.groups != 0


def _kernel_too_large(conv: ConvConfig, input_shape: Sequence[int]) -> bool:
    """A convolution's dilated kernel must fit the padded input (a transposed one has no such rule)."""
    pads, spatial = pads_of(conv), _spatial(conv, input_shape)
    if conv.transposed or pads is None or spatial is None or min(pads) < 0:
        return False
    dims = conv.spatial_dims
    sizes = [size + pads[2 * axis] + pads[2 * axis + 1] for axis, size in enumerate(spatial)]
    for padded, k, d in zip(sizes, _sizes(conv.kernel_size, dims), _sizes(conv.dilation, dims), strict=False):
        if k > 0 and d > 0 and d * (k - 1) + 1 > padded:
            return True
    return False


def _padding_too_large_for(mode: str) -> Callable[[ConvConfig, Sequence[int]], bool]:
    """reflect needs padding < size; circular may wrap at most once (padding <= size)."""

    def check(conv: ConvConfig, input_shape: Sequence[int]) -> bool:
        pads, spatial = pads_of(conv), _spatial(conv, input_shape)
        if conv.transposed or conv.padding_mode != mode or pads is None or spatial is None:
            return False
        largest = [(max(pads[2 * axis], pads[2 * axis + 1]), size) for axis, size in enumerate(spatial)]
        if mode == "reflect":
            return any(pad >= size for pad, size in largest)
        return any(pad > size for pad, size in largest)

    return check


def _output_padding_too_large(conv: ConvConfig, shape: Sequence[int]) -> bool:
    """torch: each axis's output_padding must be smaller than its stride or its dilation."""
    if not conv.transposed:
        return False
    dims = conv.spatial_dims
    return any(
        _is_int(o) and _is_int(s) and _is_int(d) and o >= s and o >= d
        for o, s, d in zip(
            _sizes(conv.output_padding, dims), _sizes(conv.stride, dims), _sizes(conv.dilation, dims), strict=False
        )
    )


ERROR_PREDICATES: dict[str, Callable[[ConvConfig, Sequence[int]], bool]] = {
    "in_channels not divisible by groups": _not_divisible(lambda conv: conv.in_channels),
    "out_channels not divisible by groups": _not_divisible(lambda conv: conv.out_channels),
    "groups <= 0": lambda conv, shape: conv.groups <= 0,
    "stride <= 0": lambda conv, shape: min(_sizes(conv.stride, conv.spatial_dims)) <= 0,
    "dilation <= 0": lambda conv, shape: min(_sizes(conv.dilation, conv.spatial_dims)) <= 0,
    "kernel_size <= 0": lambda conv, shape: min(_sizes(conv.kernel_size, conv.spatial_dims)) <= 0,
    "negative padding": lambda conv, shape: min(pads_of(conv) or (0,)) < 0,
    "unknown padding string or mode": lambda conv, shape: (
        (isinstance(conv.padding, str) and conv.padding not in PADDING_STRINGS)
        or conv.padding_mode not in PADDING_MODES
    ),
    "padding 'same' with stride > 1": lambda conv, shape: (
        conv.padding == "same" and max(_sizes(conv.stride, conv.spatial_dims)) > 1
    ),
    "kernel larger than padded input": _kernel_too_large,
    "reflect padding >= input size": _padding_too_large_for("reflect"),
    "circular padding wraps more than once": _padding_too_large_for("circular"),
    "input channels != in_channels": lambda conv, shape: (
        _input_channels(conv, shape) is not None and _input_channels(conv, shape) != conv.in_channels
    ),
    "input rank not the op's (Conv2d: 3-D or 4-D)": lambda conv, shape: (
        len(shape) not in (conv.spatial_dims + 1, conv.spatial_dims + 2)
    ),
    "output_padding not smaller than stride or dilation": _output_padding_too_large,
    "transposed with padding_mode other than zeros": lambda conv, shape: (
        conv.transposed and conv.padding_mode in PADDING_MODES and conv.padding_mode != "zeros"
    ),
}


def error_kinds_of(conv: ConvConfig, input_shape: Sequence[int]) -> set[str]:
    """Every reason (a key of :data:`ERROR_PREDICATES`) why torch refuses this layer and input."""
    return {kind for kind, invalid in ERROR_PREDICATES.items() if invalid(conv, input_shape)}


# --- what a valid case exercises -------------------------------------------------------------


def _groups_cells() -> list[Feature]:
    def channels(case: Case) -> tuple[int, int, int]:
        return case.conv.groups, case.conv.in_channels, case.conv.out_channels

    def depthwise(case: Case) -> bool:  # geometry.layer_kind's depthwise, one output per input channel
        g, c_in, c_out = channels(case)
        return layer_kind(g, c_in) == DEPTHWISE and c_out == c_in

    def depth_multiplier(case: Case) -> bool:  # depthwise, k outputs per input channel
        g, c_in, c_out = channels(case)
        return layer_kind(g, c_in) == DEPTHWISE and c_out > c_in and c_out % c_in == 0

    return [
        Feature("groups", "groups = 1 (dense)", lambda c: c.conv.groups == 1),
        Feature("groups", "1 < groups < in_channels", lambda c: 1 < c.conv.groups < c.conv.in_channels),
        Feature("groups", "depthwise (groups = in = out channels)", depthwise),
        Feature("groups", "depth multiplier (groups = in, out = k x in)", depth_multiplier),
        # Interleaved or permuted output channels only show with two outputs or more per group.
        Feature(
            "groups",
            "groups > 1, several outputs per group",
            lambda c: c.conv.groups > 1 and c.conv.out_channels // c.conv.groups > 1,
        ),
    ]


def _padded(case: Case) -> bool:
    return any(pad > 0 for pad in pads_of(case.conv) or ())


def _per_axis(case: Case, key: str) -> tuple[Any, ...]:
    return _sizes(getattr(case.conv, key), case.conv.spatial_dims)


def _differs(key: str) -> Callable[[Case], bool]:
    def check(case: Case) -> bool:
        value = getattr(case.conv, key)
        return isinstance(value, (tuple, list)) and len(set(value)) > 1

    return check


def _batch(case: Case) -> int | None:
    return case.input_shape[0] if len(case.input_shape) == case.conv.spatial_dims + 2 else None


def _transposed_with(predicate: Callable[[Case], bool]) -> Callable[[Case], bool]:
    return lambda case: case.conv.transposed and predicate(case)


# One predicate per value of a family of cells (a lambda in a loop would need its value bound).
def _op_is(name: str) -> Callable[[Case], bool]:
    return lambda c: c.conv.type == name


def _padding_mode_is(mode: str) -> Callable[[Case], bool]:
    return lambda c: c.conv.padding_mode == mode and _padded(c)


def _dtype_is(name: str) -> Callable[[Case], bool]:
    return lambda c: c.dtype == name


def _error_kind_is(kind: str) -> Callable[[Case], bool]:
    return lambda c: kind in error_kinds_of(c.conv, c.input_shape)


OPS = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")

FEATURES: list[Feature] = [
    *(Feature("op", name, _op_is(name), on_error_cases=None) for name in OPS),
    *_groups_cells(),
    Feature("stride", "stride 1", lambda c: max(_per_axis(c, "stride")) == 1),
    Feature("stride", "stride > 1", lambda c: max(_per_axis(c, "stride")) > 1),
    Feature("padding", "padding 0", lambda c: _is_int(c.conv.padding) and c.conv.padding == 0),
    Feature("padding", "padding int > 0", lambda c: _is_int(c.conv.padding) and c.conv.padding > 0),
    Feature("padding", "padding per axis (list)", lambda c: isinstance(c.conv.padding, (tuple, list))),
    Feature("padding", "padding 'same'", lambda c: c.conv.padding == "same"),
    Feature("padding", "padding 'valid'", lambda c: c.conv.padding == "valid"),
    Feature(
        "output_padding",
        "transposed, output_padding 0",
        _transposed_with(lambda c: max(_per_axis(c, "output_padding")) == 0),
    ),
    Feature(
        "output_padding",
        "transposed, output_padding > 0",
        _transposed_with(lambda c: max(_per_axis(c, "output_padding")) > 0),
    ),
    Feature("dilation", "dilation 1", lambda c: max(_per_axis(c, "dilation")) == 1),
    Feature("dilation", "dilation > 1", lambda c: max(_per_axis(c, "dilation")) > 1),
    *(Feature("padding mode", f"{mode} (with padding > 0)", _padding_mode_is(mode)) for mode in PADDING_MODES),
    Feature("bias", "with bias", lambda c: c.conv.bias),
    Feature("bias", "without bias", lambda c: not c.conv.bias),
    Feature("batch", "unbatched (C, *spatial)", lambda c: len(c.input_shape) == c.conv.spatial_dims + 1),
    Feature("batch", "batch of 1", lambda c: _batch(c) == 1),
    Feature("batch", "batch > 1", lambda c: (_batch(c) or 0) > 1),
    Feature("batch", "empty batch (N = 0)", lambda c: _batch(c) == 0),
    Feature("kernel", "size 1 on every axis", lambda c: set(c.conv.kernel_dims) == {1}),
    Feature(
        "kernel",
        "same size > 1 on every axis",
        lambda c: len(set(c.conv.kernel_dims)) == 1 and c.conv.kernel_dims[0] > 1,
    ),
    Feature("kernel", "sizes differ between axes", lambda c: len(set(c.conv.kernel_dims)) > 1),
    Feature("axes differ", "stride", _differs("stride")),
    Feature("axes differ", "padding", _differs("padding")),
    Feature("axes differ", "dilation", _differs("dilation")),
    Feature("axes differ", "input size", lambda c: len(set(_spatial(c.conv, c.input_shape) or ())) > 1),
    *(Feature("dtype", name, _dtype_is(name)) for name in DTYPES),
    Feature("backward", "gradients checked", lambda c: bool(getattr(c, "backward", False))),
    Feature("backward", "forward only", lambda c: not getattr(c, "backward", False)),
    Feature("golden", "expected output given", lambda c: c.expected is not None),
    *(Feature("error kind", kind, _error_kind_is(kind), on_error_cases=True) for kind in ERROR_PREDICATES),
]
