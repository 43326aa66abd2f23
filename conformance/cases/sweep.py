"""``sweep:``: one case document that expands into the cartesian product of some of its settings.

A case may sweep any ``conv`` key, ``dtype`` and ``input.shape``::

    name: semantics/stride_sweep
    conv: {in_channels: 6, out_channels: 6, kernel_size: 3}
    input: {random: {}, shape: [2, 6, 9, 7]}
    sweep:
      groups: [1, 2, 3]
      stride: [1, [2, 1]]

becomes six cases, ``semantics/stride_sweep[groups=1,stride=1]`` …
``semantics/stride_sweep[groups=3,stride=2x1]``, each its own test. Everything is resolved per
expansion: the weight and bias shapes follow the swept layer, and random tensors without a seed
derive theirs from the expanded name, so every expansion gets its own data.

``expected`` cannot be combined with ``sweep`` (one golden output cannot fit every expansion).
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
from pathlib import Path
from typing import Any

from conformance.cases.errors import CaseError, KeyPath, Problem
from conformance.cases.yaml_loader import Document

MAX_SWEEP_CASES = 256  # a sweep that expands to more cases than this is refused
CONV_SWEEP_KEYS = (
    "type",
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "output_padding",
    "dilation",
    "groups",
    "bias",
    "padding_mode",
)
SWEEP_KEYS = CONV_SWEEP_KEYS + ("dtype", "input.shape")


def format_sweep_value(value: Any) -> str:
    """How a swept value appears in a case name: ``[2, 1]`` -> ``2x1``.

    >>> format_sweep_value([2, 1]), format_sweep_value("same"), format_sweep_value(True)
    ('2x1', 'same', 'true')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "x".join(format_sweep_value(item) for item in value)
    return str(value)


def expand_sweep(document: Document, file: Path, name: str) -> list[tuple[Document, str]]:
    """The documents a (possibly sweeping) document stands for, each with its case name.

    A document without ``sweep`` is returned as it is. Raises :class:`CaseError` naming the file,
    the line and the ``sweep`` key for an unknown key, a value that is not a non-empty list, a value
    listed twice, ``expected`` next to ``sweep``, or a product over :data:`MAX_SWEEP_CASES`.
    """
    data = document.data
    if not isinstance(data, dict) or "sweep" not in data:
        return [(document, name)]
    name = data.get("name", name) if isinstance(data.get("name", name), str) else name
    sweep = data["sweep"]
    problems: list[Problem] = []

    def problem(path: KeyPath, message: str) -> None:
        problems.append(Problem(path, message, document.line_of(path)))

    if not isinstance(sweep, dict) or not sweep:
        problem(
            ("sweep",),
            f"expected a mapping of swept keys to lists of values, e.g. {{groups: [1, 2, 4]}}; got {sweep!r}",
        )
        raise CaseError(file, problems, case_name=name)
    if "expected" in data:
        problem(
            ("expected",),
            "'expected' cannot be combined with 'sweep': one golden output cannot fit every "
            "expansion (write the expansions you want golden outputs for as separate cases)",
        )
    for key, values in sweep.items():
        if key not in SWEEP_KEYS:
            close = difflib.get_close_matches(key, SWEEP_KEYS, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; sweepable keys: {', '.join(SWEEP_KEYS)}"
            problem(("sweep", key), f"cannot sweep {key!r}{hint}")
        elif not isinstance(values, list) or not values:
            problem(("sweep", key), f"expected a non-empty list of values, got {values!r}")
        else:
            labels = [format_sweep_value(v) for v in values]
            repeated = sorted({label for label in labels if labels.count(label) > 1})
            if repeated:
                problem(("sweep", key), f"value {repeated[0]} is listed twice (the expansions would share a name)")
    if not problems:
        count = math.prod(len(values) for values in sweep.values())
        if count > MAX_SWEEP_CASES:
            sizes = " x ".join(f"{len(v)} {k}" for k, v in sweep.items())
            problem(
                ("sweep",),
                f"the sweep expands to {count:,} cases ({sizes}), over the limit of "
                f"{MAX_SWEEP_CASES}; split it into several cases",
            )
    if problems:
        raise CaseError(file, problems, case_name=name)

    keys = list(sweep)
    base = {key: value for key, value in data.items() if key not in ("sweep", "name")}
    expansions = []
    for combination in itertools.product(*(sweep[key] for key in keys)):
        expanded = copy.deepcopy(base)
        for key, value in zip(keys, combination, strict=False):
            _assign(expanded, key, copy.deepcopy(value))
        label = ",".join(f"{key}={format_sweep_value(value)}" for key, value in zip(keys, combination, strict=False))
        expanded_name = f"{name}[{label}]"
        expanded["name"] = expanded_name
        expansions.append((Document(expanded, document.lines, document.index, document.line), expanded_name))
    return expansions


def _assign(data: dict[str, Any], key: str, value: Any) -> None:
    """Put one swept value where the case format expects it."""
    if key == "dtype":
        data["dtype"] = value
    elif key == "input.shape":
        spec = data.get("input")
        if isinstance(spec, list):  # the shorthand `input: [...]` for {values: [...]}
            spec = {"values": spec}
        if isinstance(spec, dict):
            data["input"] = dict(spec, shape=value)
        # a missing or malformed input is reported by parse_case with its own message
    else:
        conv = data.get("conv")
        if isinstance(conv, dict):
            conv[key] = value
        # a missing or malformed conv is reported by parse_case with its own message
