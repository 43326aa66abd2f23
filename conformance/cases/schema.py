"""The case format: validate one YAML document and turn it into a :class:`Case`.

Every problem found is reported with its key path and line; all problems of a document are
collected before giving up, so one run shows everything wrong with a file.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from conformance.cases.errors import CaseError, KeyPath, Problem
from conformance.cases.geometry import (
    OP_TYPES,
    PADDING_MODES,
    PADDING_STRINGS,
    is_transposed,
    op_name,
    output_length,
    per_dim,
    same_padding,
    spatial_dims_of,
)
from conformance.cases.precision import STORAGE_DTYPES
from conformance.cases.tensors import DISTRIBUTIONS, GENERATORS, MAX_TENSOR_ELEMENTS, TensorSpec
from conformance.cases.yaml_loader import Document

# How each case dtype is held in NumPy (bfloat16: float32 arrays of bfloat16 values, see precision.py).
DTYPES: dict[str, Any] = STORAGE_DTYPES
# torch.testing.assert_close's defaults for each dtype: (rtol, atol).
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float32": (1.3e-6, 1e-5),
    "float64": (1e-7, 1e-7),
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
}
# tolerance.mode: "bound" (the default: an error bound per element, conformance/judging/tolerance.py) or
# "assert_close" (the table above). Giving rtol or atol selects assert_close with those values.
TOLERANCE_MODES = ("bound", "assert_close")
GRADIENTS = ("grad_input", "grad_weight", "grad_bias")
MAX_MULTIPLY_ADDS = 10**10  # refuse cases that would take minutes in the reference

CASE_KEYS = (
    "name",
    "description",
    "conv",
    "dtype",
    "input",
    "weight",
    "bias",
    "expected",
    "tolerance",
    "expect_error",
    "tags",
    "backward",
    "grad_output",
    "expected_gradients",
    "torch_variants",
    "sweep",
)  # sweep: see sweep.py
# How torch is run as the oracle (see torch_oracle.py); "contiguous" is the forward check itself.
TORCH_VARIANTS = ("contiguous", "channels_last", "noncontiguous_weight")
# The torch.nn modules a case can name as conv.type (geometry.OP_TYPES); Conv2d is the default.
CONV_TYPES = OP_TYPES
# Each module's keyword arguments, in torch's order (what `conv:` may hold besides `type`).
CONV_KEYS = (
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "bias",
    "padding_mode",
)
TRANSPOSED_CONV_KEYS = (
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "output_padding",
    "groups",
    "bias",
    "dilation",
    "padding_mode",
)
REQUIRED_CONV_KEYS = ("in_channels", "out_channels", "kernel_size")
# Keys whose value is an int or a list of one int per spatial dimension.
SPATIAL_KEYS = ("kernel_size", "stride", "padding", "dilation", "output_padding")
TAG_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Case keys that only a backward case may hold.
NEEDS_BACKWARD = ("grad_output", "expected_gradients")
# The options of the arange and random tensor generators (tensors.GENERATORS).
ARANGE_KEYS = ("start", "step")
RANDOM_KEYS = ("seed", "distribution", "low", "high", "mean", "std")


@dataclass(frozen=True)
class ConvConfig:
    """The keyword arguments of the case's ``torch.nn`` module (``type``: Conv2d unless the case says
    otherwise), as the case wrote them: an int or a tuple of one int per spatial dimension.

    >>> c = ConvConfig(6, 4, 1, groups=2, type="ConvTranspose2d")
    >>> c.weight_shape(), c.functional_name        # transposed: input channels first
    ((6, 2, 1, 1), 'conv_transpose2d')
    """

    in_channels: int
    out_channels: int
    kernel_size: int | tuple[int, ...]
    stride: int | tuple[int, ...] = 1
    padding: int | tuple[int, ...] | str = 0
    dilation: int | tuple[int, ...] = 1
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"
    type: str = "Conv2d"  # the torch.nn module: Conv1d, Conv2d, Conv3d, ConvTranspose1d/2d/3d
    output_padding: int | tuple[int, ...] = 0  # transposed convolutions only

    @property
    def transposed(self) -> bool:
        return is_transposed(self.type)

    @property
    def spatial_dims(self) -> int:
        """1, 2 or 3: the d of ConvNd / ConvTransposeNd."""
        return spatial_dims_of(self.type)

    @property
    def functional_name(self) -> str:
        """The ``torch.nn.functional`` function of this op, and the name a plug-in module defines:
        conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d or conv_transpose3d."""
        return op_name(self.type)

    @property
    def keys(self) -> tuple[str, ...]:
        """The keyword arguments this op's torch.nn module takes."""
        return TRANSPOSED_CONV_KEYS if self.transposed else CONV_KEYS

    def per_dim(self, key: str) -> tuple[int, ...]:
        """A spatial argument as one int per spatial dimension (string padding as 0s: see
        :func:`conv_output_shape` for what 'same' means).

        >>> ConvConfig(1, 1, 3, stride=(1, 2, 3), type="Conv3d").per_dim("stride")
        (1, 2, 3)
        """
        value = getattr(self, key)
        if isinstance(value, str):
            return (0,) * self.spatial_dims
        return tuple(value) if isinstance(value, (list, tuple)) else per_dim(value, self.spatial_dims)

    @property
    def kernel_dims(self) -> tuple[int, ...]:
        """The kernel size per spatial dimension, e.g. (kD, kH, kW) for a 3-d op."""
        return self.per_dim("kernel_size")

    @property
    def kernel_hw(self) -> tuple[int, int]:
        """(kH, kW) of a 2-d op (the last two spatial sizes; a 1-d kernel k reads as (1, k))."""
        kernel = self.kernel_dims
        return (1, kernel[0]) if len(kernel) == 1 else (kernel[-2], kernel[-1])

    @property
    def is_divisible(self) -> bool:
        """True when groups is positive and divides both channel counts."""
        return self.groups > 0 and self.in_channels % self.groups == 0 and self.out_channels % self.groups == 0

    @property
    def weight_layout(self) -> str:
        """The weight's axes in words: why the transposed one is the other way round is in docs/ops.md."""
        kernel = ", ".join(f"k{axis}" for axis in "DHW"[3 - self.spatial_dims :])
        if self.transposed:
            return f"(in_channels, out_channels/groups, {kernel})"
        return f"(out_channels, in_channels/groups, {kernel})"

    def weight_shape(self) -> tuple[int, ...]:
        """The weight's shape, following the op (for an invalid layer, a best effort):
        ``(out_channels, in_channels/groups, *kernel)`` for a convolution,
        ``(in_channels, out_channels/groups, *kernel)`` for a transposed convolution."""
        first, second = (
            (self.in_channels, self.out_channels) if self.transposed else (self.out_channels, self.in_channels)
        )
        per_group = second // self.groups if self.groups > 0 else second
        return tuple(max(v, 0) for v in (first, per_group, *self.kernel_dims))

    def torch_kwargs(self) -> dict[str, Any]:
        """Arguments for ``torch.nn.<type>(**kwargs)`` (lists as tuples)."""
        return {key: _as_tuple(getattr(self, key)) for key in self.keys}

    def functional_kwargs(self) -> dict[str, Any]:
        """Arguments for the ``torch.nn.functional.<functional_name>``-like function, in its order:
        convolutions get stride, padding, dilation, groups; transposed ones stride, padding,
        output_padding, groups, dilation. ``padding_mode`` only when it is not zeros (a transposed
        op must then refuse it, as torch does).

        >>> ConvConfig(4, 4, 3, stride=2, output_padding=1, groups=2, type="ConvTranspose1d").functional_kwargs()
        {'stride': 2, 'padding': 0, 'output_padding': 1, 'groups': 2, 'dilation': 1}
        """
        if self.transposed:
            kwargs = {
                "stride": self.stride,
                "padding": self.padding,
                "output_padding": self.output_padding,
                "groups": self.groups,
                "dilation": self.dilation,
            }
        else:
            kwargs = {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}
        if self.padding_mode != "zeros":
            kwargs["padding_mode"] = self.padding_mode
        return kwargs


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def conv_output_shape(conv: ConvConfig, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The output shape torch gives ``conv`` on ``input_shape`` ((N, C, *spatial) or (C, *spatial));
    raises ValueError for a layer or input torch would refuse (wrong rank, channels, sizes).

    Convolution: ``(L + 2p - d(k-1) - 1) // s + 1`` per dimension ('same': L, 'valid': p = 0);
    transposed: ``(L - 1)s - 2p + d(k-1) + output_padding + 1``.

    >>> conv_output_shape(ConvConfig(2, 4, 3, stride=2, output_padding=1, type="ConvTranspose1d"), (1, 2, 5))
    (1, 4, 12)
    """
    d = conv.spatial_dims
    if len(input_shape) not in (d + 1, d + 2):
        raise ValueError(f"{conv.type} expects an input of {d + 1} or {d + 2} dimensions, got {list(input_shape)}")
    if not conv.is_divisible:
        raise ValueError(
            f"groups {conv.groups} does not divide in_channels {conv.in_channels} and out_channels {conv.out_channels}"
        )
    if input_shape[-d - 1] != conv.in_channels:
        raise ValueError(f"the input has {input_shape[-d - 1]} channels, the layer {conv.in_channels}")
    per_dim = {key: conv.per_dim(key) for key in SPATIAL_KEYS}
    if any(len(v) != d for v in per_dim.values()):
        raise ValueError(f"{conv.type} takes {d} values per spatial argument")
    if (
        min(per_dim["kernel_size"] + per_dim["stride"] + per_dim["dilation"]) < 1
        or min(per_dim["padding"] + per_dim["output_padding"]) < 0
    ):
        raise ValueError("kernel_size, stride, dilation must be positive; padding, output_padding not negative")
    sizes = []
    for axis, length in enumerate(input_shape[-d:]):
        k, s, p, dl, op = (
            per_dim[key][axis] for key in ("kernel_size", "stride", "padding", "dilation", "output_padding")
        )
        if conv.transposed and op >= s and op >= dl:
            raise ValueError("output padding must be smaller than either stride or dilation")
        if conv.padding == "same" and not conv.transposed:
            size = length
            p = same_padding(k, dl)[1]  # the larger side's padding
        else:
            size = output_length(length, k, s, (p, p), dl, op, conv.transposed)
        if (
            not conv.transposed
            and conv.padding_mode in ("reflect", "circular")
            and (p >= length if conv.padding_mode == "reflect" else p > length)
        ):
            raise ValueError(f"{conv.padding_mode} padding {p} does not fit an input of size {length}")
        if size < 1:
            raise ValueError(f"the output would have size {size} along spatial axis {axis}")
        sizes.append(max(size, 0))
    return (*input_shape[: -d - 1], conv.out_channels, *sizes)


@dataclass(frozen=True)
class ExpectError:
    """``expect_error: true`` or ``{match: REGEX}``: torch and the implementation must both refuse."""

    match: str | None = None


@dataclass
class Case:
    """One runnable case."""

    name: str
    file: Path
    line: int
    conv: ConvConfig
    input: TensorSpec
    input_shape: tuple[int, ...]
    weight: TensorSpec
    bias: TensorSpec | None
    expected: TensorSpec | None = None
    expected_shape: tuple[int, ...] | None = None
    dtype: str = "float32"
    description: str = ""
    tolerance: dict[str, float] = field(default_factory=dict)
    expect_error: ExpectError | None = None
    tags: tuple[str, ...] = ()
    tolerance_mode: str = "bound"
    backward: bool = False  # also compare the gradients of sum(output * grad_output)
    grad_output: TensorSpec | None = None  # with its shape resolved (the output's); None without backward
    expected_gradients: dict[str, TensorSpec] = field(default_factory=dict)  # golden grad_input/weight/bias
    torch_variants: tuple[str, ...] = TORCH_VARIANTS

    @property
    def rtol_atol(self) -> tuple[float, float]:
        rtol, atol = DEFAULT_TOLERANCES[self.dtype]
        return self.tolerance.get("rtol", rtol), self.tolerance.get("atol", atol)

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


# Layer arguments a case author may put at the top level by mistake (the top-level `bias` is the
# bias tensor, a case key of its own, so it never reaches this hint).
_CONV_ARGUMENTS = (
    "type",
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "output_padding",
    "dilation",
    "groups",
    "padding_mode",
)


class _Checker:
    """Collects problems for one document."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.problems: list[Problem] = []

    def add(self, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(tuple(path), message, self.document.line_of(tuple(path))))

    def keys(self, mapping: dict[str, Any], allowed: tuple[str, ...], path: KeyPath) -> None:
        for key in mapping:
            if not path and key not in allowed and key in _CONV_ARGUMENTS:  # `groups: 3` beside conv:, not in it
                self.add((key,), f"unknown key {key!r} (did you mean conv.{key}? the layer's arguments go under conv:)")
                continue
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; allowed keys: {', '.join(allowed)}"
                self.add(path + (key,), f"unknown key {key!r}{hint}")

    def integer(self, value: Any, path: KeyPath, minimum: int | None = None) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"expected an integer, got {_show(value)}")
            return None
        if minimum is not None and value < minimum:
            self.add(path, f"expected an integer >= {minimum}, got {value}")
            return None
        return value

    def number(self, value: Any, path: KeyPath, minimum: float | None = None) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(path, f"expected a number, got {_show(value)}")
            return None
        if minimum is not None and not value >= minimum:
            self.add(path, f"expected a number >= {minimum}, got {value}")
            return None
        return float(value)

    def int_or_sizes(self, value: Any, path: KeyPath, dims: int = 2) -> int | tuple[int, ...] | None:
        """An int, or a list of ``dims`` ints (one per spatial dimension)."""
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if (
            isinstance(value, list)
            and len(value) == dims
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            return tuple(value)
        names = {1: "a list [l] of 1 integer", 2: "a pair [h, w] of integers", 3: "a list [d, h, w] of 3 integers"}
        self.add(path, f"expected an integer or {names[dims]}, got {_show(value)}")
        return None


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 60 else text[:57] + '...'}"


