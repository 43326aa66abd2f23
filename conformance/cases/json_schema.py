"""The JSON Schema of the case format (draft 2020-12, written in keywords draft-07 also has, for
yaml-language-server), generated from the case model's own lists: the keys, enums and patterns
below come from conformance/cases/schema.py, sweep.py, tensors.py and geometry.py, so the schema
cannot drift from the loader. ``conformance schema`` prints it; the shipped
``conformance/case_schema.json`` is this function's output (tests/test_case_json_schema.py checks
that; ``python -m conformance.cases.json_schema`` rewrites it).

The loader stays the source of truth: it checks what a schema cannot (shapes against the layer,
sizes, ragged lists) and gives the clearer messages.

>>> schema = case_json_schema()
>>> schema["$defs"]["conv"]["properties"]["type"]["enum"][:2], schema["required"]
(['Conv1d', 'Conv2d'], ['conv', 'input'])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformance.cases.geometry import OP_TYPES, PADDING_MODES, PADDING_STRINGS, is_transposed, spatial_dims_of
from conformance.cases.schema import (
    ARANGE_KEYS,
    CASE_KEYS,
    CONV_KEYS,
    DTYPES,
    GRADIENTS,
    NEEDS_BACKWARD,
    RANDOM_KEYS,
    REQUIRED_CONV_KEYS,
    SPATIAL_KEYS,
    TAG_PATTERN,
    TOLERANCE_MODES,
    TORCH_VARIANTS,
    TRANSPOSED_CONV_KEYS,
)
from conformance.cases.sweep import MAX_SWEEP_CASES, SWEEP_KEYS
from conformance.cases.tensors import DISTRIBUTIONS, GENERATORS

SHIPPED_FILE = Path(__file__).resolve().parent.parent / "case_schema.json"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}"}


def _described(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, **schema}


def _sweep_of(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "uniqueItems": True, "items": items}


# What each conv key holds (every key of CONV_KEYS and TRANSPOSED_CONV_KEYS needs one).
CONV_KEY_SCHEMAS: dict[str, dict[str, Any]] = {
    "in_channels": {"type": "integer"},
    "out_channels": {"type": "integer"},
    "kernel_size": _ref("size"),
    "stride": _described("Default 1.", _ref("size")),
    "padding": _described(
        "Default 0. Forward convolutions also take 'same' or 'valid'.",
        {"anyOf": [_ref("size"), {"enum": list(PADDING_STRINGS)}, {"type": "string"}]},
    ),
    "output_padding": _described("Transposed convolutions only. Default 0.", _ref("size")),
    "dilation": _described("Default 1.", _ref("size")),
    "groups": _described(
        "Default 1. Must divide in_channels and out_channels (else write an expect_error case).", {"type": "integer"}
    ),
    "bias": _described("Default true.", {"type": "boolean"}),
    "padding_mode": _described(
        "Default zeros; transposed convolutions take zeros only.",
        {"anyOf": [{"enum": list(PADDING_MODES)}, {"type": "string"}]},
    ),
}
# What a sweep over each sweepable key lists (every key of SWEEP_KEYS needs one).
SWEEP_ITEMS: dict[str, str] = {
    "in_channels": "sweepOfIntegers",
    "out_channels": "sweepOfIntegers",
    "groups": "sweepOfIntegers",
    "kernel_size": "sweepOfSizes",
    "stride": "sweepOfSizes",
    "dilation": "sweepOfSizes",
    "output_padding": "sweepOfSizes",
    "padding": "sweepOfPaddings",
    "bias": "sweepOfBooleans",
    "padding_mode": "sweepOfStrings",
    "dtype": "sweepOfDtypes",
    "input.shape": "sweepOfShapes",
}


def _case_properties() -> dict[str, Any]:
    sweep_properties: dict[str, Any] = {}
    for key in SWEEP_KEYS:
        if key == "type":
            sweep_properties[key] = _sweep_of({"$ref": "#/$defs/conv/properties/type"})
        else:
            sweep_properties[key] = _ref(SWEEP_ITEMS[key])
    properties = {
        "name": _described(
            "The case's name (default: the file's path under cases/, without suffix; '#i' per document when a "
            "file holds several).",
            {"type": "string", "pattern": "\\S"},
        ),
        "description": _described(
            "What the case shows or guards against; `conformance explain` prints it.", {"type": "string"}
        ),
        "conv": _ref("conv"),
        "dtype": _ref("dtype"),
        "input": _described(
            "The input tensor, (N, C, *spatial) or unbatched (C, *spatial). A generator other than values needs "
            "a shape.",
            _ref("tensor"),
        ),
        "weight": _described(
            "Default: random. The shape may be left out: the layer fixes it ((out, in/groups, *kernel); "
            "transposed: (in, out/groups, *kernel)).",
            _ref("tensor"),
        ),
        "bias": _described("Only with conv.bias true (default: random, shape (out_channels,)).", _ref("tensor")),
        "expected": _described(
            "The golden output. Not with expect_error or sweep.", {"allOf": [_ref("tensor"), _ref("shapeUnlessValues")]}
        ),
        "tolerance": _described(
            "Default: the error bound per element (docs/tolerance.md). Giving rtol or atol selects assert_close "
            "with those values.",
            {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {
                    "rtol": {"type": "number", "minimum": 0},
                    "atol": {"type": "number", "minimum": 0},
                    "mode": {"enum": list(TOLERANCE_MODES)},
                },
            },
        ),
        "expect_error": _described(
            "true, or {match: REGEX}: the layer is invalid; torch and the implementation must both refuse it, "
            "with messages matching REGEX.",
            {
                "anyOf": [
                    {"type": "boolean"},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["match"],
                        "properties": {"match": {"type": "string", "format": "regex"}},
                    },
                ]
            },
        ),
        "tags": _described(
            "Names that become pytest marks.",
            {"type": "array", "items": {"type": "string", "pattern": TAG_PATTERN.pattern}},
        ),
        "backward": _described("Also compare the gradients of sum(output * grad_output).", {"type": "boolean"}),
        "grad_output": _described("Needs backward: true. Default: random, shaped like the output.", _ref("tensor")),
        "expected_gradients": _described(
            "Needs backward: true. Golden gradients, compared like expected.",
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {gradient: _ref("tensor") for gradient in GRADIENTS},
            },
        ),
        "torch_variants": _described(
            "How torch is run as the oracle; contiguous is the forward comparison and must be listed.",
            {
                "type": "array",
                "uniqueItems": True,
                "items": {"enum": list(TORCH_VARIANTS)},
                "contains": {"const": "contiguous"},
            },
        ),
        "sweep": _described(
            "Expand the case into the cartesian product of these lists; each expansion is its own case, named "
            f"NAME[key=value,...]. At most {MAX_SWEEP_CASES} expansions.",
            {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": sweep_properties},
        ),
    }
    assert tuple(properties) == CASE_KEYS, "every case key (schema.CASE_KEYS) needs its schema here, in order"
    return properties


def _rules() -> list[dict[str, Any]]:
    """What the whole document must satisfy: the exclusions between keys."""
    rules: list[dict[str, Any]] = [
        {
            "$comment": "An invalid layer has no output and no gradients.",
            "if": _ref("expectsError"),
            "then": {"not": {"required": ["expected"]}, "properties": {"backward": {"const": False}}},
        },
        {
            "$comment": "Outside expect_error cases the strings are checked; an expect_error case may use any "
            "string, to show that torch refuses it.",
            "if": {"not": _ref("expectsError")},
            "then": {
                "properties": {
                    "conv": {
                        "properties": {
                            "padding": {"if": {"type": "string"}, "then": {"enum": list(PADDING_STRINGS)}},
                            "padding_mode": {"enum": list(PADDING_MODES)},
                        }
                    }
                }
            },
        },
        {
            "$comment": "conv.bias false: no bias tensor and no grad_bias.",
            "if": {
                "required": ["conv"],
                "properties": {"conv": {"required": ["bias"], "properties": {"bias": {"const": False}}}},
            },
            "then": {
                "not": {"required": ["bias"]},
                "properties": {"expected_gradients": {"not": {"required": ["grad_bias"]}}},
            },
        },
        {
            "$comment": "One golden output cannot fit every expansion of a sweep.",
            "not": {"required": ["expected", "sweep"]},
        },
        {
            "$comment": f"{' and '.join(NEEDS_BACKWARD)} need backward: true (if/then rather than "
            "dependentSchemas, so that draft-07 validators such as yaml-language-server's apply it too).",
            "if": {"anyOf": [{"required": [key]} for key in NEEDS_BACKWARD]},
            "then": {"required": ["backward"], "properties": {"backward": {"const": True}}},
        },
    ]
    for key in REQUIRED_CONV_KEYS:
        rules.append(
            {
                "$comment": f"conv.{key} is required; a sweep over it provides it.",
                "anyOf": [
                    {"properties": {"conv": {"required": [key]}}},
                    {"required": ["sweep"], "properties": {"sweep": {"required": [key]}}},
                ],
            }
        )
    rules.append(
        {
            "$comment": "The input's shape: from values, from shape, or from a sweep over input.shape.",
            "if": {"not": {"required": ["sweep"], "properties": {"sweep": {"required": ["input.shape"]}}}},
            "then": {"properties": {"input": _ref("shapeUnlessValues")}},
        }
    )
    return rules


def _conv() -> dict[str, Any]:
    keys = ["type"] + [key for key in CONV_KEY_SCHEMAS if key in CONV_KEYS or key in TRANSPOSED_CONV_KEYS]
    assert set(CONV_KEYS) | set(TRANSPOSED_CONV_KEYS) <= set(CONV_KEY_SCHEMAS), "a conv key lacks its schema"
    properties: dict[str, Any] = {
        "type": {"description": "The torch.nn module (default Conv2d).", "enum": list(OP_TYPES)}
    }
    properties.update({key: CONV_KEY_SCHEMAS[key] for key in keys[1:]})
    by_dims = {dims: [op for op in OP_TYPES if spatial_dims_of(op) == dims] for dims in (1, 2, 3)}
    rules: list[dict[str, Any]] = []
    for dims in (1, 3):
        rule: dict[str, Any] = {
            "if": {"required": ["type"], "properties": {"type": {"enum": by_dims[dims]}}},
            "then": _ref(f"listsOfLength{dims}"),
        }
        if dims == 1:
            rule = {
                "$comment": "Lists have one entry per spatial dimension: 1 for Conv1d, 2 for Conv2d (the default), "
                "3 for Conv3d.",
                **rule,
            }
        rules.append(rule)
    rules.append(
        {
            "if": {"anyOf": [{"not": {"required": ["type"]}}, {"properties": {"type": {"enum": by_dims[2]}}}]},
            "then": _ref("listsOfLength2"),
        }
    )
    rules.append(
        {
            "$comment": "output_padding is an argument of the transposed convolutions only.",
            "if": {
                "not": {
                    "required": ["type"],
                    "properties": {"type": {"enum": [op for op in OP_TYPES if is_transposed(op)]}},
                }
            },
            "then": {"not": {"required": ["output_padding"]}},
        }
    )
    return {
        "description": "The keyword arguments of the torch.nn module named by type (default Conv2d). Semantics "
        "(groups dividing the channels, positive strides, ...) are not checked here: an invalid layer is written "
        "as an expect_error case.",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "allOf": rules,
    }


def _tensor() -> dict[str, Any]:
    generators = {
        "values": _described("A nested list (shape inferred) or a flat list with shape.", _ref("numbers")),
        "arange": _described(
            "start + step*i in row-major order.",
            {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {key: {"type": "number"} for key in ARANGE_KEYS},
            },
        ),
        "fill": _described("Every element.", {"type": "number"}),
        "random": _described(
            "NumPy default_rng(seed); without seed, one derived from the case name and the tensor's role.",
            {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {
                    key: {
                        "seed": {"type": "integer", "minimum": 0},
                        "distribution": {"enum": list(DISTRIBUTIONS)},
                        "std": {"type": "number", "minimum": 0},
                    }.get(key, {"type": "number"})
                    for key in RANDOM_KEYS
                },
            },
        ),
    }
    assert tuple(generators) == GENERATORS, "every generator (tensors.GENERATORS) needs its schema here"
    return {
        "description": "A list of numbers (shorthand for {values: [...]}) or exactly one generator "
        f"({', '.join(GENERATORS)}) plus an optional shape.",
        "anyOf": [
            {"type": "array", "items": _ref("numbers")},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {**generators, "shape": _ref("shape")},
                "oneOf": [{"required": [generator]} for generator in GENERATORS],
            },
        ],
    }


def _definitions() -> dict[str, Any]:
    definitions: dict[str, Any] = {
        "expectsError": {"required": ["expect_error"], "properties": {"expect_error": {"not": {"const": False}}}},
        "dtype": _described(
            "The dtype both sides compute in (bfloat16 tensors reach a NumPy plug-in as float32 arrays of bfloat16 "
            "values).",
            {"enum": list(DTYPES)},
        ),
        "size": _described(
            "An int (the same in every spatial dimension) or a list with one int per spatial dimension.",
            {
                "anyOf": [
                    {"type": "integer"},
                    {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
                ]
            },
        ),
        "conv": _conv(),
    }
    for dims in (1, 2, 3):
        definitions[f"listsOfLength{dims}"] = {
            "$comment": "minItems/maxItems constrain lists only; an int passes.",
            "properties": {key: {"minItems": dims, "maxItems": dims} for key in SPATIAL_KEYS_IN_CONV_ORDER},
        }
    definitions.update(
        {
            "numbers": _described(
                "A number or a (nested) list of numbers; write .nan, .inf and -.inf for special values.",
                {"anyOf": [{"type": "number"}, {"type": "array", "items": _ref("numbers")}]},
            ),
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "tensor": _tensor(),
            "shapeUnlessValues": {
                "$comment": "Nothing else fixes the shape of the input or of the expected output.",
                "anyOf": [{"type": "array"}, {"required": ["values"]}, {"required": ["shape"]}],
            },
            "sweepOfIntegers": _sweep_of({"type": "integer"}),
            "sweepOfBooleans": _sweep_of({"type": "boolean"}),
            "sweepOfStrings": _sweep_of({"type": "string"}),
            "sweepOfSizes": _sweep_of(_ref("size")),
            "sweepOfPaddings": _sweep_of({"anyOf": [_ref("size"), {"type": "string"}]}),
            "sweepOfDtypes": _sweep_of(_ref("dtype")),
            "sweepOfShapes": _sweep_of(_ref("shape")),
        }
    )
    return definitions


# The spatial keys in the order the conv mapping lists them (kernel_size, stride, padding, output_padding, dilation).
SPATIAL_KEYS_IN_CONV_ORDER = tuple(key for key in CONV_KEY_SCHEMAS if key in SPATIAL_KEYS)


def case_json_schema() -> dict[str, Any]:
    """The JSON Schema of one case document."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "groups-conformance case",
        "description": "One case of the groups-conformance harness: a convolution layer (conv), its input, and "
        "optionally its weight, bias, expected output or expected error. The loader (conformance/cases/schema.py) "
        "is the source of truth and gives the clearer messages; this schema lets an editor validate and complete "
        "a case file as you type. Put `# yaml-language-server: $schema=PATH` on the first line of a case file; "
        "`conformance schema` prints this file.",
        "type": "object",
        "additionalProperties": False,
        "required": ["conv", "input"],
        "properties": _case_properties(),
        "allOf": _rules(),
        "$defs": _definitions(),
    }


def case_json_schema_text() -> str:
    """The schema as the shipped file holds it: JSON, two-space indents, a final newline."""
    return json.dumps(case_json_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # rewrite the shipped file: python -m conformance.cases.json_schema
    SHIPPED_FILE.write_text(case_json_schema_text(), encoding="utf-8")
    print(f"wrote {SHIPPED_FILE}")
