"""Hypothesis strategies for grouped convolution cases of every op (every strategy of the fuzzer lives here).

A draw is a :class:`DrawnCase`: a case *document* (plain data, exactly what a YAML case file
holds, so it goes through the same loader as the library) and, for a deliberately invalid layer,
the reason it is invalid (a key of :data:`conformance.cases.features.ERROR_PREDICATES`).

Valid layers cover the whole space torch accepts, for each op (Conv1d/2d/3d, ConvTranspose1d/2d/3d):
groups dividing both channel counts (dense, grouped, depthwise, depth multipliers), int or
per-axis stride, padding (int, per axis; 'same' and 'valid' for convolutions) and dilation,
output_padding below stride or dilation (transposed), kernels up to the padded input
(convolutions), every padding mode with the input sizes it needs (transposed: zeros only), bias
or not, batched, unbatched and empty batches, float32 and float64. With
probability ``invalid_rate`` one rule is then broken (:data:`INVALID_MUTATORS`) and the case
says ``expect_error: true``.

Everything shrinks towards a small, readable case: a Conv2d, one batch element, groups 1, kernel 1,
stride 1, no padding, zeros, float32, element values drawn by hypothesis (so a shrunk tensor is
mostly zeros) where the tensor is small, a seeded random generator where it is not.

>>> from hypothesis import find, settings
>>> drawn = find(case_documents(invalid_rate=0.0), lambda d: d.document["conv"]["groups"] == 3,
...              settings=settings(database=None, derandomize=True))
>>> drawn.document["conv"]["in_channels"], drawn.document["conv"]["out_channels"], drawn.invalid_kind
(3, 3, None)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from conformance.cases.geometry import OP_TYPES, PADDING_MODES, per_dim, same_padding
from conformance.cases.schema import ConvConfig

FUZZ_DTYPES = ("float32", "float64")
# Conv2d first: the op shrinks towards it (the best known). Then the others, transposed last.
FUZZ_OPS = ("Conv2d",) + tuple(op for op in OP_TYPES if op != "Conv2d")
MAX_GROUPS = 4
MAX_CHANNELS_PER_GROUP = 3
MAX_KERNEL = 4
MAX_STRIDE = 3
MAX_DILATION = 3
MAX_PADDING = 3
EXTRA_INPUT_SIZE = 5  # input sizes run from the smallest the layer allows to this much more
MAX_DRAWN_VALUES = 16  # tensors up to this size get element values from hypothesis (they shrink)
VALUE_RANGE = (-3, 3)  # small integers: sums are exact in float32, and readable
BATCH_CHOICES = (1, 2, None, 0, 3)  # None: an unbatched (C, H, W) input; 0: an empty batch


@dataclass(frozen=True)
class DrawnCase:
    """A case document and, for an invalid layer, which rule it breaks."""

    document: dict[str, Any]
    invalid_kind: str | None = None


@functools.cache
def int_or_sizes(low: int, high: int, dims: int = 2) -> st.SearchStrategy[Any]:
    """An int, or a list of one int per spatial axis (as a case file writes it)."""
    # Strategies are built once and reused: building one per draw costs hypothesis more than drawing.
    return st.one_of(st.integers(low, high), st.lists(st.integers(low, high), min_size=dims, max_size=dims))


def _with_axis(value: Any, axis: int, new: Any, dims: int = 2) -> list[Any]:
    """``value`` as a per-axis list with one axis replaced."""
    sizes = list(per_dim(value, dims))
    sizes[axis] = new
    return sizes


@dataclass
class Layer:
    """A layer being drawn: the torch.nn module's arguments and the input's shape."""

    in_channels: int
    out_channels: int
    groups: int
    kernel_size: Any
    stride: Any
    padding: Any
    dilation: Any
    padding_mode: str
    bias: bool
    input_shape: list[int] = field(default_factory=list)
    type: str = "Conv2d"
    output_padding: Any = 0

    @property
    def dims(self) -> int:
        return int(self.type[-2])

    @property
    def transposed(self) -> bool:
        return self.type.startswith("ConvTranspose")

    def conv(self) -> dict[str, Any]:
        conv = {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "groups": self.groups,
            "bias": self.bias,
            "padding_mode": self.padding_mode,
        }
        if self.type != "Conv2d":  # a Conv2d document reads as the library's Conv2d cases do
            conv = {"type": self.type, **conv}
        if self.transposed:
            conv["output_padding"] = self.output_padding
        return conv

    def config(self) -> ConvConfig:
        kwargs: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value for key, value in self.conv().items()
        }
        return ConvConfig(**kwargs)

    @property
    def spatial(self) -> tuple[int, ...]:
        return tuple(self.input_shape[-self.dims :])

    def set_input_channels(self, channels: int) -> None:
        self.input_shape[-self.dims - 1] = channels


def axis_pads(padding: Any, kernel: Any, dilation: Any, dims: int = 2) -> list[tuple[int, int]]:
    """(before, after) per spatial axis for int, per-axis, 'valid' or 'same' padding (odd 'same' extra after)."""
    if padding == "valid":
        return [(0, 0)] * dims
    if padding == "same":
        return [same_padding(k, d) for k, d in zip(per_dim(kernel, dims), per_dim(dilation, dims), strict=False)]
    return [(pad, pad) for pad in per_dim(padding, dims)]


_OPS = st.sampled_from(FUZZ_OPS)


@st.composite
def valid_layers(draw: st.DrawFn, ops: tuple[str, ...] = FUZZ_OPS) -> Layer:
    """A layer torch accepts, with an input it accepts, of one of ``ops``."""
    op = draw(_OPS if ops == FUZZ_OPS else st.sampled_from(ops))
    dims, transposed = int(op[-2]), op.startswith("ConvTranspose")
    groups = draw(st.integers(1, MAX_GROUPS))
    in_per_group = draw(st.integers(1, MAX_CHANNELS_PER_GROUP))
    out_per_group = draw(st.integers(1, MAX_CHANNELS_PER_GROUP))
    kernel = draw(int_or_sizes(1, MAX_KERNEL, dims))
    stride = draw(int_or_sizes(1, MAX_STRIDE, dims))
    dilation = draw(int_or_sizes(1, MAX_DILATION, dims))
    padding_mode = "zeros" if transposed else draw(st.sampled_from(PADDING_MODES))
    if transposed:
        padding_kinds: tuple[str, ...] = ("int", "list")  # torch has no string padding for these
    else:
        padding_kinds = ("int", "list", "valid") + (("same",) if set(per_dim(stride, dims)) == {1} else ())
    padding_kind = draw(st.sampled_from(padding_kinds))
    padding: Any = {
        "int": lambda: draw(st.integers(0, MAX_PADDING)),
        "list": lambda: draw(st.lists(st.integers(0, MAX_PADDING), min_size=dims, max_size=dims)),
        "valid": lambda: "valid",
        "same": lambda: "same",
    }[padding_kind]()
    output_padding: Any = 0
    if transposed:  # each axis below its stride or its dilation (torch's rule)
        limits = [max(s, d) - 1 for s, d in zip(per_dim(stride, dims), per_dim(dilation, dims), strict=False)]
        extra = [draw(st.integers(0, limit)) for limit in limits]
        output_padding = extra[0] if len(set(extra)) == 1 else extra
    spatial = []
    for axis, ((before, after), k, d) in enumerate(
        zip(axis_pads(padding, kernel, dilation, dims), per_dim(kernel, dims), per_dim(dilation, dims), strict=False)
    ):
        if transposed:
            # output (L-1)*s - 2p + d*(k-1) + output_padding + 1 must be at least 1
            s, op_axis = per_dim(stride, dims)[axis], per_dim(output_padding, dims)[axis]
            shortfall = 2 * before - d * (k - 1) - op_axis
            smallest = 1 + max(0, -(-shortfall // s))
        else:
            smallest = max(1, d * (k - 1) + 1 - before - after)  # the dilated kernel fits the padded input exactly
            if padding_mode == "reflect":
                smallest = max(smallest, max(before, after) + 1)  # reflect pads less than the size
            elif padding_mode == "circular":
                smallest = max(smallest, max(before, after))  # circular wraps at most once
        # An offset from the smallest size, so a shrinking kernel keeps the input's extra size;
        # 3-d inputs get less, so a draw stays small.
        spatial.append(smallest + draw(st.integers(0, EXTRA_INPUT_SIZE if dims < 3 else 2)))
    in_channels = groups * in_per_group
    batch = draw(st.sampled_from(BATCH_CHOICES))
    input_shape = [in_channels, *spatial] if batch is None else [batch, in_channels, *spatial]
    return Layer(
        in_channels,
        groups * out_per_group,
        groups,
        kernel,
        stride,
        padding,
        dilation,
        padding_mode,
        draw(st.booleans()),
        input_shape,
        op,
        output_padding,
    )


# --- breaking one rule: each mutator makes a valid layer invalid in one named way ---------------
# The names are the keys of conformance.cases.features.ERROR_PREDICATES, so the coverage grid and the
# fuzzer agree on what each kind means (a test checks every drawn invalid case is classified so).


def _channels_not_divisible(which: str) -> Callable[[st.DrawFn, Layer], None]:
    def mutate(draw: st.DrawFn, layer: Layer) -> None:
        groups = max(layer.groups, 2)
        in_channels = groups * (layer.in_channels // layer.groups)
        out_channels = groups * (layer.out_channels // layer.groups)
        remainder = draw(st.integers(1, groups - 1))
        if which == "in":
            in_channels += remainder
        else:
            out_channels += remainder
        layer.groups, layer.in_channels, layer.out_channels = groups, in_channels, out_channels
        layer.set_input_channels(in_channels)
        if layer.transposed and which == "out":
            # A functional conv_transpose sees out_channels only as weight.shape[1] * groups and
            # the bias's length: without a bias the layer it is given is a valid, smaller one.
            layer.bias = True

    return mutate


def _axis_choice(draw: st.DrawFn, layer: Layer, including_all: bool = True) -> Any:
    return draw(st.sampled_from((["all"] if including_all else []) + list(range(layer.dims))))


def _non_positive(key: str) -> Callable[[st.DrawFn, Layer], None]:
    def mutate(draw: st.DrawFn, layer: Layer) -> None:
        bad = draw(st.sampled_from([0, -1]))
        axis = _axis_choice(draw, layer)
        setattr(layer, key, bad if axis == "all" else _with_axis(getattr(layer, key), axis, bad, layer.dims))
        if key == "dilation" and len(layer.input_shape) == layer.dims + 2 and layer.input_shape[0] == 0:
            # torch 2.13 checks dilation only when there is something to compute: on an empty
            # batch it returns an empty output for dilation 0 (found by this fuzzer, seed 11),
            # while the reference refuses. Keep the known quirk out of campaigns.
            layer.input_shape[0] = 1
        if key in ("stride", "dilation") and layer.transposed:
            layer.output_padding = 0  # keep output_padding's own rule out of the way

    return mutate


def _groups_non_positive(draw: st.DrawFn, layer: Layer) -> None:
    layer.groups = draw(st.sampled_from([0, -1]))


def _kernel_non_positive(draw: st.DrawFn, layer: Layer) -> None:
    axis = _axis_choice(draw, layer)
    layer.kernel_size = 0 if axis == "all" else _with_axis(layer.kernel_size, axis, 0, layer.dims)


def _negative_padding(draw: st.DrawFn, layer: Layer) -> None:
    # Only with zeros: for reflect/replicate/circular, torch.nn.Conv2d hands negative padding to
    # F.pad, which crops instead of refusing (torch 2.13), while the reference refuses.
    layer.padding_mode = "zeros"
    axis = _axis_choice(draw, layer)
    layer.padding = -1 if axis == "all" else _with_axis(0, axis, -1, layer.dims)


def _same_with_stride(draw: st.DrawFn, layer: Layer) -> None:
    layer.padding = "same"
    axis = _axis_choice(draw, layer)
    layer.stride = 2 if axis == "all" else _with_axis(1, axis, draw(st.integers(2, 3)), layer.dims)


def _kernel_too_large(draw: st.DrawFn, layer: Layer) -> None:
    if layer.padding == "same":  # 'same' grows with the kernel: use explicit padding
        layer.padding = 0
    axis = _axis_choice(draw, layer, including_all=False)
    before, after = axis_pads(layer.padding, layer.kernel_size, layer.dilation, layer.dims)[axis]
    padded = layer.spatial[axis] + before + after
    dilation = per_dim(layer.dilation, layer.dims)[axis]
    # dilation*(k-1)+1 > padded  <=>  k > (padded-1)/dilation + 1
    layer.kernel_size = _with_axis(layer.kernel_size, axis, (padded - 1) // dilation + 2, layer.dims)


def _padding_too_large(mode: str, beyond: int) -> Callable[[st.DrawFn, Layer], None]:
    """reflect needs padding < size (beyond=0 is already too much); circular padding <= size (beyond=1)."""

    def mutate(draw: st.DrawFn, layer: Layer) -> None:
        axis = _axis_choice(draw, layer, including_all=False)
        layer.padding_mode = mode
        layer.padding = _with_axis(0, axis, layer.spatial[axis] + beyond + draw(st.integers(0, 1)), layer.dims)

    return mutate


def _input_channels_wrong(draw: st.DrawFn, layer: Layer) -> None:
    layer.set_input_channels(layer.in_channels + draw(st.integers(1, 2)))


def _input_rank_wrong(draw: st.DrawFn, layer: Layer) -> None:
    spatial = list(layer.spatial)
    too_few = [layer.in_channels, *spatial[:-1]] if layer.dims > 1 else [layer.in_channels]
    too_many = [1, 1, layer.in_channels, *spatial]
    layer.input_shape = draw(st.sampled_from([too_few, too_many]))


def _unknown_padding_name(draw: st.DrawFn, layer: Layer) -> None:
    if not layer.transposed and draw(st.booleans()):  # a transposed op takes no padding string at all
        layer.padding = draw(st.sampled_from(["full", "causal"]))
    else:
        layer.padding_mode = draw(st.sampled_from(["mirror", "constant"]))


def _output_padding_too_large(draw: st.DrawFn, layer: Layer) -> None:
    """Transposed: one axis's output_padding as large as both its stride and its dilation."""
    axis = _axis_choice(draw, layer, including_all=False)
    stride, dilation = per_dim(layer.stride, layer.dims)[axis], per_dim(layer.dilation, layer.dims)[axis]
    layer.output_padding = _with_axis(
        layer.output_padding, axis, max(stride, dilation) + draw(st.integers(0, 1)), layer.dims
    )
    if len(layer.input_shape) == layer.dims + 2 and layer.input_shape[0] == 0:
        # torch 2.13 checks output_padding only when there is something to compute: an empty batch
        # gets an empty output, while the reference refuses (the same quirk as dilation 0 above).
        layer.input_shape[0] = 1