def default_case_name(file: Path) -> str:
    """The file's path under the nearest enclosing ``cases`` folder, without suffix."""
    file = Path(file)
    resolved = file.resolve()
    for parent in resolved.parents:
        if parent.name == "cases":
            return resolved.relative_to(parent).with_suffix("").as_posix()
    return file.with_suffix("").as_posix()


def parse_case(document: Document, file: Path, default_name: str) -> Case:
    """Validate ``document`` and build the :class:`Case`, or raise :class:`CaseError`."""
    check = _Checker(document)
    data = document.data
    if not isinstance(data, dict):
        raise CaseError(
            file,
            [Problem((), f"a case must be a mapping with at least conv and input, got {_show(data)}", document.line)],
        )
    check.keys(data, CASE_KEYS, ())

    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        check.add(("name",), f"expected a non-empty string, got {_show(name)}")
        name = default_name
    description = data.get("description", "")
    if not isinstance(description, str):
        check.add(("description",), f"expected a string, got {_show(description)}")

    dtype = data.get("dtype", "float32")
    if dtype not in DTYPES:
        check.add(("dtype",), f"expected one of {', '.join(DTYPES)}, got {_show(dtype)}")
        dtype = "float32"

    expect_error = _parse_expect_error(data, check)
    conv = _parse_conv(data, check, lenient=expect_error is not None)

    specs: dict[str, TensorSpec | None] = {}
    for role in ("input", "weight", "bias", "expected"):
        specs[role] = _parse_tensor_spec(data[role], (role,), check) if role in data else None
    if "input" not in data:
        check.add(
            ("input",),
            "missing required key 'input' "
            "(a tensor spec of shape [N, C, *spatial] or [C, *spatial], e.g. [N, C, H, W])",
        )

    tolerance, tolerance_mode = _parse_tolerance(data, check)
    tags = _parse_tags(data, check)
    backward = _parse_backward_flag(data, check, expect_error)
    torch_variants = _parse_torch_variants(data, check)

    if check.problems or conv is None or specs["input"] is None:
        raise CaseError(file, check.problems, case_name=name)

    input_shape = _resolve_shape(
        specs["input"],
        None,
        ("input",),
        check,
        "a generator needs shape: [N, C, *spatial] or [C, *spatial], e.g. [N, C, H, W]",
    )
    weight_spec = specs["weight"] or TensorSpec("random")
    weight_shape = _resolve_shape(weight_spec, conv.weight_shape(), ("weight",), check)
    if weight_shape is not None and conv.is_divisible and weight_shape != conv.weight_shape():
        check.add(
            ("weight",),
            f"shape {list(weight_shape)} does not match the layer: expected "
            f"{conv.weight_layout} = {list(conv.weight_shape())} for {conv.type}",
        )
    bias_spec = specs["bias"]
    if bias_spec is not None and not conv.bias:
        check.add(("bias",), "a bias is given but conv.bias is false (set conv.bias: true or remove it)")
    if conv.bias:
        bias_spec = bias_spec or TensorSpec("random")
        bias_shape = _resolve_shape(bias_spec, (max(conv.out_channels, 0),), ("bias",), check)
        if bias_shape is not None and bias_shape != (conv.out_channels,) and expect_error is None:
            check.add(
                ("bias",),
                f"shape {list(bias_shape)} does not match the layer: expected (out_channels,) = [{conv.out_channels}]",
            )
    expected_shape = None
    if specs["expected"] is not None:
        if expect_error is not None:
            check.add(("expected",), "'expected' cannot be combined with expect_error (an invalid layer has no output)")
        expected_shape = _resolve_shape(
            specs["expected"],
            None,
            ("expected",),
            check,
            "a generator needs shape: the output's [N, C_out, H_out, W_out]",
        )
    if input_shape is not None and not check.problems:
        _check_work_size(conv, input_shape, check)
    gradient_specs = _parse_gradient_specs(data, check, conv, backward, input_shape, weight_shape)
    if check.problems:
        raise CaseError(file, check.problems, case_name=name)

    assert input_shape is not None  # a missing or broken input is a problem: raised just above
    return Case(
        name=name,
        file=file,
        line=document.line,
        conv=conv,
        input=specs["input"],
        input_shape=input_shape,
        weight=weight_spec,
        bias=bias_spec if conv.bias else None,
        expected=specs["expected"],
        expected_shape=expected_shape,
        dtype=dtype,
        description=description.strip() if isinstance(description, str) else "",
        tolerance=tolerance,
        expect_error=expect_error,
        tags=tags,
        tolerance_mode=tolerance_mode,
        backward=backward,
        grad_output=gradient_specs.pop("grad_output", None),
        expected_gradients=gradient_specs,
        torch_variants=torch_variants,
    )


