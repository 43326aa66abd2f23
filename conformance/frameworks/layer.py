"""What every adapter does the same way: read torch's conv2d arguments into the explicit numbers a
framework op takes. Only arithmetic on the layer's configuration happens here (pad amounts, pairs);
never on the tensors: padding and convolving are each framework's own ops.

torch's conventions, which every adapter translates from:

* input NCHW ``(N, C_in, H, W)`` (or unbatched ``(C_in, H, W)``, which torch computes as a batch of
  one: every adapter adds the batch axis with its framework's own op and removes it after), weight OIHW
  ``(C_out, C_in/groups, kH, kW)``, output NCHW;
* ``padding``: an int, a pair ``(pH, pW)`` (each side of that dimension gets it), or "valid" / "same";
  "same" splits the total ``dilation * (k - 1)`` as ``total // 2`` before and the rest after;
* ``padding_mode`` "zeros" pads inside the convolution; "reflect", "replicate" and "circular" pad
  the input first (``F.pad``) by the same amounts, then convolve with no padding.

>>> explicit_padding("same", (3, 4), (2, 1))
((2, 2), (1, 2))
>>> explicit_padding((1, 0), (3, 3), 1)
((1, 1), (0, 0))
>>> pair(2), pair((1, 3))
((2, 2), (1, 3))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from conformance.judging.outcomes import Unsupported

Pads = tuple[tuple[int, int], ...]  # ((before, after) per spatial dimension): 2-D ((top, bottom), (left, right))


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    """torch's int-or-pair argument as a pair (an int applies to both H and W)."""
    return ntuple(value, 2)  # type: ignore[return-value]


def ntuple(value: int | Sequence[int], dims: int) -> tuple[int, ...]:
    """torch's int-or-tuple argument as one value per spatial dimension.

    >>> ntuple(2, 3), ntuple((1, 2, 3), 3), ntuple((4,), 1)
    ((2, 2, 2), (1, 2, 3), (4,))
    """
    if isinstance(value, int):
        return (value,) * dims
    values = tuple(int(v) for v in value)
    if len(values) == 1:
        return values * dims
    if len(values) != dims:
        raise Unsupported(f"a {dims}-D convolution takes one or {dims} values per argument, got {tuple(value)}")
    return values


def explicit_padding(padding: Any, kernel_hw: Sequence[int], dilation: int | Sequence[int]) -> Pads:
    """``padding`` as ``(before, after)`` per spatial dimension — for 2-D ``((top, bottom), (left,
    right))`` — by torch's rule (see the module docstring); as many dimensions as the kernel has.
    A string torch does not define has nothing to translate to: Unsupported."""
    dims = len(kernel_hw)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * dims
        if padding == "same":
            totals = [d * (k - 1) for d, k in zip(ntuple(dilation, dims), kernel_hw, strict=False)]
            return tuple((total // 2, total - total // 2) for total in totals)
        raise Unsupported(f"padding={padding!r} is no padding torch defines; there is nothing to translate it to")
    return tuple((p, p) for p in ntuple(padding, dims))


def check_padding_mode(padding_mode: str, framework_modes: dict[str, str], framework: str) -> str:
    """The framework's name for torch's ``padding_mode`` (e.g. replicate -> "edge"); Unsupported
    when the framework has no such pad."""
    if padding_mode not in framework_modes:
        known = ", ".join(sorted(framework_modes)) or "none"
        raise Unsupported(f"{framework} has no padding mode equivalent to torch's {padding_mode!r} (it has: {known})")
    return framework_modes[padding_mode]


def kernel_hw(weight: Any, spatial_dims: int = 2) -> tuple[int, ...]:
    """The kernel's spatial size, (kH, kW) of an OIHW weight: its last ``spatial_dims`` dimensions
    (whatever the weight's rank, for the op to judge)."""
    shape = tuple(int(v) for v in weight.shape)
    return shape[-spatial_dims:] if len(shape) >= spatial_dims else (1,) * spatial_dims


def functional_convs(conv: Callable[..., Any]) -> tuple[Callable[..., Any], ...]:
    """``conv1d``, ``conv2d``, ``conv3d`` with ``torch.nn.functional``'s signatures (plus
    ``padding_mode``), each calling ``conv(dims, input, weight, bias, stride, padding, dilation, groups,
    padding_mode)``: an adapter whose framework takes every rank through one op writes that op once.
    The functions carry the adapter's module and their torch names, so a repro script imports them
    from the adapter."""

    def for_dims(dims: int) -> Callable[..., Any]:
        def convnd(
            input: Any,
            weight: Any,
            bias: Any = None,
            stride: Any = 1,
            padding: Any = 0,
            dilation: Any = 1,
            groups: int = 1,
            padding_mode: str = "zeros",
        ) -> Any:
            return conv(dims, input, weight, bias, stride, padding, dilation, groups, padding_mode)

        return _named(convnd, f"conv{dims}d", conv)

    return tuple(for_dims(dims) for dims in (1, 2, 3))


def functional_conv_transposes(
    conv_transpose: Callable[..., Any], *, takes_padding_mode: bool = False
) -> tuple[Callable[..., Any], ...]:
    """``conv_transpose1d/2d/3d`` with ``torch.nn.functional``'s signatures (note the order: output_padding
    before groups, dilation last; ``padding_mode`` other than zeros is ``Unsupported``), each calling
    ``conv_transpose(dims, input, weight, bias, stride, padding, output_padding, groups, dilation)``; see
    :func:`functional_convs`. ``takes_padding_mode``: ``padding_mode`` is passed on as a last argument
    instead, for an adapter whose framework judges it itself (executorch: torch's layer constructor)."""

    def for_dims(dims: int) -> Callable[..., Any]:
        def conv_transposend(
            input: Any,
            weight: Any,
            bias: Any = None,
            stride: Any = 1,
            padding: Any = 0,
            output_padding: Any = 0,
            groups: int = 1,
            dilation: Any = 1,
            padding_mode: str = "zeros",
        ) -> Any:
            arguments = (dims, input, weight, bias, stride, padding, output_padding, groups, dilation)
            if takes_padding_mode:
                return conv_transpose(*arguments, padding_mode)
            if padding_mode != "zeros":  # the harness passes it as the case wrote it (torch refuses it too)
                raise Unsupported(
                    f"a transposed convolution here pads with zeros only; there is no "
                    f"padding_mode {padding_mode!r} to pass on"
                )
            return conv_transpose(*arguments)

        return _named(conv_transposend, f"conv_transpose{dims}d", conv_transpose)

    return tuple(for_dims(dims) for dims in (1, 2, 3))


def _named(function: Callable[..., Any], name: str, owner: Callable[..., Any]) -> Callable[..., Any]:
    function.__name__ = function.__qualname__ = name
    function.__module__ = owner.__module__
    return function