def _transposed_padding_mode(draw: st.DrawFn, layer: Layer) -> None:
    layer.padding_mode = draw(st.sampled_from([mode for mode in PADDING_MODES if mode != "zeros"]))


# The kinds every op can break, then those only convolutions / only transposed convolutions have.
INVALID_MUTATORS: dict[str, Callable[[st.DrawFn, Layer], None]] = {
    "in_channels not divisible by groups": _channels_not_divisible("in"),
    "out_channels not divisible by groups": _channels_not_divisible("out"),
    "groups <= 0": _groups_non_positive,
    "stride <= 0": _non_positive("stride"),
    "dilation <= 0": _non_positive("dilation"),
    "kernel_size <= 0": _kernel_non_positive,
    "negative padding": _negative_padding,
    "unknown padding string or mode": _unknown_padding_name,
    "padding 'same' with stride > 1": _same_with_stride,
    "kernel larger than padded input": _kernel_too_large,
    "reflect padding >= input size": _padding_too_large("reflect", 0),
    "circular padding wraps more than once": _padding_too_large("circular", 1),
    "input channels != in_channels": _input_channels_wrong,
    "input rank not the op's (Conv2d: 3-D or 4-D)": _input_rank_wrong,
    "output_padding not smaller than stride or dilation": _output_padding_too_large,
    "transposed with padding_mode other than zeros": _transposed_padding_mode,
}
CONVOLUTION_ONLY = (
    "padding 'same' with stride > 1",
    "kernel larger than padded input",
    "reflect padding >= input size",
    "circular padding wraps more than once",
)
TRANSPOSED_ONLY = (
    "output_padding not smaller than stride or dilation",
    "transposed with padding_mode other than zeros",
)
INVALID_KINDS = {
    False: [kind for kind in INVALID_MUTATORS if kind not in TRANSPOSED_ONLY],
    True: [kind for kind in INVALID_MUTATORS if kind not in CONVOLUTION_ONLY],
}


