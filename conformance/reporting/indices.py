"""Where an element of an output or a gradient sits, in terms of groups, for every op.

An output element is ``y[n, o, *spatial]`` (``y[o, *spatial]`` unbatched) with the spatial axes
named l (1-d), h, w (2-d) or d, h, w (3-d); the sentence after it says which group the output
channel is in and which input channels feed it (the same for convolutions and transposed ones).
"""

from __future__ import annotations

from conformance.cases.schema import Case

GRADIENT_SYMBOLS = {"grad_input": "dx", "grad_weight": "dw", "grad_bias": "db"}


def describe_output_index(case: Case | None, index: tuple[int, ...]) -> str:
    """(0, 2, 0, 0) -> 'y[n=0, o=2, h=0, w=0]: output channel 2 is in group 1 of 3, which reads input
    channels 2-3'; without a case, a Conv2d's (4 or 3 indices).

    >>> from conformance.cases.schema import ConvConfig
    >>> from types import SimpleNamespace
    >>> case = SimpleNamespace(conv=ConvConfig(4, 4, 3, groups=2, type="ConvTranspose1d"))
    >>> describe_output_index(case, (1, 3, 7))
    'y[n=1, o=3, l=7]: output channel 3 is in group 1 of 2, fed by input channels 2-3'
    """
    dims = case.conv.spatial_dims if case is not None else 2  # without a case: the Conv2d reading
    if len(index) == dims + 2:
        names: tuple[str, ...] = ("n", "o") + SPATIAL_NAMES.get(dims, ())
    elif len(index) == dims + 1:
        names = ("o",) + SPATIAL_NAMES.get(dims, ())
    else:
        return f"element {index}"
    text = "y[" + ", ".join(f"{n}={i}" for n, i in zip(names, index, strict=False)) + "]"
    if case is None or not case.conv.is_divisible:
        return text
    o = index[names.index("o")]
    groups = case.conv.groups
    out_per_group, in_per_group = case.conv.out_channels // groups, case.conv.in_channels // groups
    g = o // out_per_group
    first, last = g * in_per_group, (g + 1) * in_per_group - 1
    inputs = f"input channels {first}-{last}" if last > first else f"input channel {first}"
    verb = "fed by" if case.conv.transposed else "which reads"
    return text + f": output channel {o} is in group {g} of {groups}, {verb} {inputs}"


SPATIAL_NAMES = {1: ("l",), 2: ("h", "w"), 3: ("d", "h", "w")}
KERNEL_NAMES = {1: ("k",), 2: ("p", "q"), 3: ("r", "p", "q")}


def describe_gradient_index(case: Case | None, tensor: str, index: tuple[int, ...]) -> str:
    """Where an element of a gradient sits, in terms of groups. A convolution's weight is
    ``dw[o, c, ...]`` (output channel, tap of its group's inputs); a transposed convolution's is
    ``dw[c, j, ...]`` (input channel, output j of its group).

    >>> describe_gradient_index(None, "grad_weight", (3, 1, 0, 2))
    'dw[o=3, c=1, p=0, q=2]'
    """
    dims = case.conv.spatial_dims if case is not None else 2
    transposed = case is not None and case.conv.transposed
    batched = len(index) == dims + 2
    names = {
        "grad_input": (("n",) if batched else ()) + ("c",) + SPATIAL_NAMES[dims],
        "grad_weight": (("c", "j") if transposed else ("o", "c")) + KERNEL_NAMES[dims],
        "grad_bias": ("o",),
    }[tensor]
    text = f"{GRADIENT_SYMBOLS[tensor]}[" + ", ".join(f"{n}={i}" for n, i in zip(names, index, strict=False)) + "]"
    if case is None or not case.conv.is_divisible:
        return text
    groups = case.conv.groups
    in_per_group, out_per_group = case.conv.in_channels // groups, case.conv.out_channels // groups
    if tensor == "grad_input":
        c = index[names.index("c")]
        g = c // in_per_group
        readers = f"{g * out_per_group}-{(g + 1) * out_per_group - 1}" if out_per_group > 1 else f"{g * out_per_group}"
        verb = "feeds" if transposed else "read by"
        return text + f": input channel {c} is in group {g} of {groups}, {verb} output channel(s) {readers}"
    if tensor == "grad_bias":
        o = index[0]
        return text + f": output channel {o} is in group {o // out_per_group} of {groups}"
    if transposed:
        c, j = index[0], index[1]
        g = c // in_per_group
        return text + (
            f": input channel {c} is in group {g} of {groups}; its column j={j} feeds output channel "
            f"{g * out_per_group + j}"
        )
    o, c = index[0], index[1]
    g = o // out_per_group
    return text + (
        f": output channel {o} is in group {g} of {groups}; its tap c={c} reads input channel {g * in_per_group + c}"
    )