def _parse_expect_error(data: dict[str, Any], check: _Checker) -> ExpectError | None:
    value = data.get("expect_error", False)
    if value is False:
        return None
    if value is True:
        return ExpectError()
    if isinstance(value, dict):
        check.keys(value, ("match",), ("expect_error",))
        pattern = value.get("match")
        if not isinstance(pattern, str):
            check.add(("expect_error", "match"), f"expected a regular expression string, got {_show(pattern)}")
            return ExpectError()
        try:
            re.compile(pattern)
        except re.error as exc:
            check.add(("expect_error", "match"), f"not a valid regular expression: {exc}")
        return ExpectError(pattern)
    check.add(("expect_error",), f"expected true, false or {{match: REGEX}}, got {_show(value)}")
    return None


def _parse_tolerance(data: dict[str, Any], check: _Checker) -> tuple[dict[str, float], str]:
    """``{rtol, atol}`` (assert_close with those values), ``{mode: bound | assert_close}``; default: bound."""
    value = data.get("tolerance")
    if value is None:
        return {}, "bound"
    if not isinstance(value, dict):
        check.add(
            ("tolerance",),
            f"expected a mapping {{rtol: NUMBER, atol: NUMBER}} or {{mode: "
            f"{' | '.join(TOLERANCE_MODES)}}}, got {_show(value)}",
        )
        return {}, "bound"
    check.keys(value, ("rtol", "atol", "mode"), ("tolerance",))
    tolerance = {}
    for key in ("rtol", "atol"):
        if key in value:
            number = check.number(value[key], ("tolerance", key), minimum=0.0)
            if number is not None:
                tolerance[key] = number
    mode = value.get("mode", "assert_close" if "rtol" in value or "atol" in value else "bound")
    if mode not in TOLERANCE_MODES:
        check.add(("tolerance", "mode"), f"expected one of {', '.join(TOLERANCE_MODES)}, got {_show(mode)}")
        return tolerance, "bound"
    if mode == "bound" and ("rtol" in value or "atol" in value):
        check.add(
            ("tolerance", "mode"), "mode bound takes no rtol/atol (they select assert_close): remove them or the mode"
        )
    return tolerance, mode


