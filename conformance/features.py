"""What a case exercises: a small table of named predicates over :class:`Case`.

Each row of :data:`FEATURES` is one cell of the coverage grid (``conformance coverage``): an
axis ("groups", "padding mode", ...), a cell name, and a predicate. Cells of one axis need not
exclude each other (a depthwise case with padding 'same' counts once on each axis). To cover a
new part of the space, add a row. Rows with ``on_error_cases`` count only the cases marked
``expect_error`` (the :data:`ERROR_KINDS` rows say *why* a layer is invalid); the others count
only the cases whose layer is valid.

Fields that newer case formats may add (``backward``, more dtypes) are read defensively, so
the table works with or without them.

>>> from conformance.schema import ConvConfig
>>> sorted(error_kinds_of(ConvConfig(4, 6, 1, groups=4), (1, 4, 3, 3)))
['out_channels not divisible by groups']
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .schema import Case, ConvConfig, DTYPES, PADDING_MODES, PADDING_STRINGS


@dataclass(frozen=True)
class Feature:
    """One cell of the coverage grid."""

    axis: str
    cell: str
    applies: Callable[[Case], bool]
    on_error_cases: bool = False


def _pair(value: Any) -> tuple[Any, Any]:
    """An int or an (h, w) pair as a pair; anything else twice (predicates then just say False)."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return value[0], value[1]
    return value, value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def pads_of(conv: ConvConfig) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) padding, as torch applies it; None if the padding is malformed.

    'same' pads dilation·(k − 1) in total per axis, the odd row/column after (as torch does).

    >>> pads_of(ConvConfig(1, 1, (2, 3), padding="same"))
    (0, 1, 1, 1)
    """
    if conv.padding == "valid":
        return (0, 0, 0, 0)
    if conv.padding == "same":
        pads: list[int] = []
        for k, d in zip(_pair(conv.kernel_size), _pair(conv.dilation)):
            if not (_is_int(k) and _is_int(d)):
                return None
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return pads[0], pads[1], pads[2], pads[3]
    ph, pw = _pair(conv.padding)
    if not (_is_int(ph) and _is_int(pw)):
        return None
    return ph, ph, pw, pw


def _spatial(input_shape: Sequence[int]) -> tuple[int, int] | None:
    return (input_shape[-2], input_shape[-1]) if len(input_shape) in (3, 4) else None


def _input_channels(input_shape: Sequence[int]) -> int | None:
    return input_shape[-3] if len(input_shape) in (3, 4) else None


# --- why a layer is invalid: predicates over the layer and the input shape -------------------

def _not_divisible(count: Callable[[ConvConfig], int]) -> Callable[[ConvConfig, Sequence[int]], bool]:
    return lambda conv, shape: conv.groups > 0 and count(conv) % conv.groups != 0


def _kernel_too_large(conv: ConvConfig, input_shape: Sequence[int]) -> bool:
    pads, spatial = pads_of(conv), _spatial(input_shape)
    if pads is None or spatial is None or min(pads) < 0:
        return False
    sizes = (spatial[0] + pads[0] + pads[1], spatial[1] + pads[2] + pads[3])
    for padded, k, d in zip(sizes, _pair(conv.kernel_size), _pair(conv.dilation)):
        if k > 0 and d > 0 and d * (k - 1) + 1 > padded:
            return True
    return False


def _padding_too_large_for(mode: str) -> Callable[[ConvConfig, Sequence[int]], bool]:
    """reflect needs padding < size; circular may wrap at most once (padding <= size)."""
    def check(conv: ConvConfig, input_shape: Sequence[int]) -> bool:
        pads, spatial = pads_of(conv), _spatial(input_shape)
        if conv.padding_mode != mode or pads is None or spatial is None:
            return False
        height, width = spatial
        largest = ((max(pads[0], pads[1]), height), (max(pads[2], pads[3]), width))
        if mode == "reflect":
            return any(pad >= size for pad, size in largest)
        return any(pad > size for pad, size in largest)
    return check


ERROR_PREDICATES: dict[str, Callable[[ConvConfig, Sequence[int]], bool]] = {
    "in_channels not divisible by groups": _not_divisible(lambda conv: conv.in_channels),
    "out_channels not divisible by groups": _not_divisible(lambda conv: conv.out_channels),
    "groups <= 0": lambda conv, shape: conv.groups <= 0,
    "stride <= 0": lambda conv, shape: min(_pair(conv.stride)) <= 0,
    "dilation <= 0": lambda conv, shape: min(_pair(conv.dilation)) <= 0,
    "kernel_size <= 0": lambda conv, shape: min(_pair(conv.kernel_size)) <= 0,
    "negative padding": lambda conv, shape: min(pads_of(conv) or (0,)) < 0,
    "unknown padding string or mode": lambda conv, shape: (
        (isinstance(conv.padding, str) and conv.padding not in PADDING_STRINGS)
        or conv.padding_mode not in PADDING_MODES),
    "padding 'same' with stride > 1": lambda conv, shape: conv.padding == "same" and max(_pair(conv.stride)) > 1,
    "kernel larger than padded input": _kernel_too_large,
    "reflect padding >= input size": _padding_too_large_for("reflect"),
    "circular padding wraps more than once": _padding_too_large_for("circular"),
    "input channels != in_channels": lambda conv, shape: (
        _input_channels(shape) is not None and _input_channels(shape) != conv.in_channels),
    "input not 3-D or 4-D": lambda conv, shape: len(shape) not in (3, 4),
}


def error_kinds_of(conv: ConvConfig, input_shape: Sequence[int]) -> set[str]:
    """Every reason (a key of :data:`ERROR_PREDICATES`) why torch refuses this layer and input."""
    return {kind for kind, invalid in ERROR_PREDICATES.items() if invalid(conv, input_shape)}


# --- what a valid case exercises -------------------------------------------------------------

def _groups_cells() -> list[Feature]:
    def channels(case: Case) -> tuple[int, int, int]:
        return case.conv.groups, case.conv.in_channels, case.conv.out_channels

    def depthwise(case: Case) -> bool:
        g, c_in, c_out = channels(case)
        return g > 1 and g == c_in == c_out

    def depth_multiplier(case: Case) -> bool:
        g, c_in, c_out = channels(case)
        return g > 1 and g == c_in and c_out > c_in and c_out % c_in == 0

    return [
        Feature("groups", "groups = 1 (dense)", lambda c: c.conv.groups == 1),
        Feature("groups", "1 < groups < in_channels", lambda c: 1 < c.conv.groups < c.conv.in_channels),
        Feature("groups", "depthwise (groups = in = out channels)", depthwise),
        Feature("groups", "depth multiplier (groups = in, out = k x in)", depth_multiplier),
        # Interleaved or permuted output channels only show with two outputs or more per group.
        Feature("groups", "groups > 1, several outputs per group",
                lambda c: c.conv.groups > 1 and c.conv.out_channels // c.conv.groups > 1),
    ]


def _padded(case: Case) -> bool:
    return any(pad > 0 for pad in pads_of(case.conv) or ())


def _differs(key: str) -> Callable[[Case], bool]:
    def check(case: Case) -> bool:
        value = getattr(case.conv, key)
        return isinstance(value, (tuple, list)) and value[0] != value[1]
    return check


def _batch(case: Case) -> int | None:
    return case.input_shape[0] if len(case.input_shape) == 4 else None


FEATURES: list[Feature] = [
    *_groups_cells(),
    Feature("stride", "stride 1", lambda c: max(_pair(c.conv.stride)) == 1),
    Feature("stride", "stride > 1", lambda c: max(_pair(c.conv.stride)) > 1),
    Feature("padding", "padding 0", lambda c: _is_int(c.conv.padding) and c.conv.padding == 0),
    Feature("padding", "padding int > 0", lambda c: _is_int(c.conv.padding) and c.conv.padding > 0),
    Feature("padding", "padding (h, w) pair", lambda c: isinstance(c.conv.padding, (tuple, list))),
    Feature("padding", "padding 'same'", lambda c: c.conv.padding == "same"),
    Feature("padding", "padding 'valid'", lambda c: c.conv.padding == "valid"),
    Feature("dilation", "dilation 1", lambda c: max(_pair(c.conv.dilation)) == 1),
    Feature("dilation", "dilation > 1", lambda c: max(_pair(c.conv.dilation)) > 1),
    *(Feature("padding mode", f"{mode} (with padding > 0)",
              lambda c, mode=mode: c.conv.padding_mode == mode and _padded(c)) for mode in PADDING_MODES),
    Feature("bias", "with bias", lambda c: c.conv.bias),
    Feature("bias", "without bias", lambda c: not c.conv.bias),
    Feature("batch", "unbatched (C, H, W)", lambda c: len(c.input_shape) == 3),
    Feature("batch", "batch of 1", lambda c: _batch(c) == 1),
    Feature("batch", "batch > 1", lambda c: (_batch(c) or 0) > 1),
    Feature("batch", "empty batch (N = 0)", lambda c: _batch(c) == 0),
    Feature("kernel", "1x1", lambda c: c.conv.kernel_hw == (1, 1)),
    Feature("kernel", "square, larger than 1x1", lambda c: c.conv.kernel_hw[0] == c.conv.kernel_hw[1] > 1),
    Feature("kernel", "non-square (kH != kW)", lambda c: c.conv.kernel_hw[0] != c.conv.kernel_hw[1]),
    Feature("h != w", "stride (sH != sW)", _differs("stride")),
    Feature("h != w", "padding (pH != pW)", _differs("padding")),
    Feature("h != w", "dilation (dH != dW)", _differs("dilation")),
    Feature("h != w", "input (H != W)", lambda c: len(c.input_shape) in (3, 4) and c.input_shape[-2] != c.input_shape[-1]),
    *(Feature("dtype", name, lambda c, name=name: c.dtype == name) for name in DTYPES),
    Feature("backward", "gradients checked", lambda c: bool(getattr(c, "backward", False))),
    Feature("backward", "forward only", lambda c: not getattr(c, "backward", False)),
    Feature("golden", "expected output given", lambda c: c.expected is not None),
    *(Feature("error kind", kind, lambda c, kind=kind: kind in error_kinds_of(c.conv, c.input_shape),
              on_error_cases=True) for kind in ERROR_PREDICATES),
]