# --- tensors ---------------------------------------------------------------------------------


def random_specs() -> st.SearchStrategy[dict[str, Any]]:
    """A seeded random generator: the same tensor on every machine."""
    return st.builds(
        lambda seed, distribution: {"random": {"seed": seed, "distribution": distribution}},
        st.integers(0, 2**16 - 1),
        st.sampled_from(["integers", "uniform", "normal"]),
    )


_RANDOM_SPECS = random_specs()
_TENSOR_STYLES = st.sampled_from(["values", "random"])
_VALUE_POOLS = st.lists(st.integers(*VALUE_RANGE), min_size=MAX_DRAWN_VALUES, max_size=MAX_DRAWN_VALUES)


def draw_tensor_spec(draw: st.DrawFn, shape: tuple[int, ...] | list[int], with_shape: bool) -> dict[str, Any]:
    """Explicit small-integer values for a small tensor (hypothesis shrinks them), else a random spec.

    The style and a pool of values of fixed length are drawn whatever the shape: when shrinking
    changes the shape, the values (and every draw after them) keep their place, so the failure
    usually survives the step.
    """
    count = math.prod(shape)
    shape_key = {"shape": list(shape)} if with_shape else {}
    if draw(_TENSOR_STYLES) == "values":
        pool = draw(_VALUE_POOLS)
        if count <= MAX_DRAWN_VALUES:
            return {"values": pool[:count], **shape_key}
    return {**draw(_RANDOM_SPECS), **shape_key}