def _parse_backward_flag(data: dict[str, Any], check: _Checker, expect_error: ExpectError | None) -> bool:
    value: object = data.get("backward", False)
    if not isinstance(value, bool):
        check.add(("backward",), f"expected true or false, got {_show(value)}")
        return False
    if value and expect_error is not None:
        check.add(("backward",), "backward cannot be combined with expect_error (an invalid layer has no gradients)")
    for key in NEEDS_BACKWARD:
        if key in data and not value:
            check.add((key,), f"{key!r} needs backward: true")
    return value


def _parse_gradient_specs(
    data: dict[str, Any],
    check: _Checker,
    conv: ConvConfig,
    backward: bool,
    input_shape: tuple[int, ...] | None,
    weight_shape: tuple[int, ...] | None,
) -> dict[str, TensorSpec]:
    """grad_output (default random, seeded by role) and the expected_gradients, shapes resolved."""
    if not backward or check.problems or input_shape is None or weight_shape is None:
        return {}
    try:
        output_shape = conv_output_shape(conv, input_shape)
    except (ValueError, TypeError):
        return {}  # an invalid layer: the forward check says why
    specs: dict[str, TensorSpec | None] = {}
    grad_output = (
        _parse_tensor_spec(data["grad_output"], ("grad_output",), check)
        if "grad_output" in data
        else TensorSpec("random")
    )
    specs["grad_output"] = _with_layer_shape(grad_output, output_shape, ("grad_output",), check, "the output's")
    expected = data.get("expected_gradients")
    if expected is None:
        return {key: spec for key, spec in specs.items() if spec is not None}
    if not isinstance(expected, dict):
        check.add(
            ("expected_gradients",), f"expected a mapping with some of {', '.join(GRADIENTS)}, got {_show(expected)}"
        )
        return {}
    check.keys(expected, GRADIENTS, ("expected_gradients",))
    shapes = {"grad_input": input_shape, "grad_weight": weight_shape, "grad_bias": (conv.out_channels,)}
    for key in GRADIENTS:
        if key not in expected:
            continue
        if key == "grad_bias" and not conv.bias:
            check.add(("expected_gradients", key), "a grad_bias is given but conv.bias is false")
            continue
        spec = _parse_tensor_spec(expected[key], ("expected_gradients", key), check)
        if spec is not None:
            specs[key] = _with_layer_shape(spec, shapes[key], ("expected_gradients", key), check, f"the {key[5:]}'s")
    return {key: spec for key, spec in specs.items() if spec is not None}


