"""The wiring probe: the seed's digit trick made exact.

Feed one input per input channel, that channel all ones and every other channel zero, through the
implementation with an all-ones weight and no bias, and see which output channels light up. Output
channel ``o`` depends on input channel ``c`` exactly when ``o`` and ``c`` are in the same group, so
the measured connectivity matrix (output channel x input channel) must be block-diagonal. Ones
everywhere mean no cancellation and no zero weight can hide a connection.

All ``C_in`` one-hot inputs go in as *one batch* of ``C_in`` samples, so the probe costs a single
call, on the smallest spatial size where some output still reads a real pixel (often 1 x 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from conformance.cases.geometry import group_of
from conformance.cases.schema import DTYPES, Case, ConvConfig, conv_output_shape
from conformance.judging.verdict import Check
from conformance.running.case_run import CaseRun
from conformance.running.implementations import Implementation

MAX_PAIRS_SHOWN = 12
MAX_FULL_MATRIX = 48  # up to this many channels the matrix is printed element by element


@dataclass(frozen=True)
class Connectivity:
    """Measured and expected connectivity, ``[output channel, input channel]``."""

    measured: np.ndarray  # bool (C_out, C_in)
    expected: np.ndarray  # bool (C_out, C_in)
    groups: int
    probe_shape: tuple[int, ...]

    @property
    def extra(self) -> list[tuple[int, int]]:
        """(o, c) pairs connected that must not be."""
        return [(int(o), int(c)) for o, c in np.argwhere(self.measured & ~self.expected)]

    @property
    def missing(self) -> list[tuple[int, int]]:
        """(o, c) pairs that must be connected and are not."""
        return [(int(o), int(c)) for o, c in np.argwhere(~self.measured & self.expected)]

    @property
    def matches(self) -> bool:
        return bool(np.array_equal(self.measured, self.expected))


def expected_connectivity(in_channels: int, out_channels: int, groups: int) -> np.ndarray:
    """The block-diagonal pattern: output o reads input c iff o // (C_out/G) == c // (C_in/G).

    >>> expected_connectivity(4, 2, 2).astype(int).tolist()
    [[1, 1, 0, 0], [0, 0, 1, 1]]
    """
    out_group = group_of(np.arange(out_channels), channels=out_channels, groups=groups)
    in_group = group_of(np.arange(in_channels), channels=in_channels, groups=groups)
    return out_group[:, None] == in_group[None, :]


class NothingToProbe(Exception):
    """The layer's outputs read only padding (e.g. a 1x1 input, padding 1, stride 2): every output
    is the bias whatever the input, so no connection can be measured."""


def probe_spatial_size(case: Case) -> tuple[int, ...]:
    """The smallest spatial size per axis, up to the case's own, that the layer accepts and where
    some input position reaches some output position through a kernel tap that is not zero
    padding, so every connection shows.

    Raises :class:`NothingToProbe` when not even the case's own size has such a position.
    """
    conv = case.conv
    dims = conv.spatial_dims
    full_sizes = case.input_shape[-dims:]
    sizes = []
    for axis, full in enumerate(full_sizes):
        for size in range(1, full + 1):
            probe = [1, conv.in_channels, *full_sizes]
            probe[2 + axis] = size
            try:
                output_size = conv_output_shape(conv, tuple(probe))[2 + axis]
            except ValueError:
                continue
            if _reads_a_pixel(conv, axis, size, output_size):
                sizes.append(size)
                break
        else:
            axis_name = {1: "L", 2: "HW", 3: "DHW"}[dims][axis]
            raise NothingToProbe(f"along {axis_name}, every output position of this layer reads only padding")
    return tuple(sizes)


def _reads_a_pixel(conv: ConvConfig, axis: int, size: int, output_size: int) -> bool:
    """Whether along ``axis`` some kernel tap links a real input position (not zero padding) to a
    real output position: output o, tap t and input i are linked when i = o*stride + t*dilation -
    padding (a convolution reads i; a transposed convolution writes o from i)."""
    kernel, stride, dilation = (conv.per_dim(key)[axis] for key in ("kernel_size", "stride", "dilation"))
    if conv.padding == "same":
        before = dilation * (kernel - 1) // 2
    else:
        before = conv.per_dim("padding")[axis]
    if not conv.transposed and conv.padding_mode != "zeros":
        return output_size > 0  # padding copies real pixels: every tap reads one
    taps = np.arange(kernel) * dilation
    if conv.transposed:
        reached = (np.arange(size)[:, None] * stride + taps[None, :] - before).ravel()  # output positions
        return bool(((reached >= 0) & (reached < output_size)).any())
    read = (np.arange(output_size)[:, None] * stride + taps[None, :] - before).ravel()  # input positions
    return bool(((read >= 0) & (read < size)).any())


def measure_connectivity(implementation: Implementation, case: Case) -> Connectivity:
    """Run the probe through ``implementation``; raises whatever the implementation raises."""
    conv = case.conv
    dims = conv.spatial_dims
    spatial = probe_spatial_size(case)
    dtype = DTYPES[case.dtype]
    weight = np.ones(conv.weight_shape(), dtype=dtype)
    one_hot = np.eye(conv.in_channels, dtype=dtype).reshape(conv.in_channels, conv.in_channels, *(1,) * dims)
    if len(case.input_shape) == dims + 2:
        x = np.ascontiguousarray(np.broadcast_to(one_hot, (conv.in_channels, conv.in_channels, *spatial)))
        output = np.asarray(implementation.forward(case, x, weight, None))  # (C_in samples, C_out, *spatial_out)
        _require_shape(output, (conv.in_channels, conv.out_channels), implementation, dims)
        reached = output.reshape(conv.in_channels, conv.out_channels, -1)
    else:  # an unbatched case is probed unbatched: one call per input channel
        reached_list = []
        for channel in range(conv.in_channels):
            x = np.ascontiguousarray(np.broadcast_to(one_hot[channel], (conv.in_channels, *spatial)))
            output = np.asarray(implementation.forward(case, x, weight, None))  # (C_out, *spatial_out)
            _require_shape(output[None], (1, conv.out_channels), implementation, dims)
            reached_list.append(output.reshape(conv.out_channels, -1))
        reached = np.stack(reached_list)  # (C_in, C_out, prod(spatial_out))
    # Non-finite counts as reached: a NaN where a zero belongs is a connection that must not exist.
    lit = (reached != 0).any(axis=-1) if reached.shape[-1] else np.zeros(reached.shape[:2], bool)  # (C_in, C_out)
    expected = expected_connectivity(conv.in_channels, conv.out_channels, conv.groups)
    probe_shape = (
        (conv.in_channels, conv.in_channels, *spatial)
        if len(case.input_shape) == dims + 2
        else (conv.in_channels, *spatial)
    )
    return Connectivity(lit.T.copy(), expected, conv.groups, probe_shape)


def _require_shape(output: np.ndarray, leading: tuple[int, int], implementation: Implementation, dims: int = 2) -> None:
    if output.ndim != dims + 2 or output.shape[:2] != leading:
        raise ValueError(
            f"{implementation.name} returned shape {tuple(output.shape)} for the probe; "
            f"expected ({leading[0]}, {leading[1]}, {', '.join(['*'] * dims)}) (spatial sizes any)"
        )


def format_connectivity(connectivity: Connectivity) -> list[str]:
    """The measured matrix next to the expected one ('#' connected, '.' not), rows = output channels.

    Beyond MAX_FULL_MATRIX channels, one character per (output group, input group) block:
    '#' all connected, '.' none, '?' some.
    """
    measured, expected = connectivity.measured, connectivity.expected
    out_channels, in_channels = measured.shape
    groups = connectivity.groups
    if max(out_channels, in_channels) <= MAX_FULL_MATRIX:
        rows = [(f"o={o:<3d}", measured[o], expected[o]) for o in range(out_channels)]
        header = f"rows: output channel; columns: input channel 0..{in_channels - 1}"
        render = lambda row: "".join("#" if v else "." for v in row)  # noqa: E731
    else:
        out_per, in_per = out_channels // groups, in_channels // groups

        def blocks(matrix: np.ndarray) -> np.ndarray:
            return matrix.reshape(groups, out_per, groups, in_per).transpose(0, 2, 1, 3).reshape(groups, groups, -1)

        measured_blocks, expected_blocks = blocks(measured), blocks(expected)
        if groups > MAX_FULL_MATRIX:
            return [
                f"{groups} x {groups} groups: too many to draw; "
                f"{'matches' if connectivity.matches else 'differs from'} the block-diagonal pattern"
            ]
        rows = [(f"g={g:<3d}", measured_blocks[g], expected_blocks[g]) for g in range(groups)]
        header = f"one character per (output group, input group) block of {out_per} x {in_per} channels"
        render = lambda row: "".join("#" if b.all() else "." if not b.any() else "?" for b in row)  # noqa: E731
    width = max(len(render(rows[0][1])), len("measured")) if rows else 8
    lines = [header, f"       {'measured':<{width}}   {'expected':<{width}}"]
    for label, got, want in rows:
        flag = "" if np.array_equal(got, want) else "   <- differs"
        lines.append(f"{label}  {render(got):<{width}}   {render(want):<{width}}{flag}")
    return lines


def describe_differences(connectivity: Connectivity) -> list[str]:
    """The offending (output, input) pairs, at most MAX_PAIRS_SHOWN of each kind."""
    lines = []
    groups = connectivity.groups
    out_per = connectivity.measured.shape[0] // groups
    in_per = connectivity.measured.shape[1] // groups
    for pairs, what in (
        (connectivity.extra, "connected but in different groups"),
        (connectivity.missing, "in the same group but not connected"),
    ):
        if not pairs:
            continue
        shown = ", ".join(f"(o={o} [g{o // out_per}], c={c} [g{c // in_per}])" for o, c in pairs[:MAX_PAIRS_SHOWN])
        more = f" and {len(pairs) - MAX_PAIRS_SHOWN} more" if len(pairs) > MAX_PAIRS_SHOWN else ""
        lines.append(f"{len(pairs)} pairs {what}: {shown}{more}")
    return lines


def wiring_check(run: CaseRun) -> list[Check]:
    """The probe as a check of every case with groups > 1."""
    case = run.case
    if case.conv.groups <= 1 or not case.conv.is_divisible:
        return []
    try:
        connectivity = measure_connectivity(run.implementation, case)
    except NothingToProbe as reason:
        return [Check("wiring", True, f"wiring probe: nothing to measure ({reason}; every output is the bias)")]
    except Exception as exc:
        return [
            Check(
                "wiring",
                False,
                f"wiring probe: the implementation failed on the one-hot probe: {type(exc).__name__}: {exc}",
            )
        ]
    shape = "x".join(map(str, connectivity.probe_shape))
    if connectivity.matches:
        return [
            Check(
                "wiring",
                True,
                f"wiring probe: block-diagonal as expected "
                f"({case.conv.out_channels} x {case.conv.in_channels}, probe input {shape})",
            )
        ]
    wrong = len(connectivity.extra) + len(connectivity.missing)
    return [
        Check(
            "wiring",
            False,
            f"wiring probe: {wrong} (output, input) channel pairs wired wrong",
            describe_differences(connectivity) + format_connectivity(connectivity),
        )
    ]