_VALID_LAYERS = valid_layers()
_INVALID_KINDS = {transposed: st.sampled_from(kinds) for transposed, kinds in INVALID_KINDS.items()}
_DTYPES = st.sampled_from(FUZZ_DTYPES)


@st.composite
def case_documents(draw: st.DrawFn, invalid_rate: float = 0.1, ops: tuple[str, ...] = FUZZ_OPS) -> DrawnCase:
    """A case document of one of ``ops``: a valid layer, or with probability ``invalid_rate`` one
    made invalid (in a way that op can be invalid)."""
    if not 0.0 <= invalid_rate <= 1.0:
        raise ValueError(f"invalid_rate must be between 0 and 1, got {invalid_rate}")
    unknown = [op for op in ops if op not in FUZZ_OPS]
    if unknown or not ops:
        raise ValueError(f"ops must be some of {', '.join(FUZZ_OPS)}, got {list(ops)}")
    layer = draw(_VALID_LAYERS if tuple(ops) == FUZZ_OPS else valid_layers(tuple(ops)))
    kind = None
    # Drawn as an integer that shrinks towards 0, i.e. towards a valid layer.
    if draw(st.integers(0, 999)) >= 1000 - round(1000 * invalid_rate):
        kind = draw(_INVALID_KINDS[layer.transposed])
        INVALID_MUTATORS[kind](draw, layer)
    document: dict[str, Any] = {"conv": layer.conv(), "dtype": draw(_DTYPES)}
    if kind is not None:  # the values do not matter: both sides must refuse the layer
        document.update(input={"fill": 1, "shape": layer.input_shape}, expect_error=True)
        return DrawnCase(document, kind)
    config = layer.config()
    document["input"] = draw_tensor_spec(draw, layer.input_shape, with_shape=True)
    document["weight"] = draw_tensor_spec(draw, config.weight_shape(), with_shape=False)
    if layer.bias:
        document["bias"] = draw_tensor_spec(draw, (layer.out_channels,), with_shape=False)
    return DrawnCase(document, None)