def _with_layer_shape(
    spec: TensorSpec | None, shape: tuple[int, ...], path: KeyPath, check: _Checker, whose: str
) -> TensorSpec | None:
    """``spec`` with ``shape`` filled in, or None (and a problem) if its own shape differs."""
    if spec is None:
        return None
    resolved = _resolve_shape(spec, shape, path, check)
    if resolved is None:
        return None
    if resolved != tuple(shape):
        check.add(path, f"shape {list(resolved)} does not match {whose} shape {list(shape)}")
        return None
    return dataclasses.replace(spec, shape=tuple(shape))


def _parse_tags(data: dict[str, Any], check: _Checker) -> tuple[str, ...]:
    value = data.get("tags", [])
    if not isinstance(value, list):
        check.add(("tags",), f"expected a list of names, got {_show(value)}")
        return ()
    tags = []
    for i, tag in enumerate(value):
        if not isinstance(tag, str) or not TAG_PATTERN.match(tag):
            check.add(
                ("tags", i), f"expected a name of letters, digits and underscores (a pytest mark), got {_show(tag)}"
            )
        else:
            tags.append(tag)
    return tuple(tags)


def _parse_torch_variants(data: dict[str, Any], check: _Checker) -> tuple[str, ...]:
    value = data.get("torch_variants", list(TORCH_VARIANTS))
    expected = f"a list drawn from {', '.join(TORCH_VARIANTS)} that includes contiguous"
    if not isinstance(value, list):
        check.add(("torch_variants",), f"expected {expected}, got {_show(value)}")
        return TORCH_VARIANTS
    for i, variant in enumerate(value):
        if variant not in TORCH_VARIANTS:
            close = difflib.get_close_matches(str(variant), TORCH_VARIANTS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            check.add(("torch_variants", i), f"expected one of {', '.join(TORCH_VARIANTS)}, got {_show(variant)}{hint}")
        elif value.index(variant) != i:
            check.add(("torch_variants", i), f"{variant!r} is listed twice")
    if "contiguous" not in value:
        check.add(("torch_variants",), "must include 'contiguous': it is the forward comparison every case makes")
    return tuple(v for v in value if v in TORCH_VARIANTS)


def _parse_conv(data: dict[str, Any], check: _Checker, lenient: bool) -> ConvConfig | None:
    """Types are checked here; semantics (divisibility, positivity, output_padding smaller than stride
    or dilation, a transposed op's padding_mode) are left to torch and the implementation, so that
    invalid layers can be written as expect_error cases. A key the op does not take is an error here."""
    conv = data.get("conv")
    if conv is None:
        check.add(
            ("conv",),
            "missing required key 'conv' (the keyword arguments of torch.nn.Conv2d, or of the "
            "module named by conv.type)",
        )
        return None
    if not isinstance(conv, dict):
        check.add(("conv",), f"expected a mapping of torch.nn.Conv2d arguments, got {_show(conv)}")
        return None
    path = ("conv",)
    conv_type = conv.get("type", "Conv2d")
    if conv_type not in CONV_TYPES:
        close = difflib.get_close_matches(str(conv_type), CONV_TYPES, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        check.add(path + ("type",), f"expected one of {', '.join(CONV_TYPES)}, got {_show(conv_type)}{hint}")
        return None
    transposed = conv_type.startswith("ConvTranspose")
    dims = int(conv_type[-2])
    allowed = TRANSPOSED_CONV_KEYS if transposed else CONV_KEYS
    for key in conv:
        if key == "type" or key in allowed:
            continue
        if key in TRANSPOSED_CONV_KEYS:  # a real key of another op: say which ops take it
            check.add(
                path + (key,),
                f"{conv_type} takes no {key!r} (only ConvTranspose1d/2d/3d do); "
                f"allowed keys: type, {', '.join(allowed)}",
            )
        else:
            check.keys({key: None}, ("type",) + allowed, path)
    for key in REQUIRED_CONV_KEYS:
        if key not in conv:
            check.add(path + (key,), f"missing required key {key!r}")
    before = len(check.problems)
    kwargs: dict[str, Any] = {"type": conv_type}
    for key in ("in_channels", "out_channels", "groups"):
        if key in conv:
            kwargs[key] = check.integer(conv[key], path + (key,))
    for key in ("kernel_size", "stride", "dilation", "output_padding"):
        if key in conv and key in allowed:
            kwargs[key] = check.int_or_sizes(conv[key], path + (key,), dims)
    if "padding" in conv:
        padding = conv["padding"]
        if isinstance(padding, str):
            if transposed:
                check.add(
                    path + ("padding",),
                    f"{conv_type} takes no string padding (torch has 'same'/'valid' only "
                    f"for convolutions): expected an integer or a list of {dims}",
                )
            elif padding not in PADDING_STRINGS and not lenient:
                check.add(
                    path + ("padding",), f"expected an integer, a list of {dims}, 'same' or 'valid', got {padding!r}"
                )
            kwargs["padding"] = padding
        else:
            kwargs["padding"] = check.int_or_sizes(padding, path + ("padding",), dims)
    if "bias" in conv:
        if not isinstance(conv["bias"], bool):
            check.add(path + ("bias",), f"expected true or false, got {_show(conv['bias'])}")
        kwargs["bias"] = conv["bias"]
    if "padding_mode" in conv:
        mode = conv["padding_mode"]
        if not isinstance(mode, str) or (mode not in PADDING_MODES and not lenient):
            close = difflib.get_close_matches(str(mode), PADDING_MODES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            check.add(path + ("padding_mode",), f"expected one of {', '.join(PADDING_MODES)}, got {_show(mode)}{hint}")
        kwargs["padding_mode"] = mode
    if len(check.problems) > before or any(key not in conv for key in REQUIRED_CONV_KEYS):
        return None
    return ConvConfig(**kwargs)


def _parse_tensor_spec(value: Any, path: KeyPath, check: _Checker) -> TensorSpec | None:
    if isinstance(value, list):
        value = {"values": value}
    if not isinstance(value, dict):
        check.add(
            path,
            "expected a tensor spec: a list of numbers, or a mapping with one of "
            f"{', '.join(GENERATORS)} (plus an optional shape), got {_show(value)}",
        )
        return None
    check.keys(value, GENERATORS + ("shape",), path)
    generators = [key for key in GENERATORS if key in value]
    if len(generators) != 1:
        found = " and ".join(generators) if generators else "none"
        check.add(path, f"expected exactly one generator ({', '.join(GENERATORS)}), found {found}")
        return None
    generator = generators[0]
    shape = None
    if "shape" in value:
        shape = _parse_shape(value["shape"], path + ("shape",), check)
    body, body_path = value[generator], path + (generator,)
    if generator == "values":
        return _parse_values(body, body_path, shape, check)
    if generator == "fill":
        number = check.number(body, body_path) if not _is_special_float(body) else body
        return None if number is None else TensorSpec("fill", {"value": number}, shape)
    if generator == "arange":
        body = {} if body is None else body
        if not isinstance(body, dict):
            check.add(body_path, f"expected a mapping {{start: NUMBER, step: NUMBER}}, got {_show(body)}")
            return None
        check.keys(body, ARANGE_KEYS, body_path)
        options: dict[str, Any] = {
            key: check.number(body[key], body_path + (key,)) for key in ARANGE_KEYS if key in body
        }
        return TensorSpec("arange", options, shape)
    body = {} if body is None else body  # random
    if not isinstance(body, dict):
        check.add(body_path, f"expected a mapping {{seed, distribution, low, high, mean, std}}, got {_show(body)}")
        return None
    check.keys(body, RANDOM_KEYS, body_path)
    options = {}
    if "seed" in body:
        options["seed"] = check.integer(body["seed"], body_path + ("seed",), minimum=0)
    if "distribution" in body:
        if body["distribution"] not in DISTRIBUTIONS:
            check.add(
                body_path + ("distribution",),
                f"expected one of {', '.join(DISTRIBUTIONS)}, got {_show(body['distribution'])}",
            )
        options["distribution"] = body["distribution"]
    for key in ("low", "high", "mean"):
        if key in body:
            options[key] = check.number(body[key], body_path + (key,))
    if "std" in body:
        options["std"] = check.number(body["std"], body_path + ("std",), minimum=0)
    if (
        "low" in options
        and "high" in options
        and None not in (options["low"], options["high"])
        and options["low"] > options["high"]
    ):
        check.add(body_path, f"low ({options['low']}) must not exceed high ({options['high']})")
    return TensorSpec("random", options, shape)


def _is_special_float(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _parse_shape(value: Any, path: KeyPath, check: _Checker) -> tuple[int, ...] | None:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        check.add(path, f"expected a list of non-negative integers, got {_show(value)}")
        return None
    shape = tuple(value)
    if math.prod(shape) > MAX_TENSOR_ELEMENTS:
        check.add(path, f"{math.prod(shape):,} elements is over the limit of {MAX_TENSOR_ELEMENTS:,} per tensor")
        return None
    return shape


def _parse_values(body: Any, path: KeyPath, shape: tuple[int, ...] | None, check: _Checker) -> TensorSpec | None:
    if not isinstance(body, list):
        body = [body]
    flat: list[float] = []
    nested_shape = _nested_shape(body, path, flat, check)
    if nested_shape is None:
        return None
    if len(flat) > MAX_TENSOR_ELEMENTS:
        check.add(path, f"{len(flat):,} values is over the limit of {MAX_TENSOR_ELEMENTS:,} per tensor")
        return None
    if shape is not None and math.prod(shape) != len(flat):
        check.add(path, f"{len(flat)} values do not fill shape {list(shape)} ({math.prod(shape)} elements)")
        return None
    values = np.array(flat, dtype=np.float64)
    # A flat list without a shape keeps shape None, so a weight or bias can take the layer's shape.
    inferred = shape if shape is not None else (nested_shape if len(nested_shape) > 1 else None)
    return TensorSpec("values", {}, inferred, values)


def _nested_shape(node: Any, path: KeyPath, flat: list[float], check: _Checker) -> tuple[int, ...] | None:
    """Check a nested list is rectangular and numeric; append its numbers to ``flat``."""
    if not isinstance(node, list):
        if isinstance(node, bool) or not isinstance(node, (int, float)):
            hint = (
                " (write .nan, .inf or -.inf for special values)"
                if str(node).lower().lstrip("+-") in ("nan", "inf", "infinity")
                else ""
            )
            check.add(path, f"expected a number, got {_show(node)}{hint}")
            return None
        flat.append(float(node))
        return ()
    shapes: list[tuple[int, ...]] = []
    for i, item in enumerate(node):
        sub = _nested_shape(item, path + (i,), flat, check)
        if sub is None:
            return None
        if shapes and sub != shapes[0]:
            check.add(path + (i,), f"ragged nesting: expected shape {list(shapes[0])} like element 0, got {list(sub)}")
            return None
        shapes.append(sub)
    return (len(node),) + (shapes[0] if shapes else ())


def _resolve_shape(
    spec: TensorSpec, layer_shape: tuple[int, ...] | None, path: KeyPath, check: _Checker, missing: str = ""
) -> tuple[int, ...] | None:
    """The tensor's shape: explicit, inferred from nested values, or the layer's."""
    if spec.shape is not None:
        return spec.shape
    if layer_shape is not None:
        if spec.size is not None and spec.size != math.prod(layer_shape):
            check.add(
                path,
                f"{spec.size} values do not fill the layer's shape {list(layer_shape)} "
                f"({math.prod(layer_shape)} elements)",
            )
            return None
        if math.prod(layer_shape) > MAX_TENSOR_ELEMENTS:
            check.add(
                path, f"the layer's shape {list(layer_shape)} is over the limit of {MAX_TENSOR_ELEMENTS:,} elements"
            )
            return None
        return layer_shape
    if spec.size is not None:  # a flat list of values: 1-D
        return (spec.size,)
    check.add(path, missing or "a shape is needed")
    return None


def _check_work_size(conv: ConvConfig, input_shape: tuple[int, ...], check: _Checker) -> None:
    """Refuse outputs over the element limit and cases that would take minutes to run."""
    try:
        output_shape = conv_output_shape(conv, input_shape)
    except (ValueError, TypeError):
        return  # an invalid layer: torch and the implementation will say why
    outputs = math.prod(output_shape)
    if outputs > MAX_TENSOR_ELEMENTS:
        check.add(("conv",), f"the output would have {outputs:,} elements, over the limit of {MAX_TENSOR_ELEMENTS:,}")
    # Either way every product pairs one input (or output) element with one weight tap of its group.
    products_per = (conv.in_channels // conv.groups) * math.prod(conv.kernel_dims)
    if conv.transposed:
        multiply_adds = math.prod(input_shape) * (conv.out_channels // conv.groups) * math.prod(conv.kernel_dims)
    else:
        multiply_adds = outputs * products_per
    if multiply_adds > MAX_MULTIPLY_ADDS:
        check.add(("conv",), f"{multiply_adds:,} multiply-adds is over the limit of {MAX_MULTIPLY_ADDS:,} per case")
