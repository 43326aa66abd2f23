"""The JSON Schema of the case format (conformance/case_schema.json, `conformance schema`).

The loader stays the source of truth; these tests keep the schema honest against it: every case in
the library validates, the schema's keys and enums are the loader's, and on the loader's own
bad-input tests the schema refuses the same documents, except for the checks listed in
NOT_EXPRESSIBLE, which JSON Schema cannot state.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from conformance.cases import schema as loader_schema, sweep as loader_sweep
from conformance.cases.errors import CaseError
from conformance.cases.json_schema import case_json_schema_text
from conformance.cases.loader import find_case_files, load_file
from conformance.cases.tensors import DISTRIBUTIONS, GENERATORS
from conformance.cases.yaml_loader import Document, load_documents
from conformance.cli import main
from conformance.commands.schema import case_schema, case_schema_text
from tests import test_loader
from tests.helpers import assert_is_case, load_one, write_case

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = case_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)

# The loader's checks that JSON Schema cannot express, keyed by a phrase of the loader's message.
# Each needs arithmetic across values or more than the structure of the document:
NOT_EXPRESSIBLE = {
    "values do not fill shape": "the product of shape against the number of values",
    "values do not fill the layer's shape": "the weight's size against (out, in/groups, *kernel)",
    "expected (out_channels, in_channels/groups, kH, kW)": "the weight's shape against the layer (a division)",
    "ragged nesting": "equal lengths of sibling lists",
    "over the limit of": "the product of a shape against the element limit",
    "the output would have": "the output size, from the output-size formula",
    "duplicate key": "a YAML-level error: the document never becomes data to validate",
}
# Divisibility of the channels by groups, positive strides and the other rules of a valid layer are
# missing from both: the loader leaves them to torch on purpose, so that an invalid layer can be
# written as an expect_error case.


def schema_errors(data) -> list[str]:
    return [f"{'.'.join(map(str, error.absolute_path))}: {error.message}" for error in VALIDATOR.iter_errors(data)]


def documents_of(text: str, tmp_path: Path) -> list[Document | CaseError]:
    return list(load_documents(write_case(tmp_path, text)))


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_conformance_schema_prints_the_shipped_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert printed == (ROOT / "conformance" / "case_schema.json").read_text(encoding="utf-8")
    assert json.loads(printed) == SCHEMA
    assert main(["schema", "--output", str(tmp_path / "s.json")]) == 0
    assert (tmp_path / "s.json").read_text(encoding="utf-8") == case_schema_text()


def test_the_shipped_file_is_the_generated_schema() -> None:
    """Regenerate it with `python -m conformance.cases.json_schema` after changing the case model."""
    shipped = (ROOT / "conformance" / "case_schema.json").read_text(encoding="utf-8")
    assert shipped == case_json_schema_text(), "conformance/case_schema.json is stale: regenerate it"


def test_the_generated_schema_follows_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The enums come from the model's lists: a new dtype or op in the model reaches the schema."""
    from conformance.cases import json_schema

    monkeypatch.setattr(json_schema, "DTYPES", {**loader_schema.DTYPES, "float8": None})
    monkeypatch.setattr(json_schema, "OP_TYPES", (*loader_schema.CONV_TYPES, "Conv4d"))
    schema = json_schema.case_json_schema()
    assert schema["$defs"]["dtype"]["enum"][-1] == "float8"
    assert schema["$defs"]["conv"]["properties"]["type"]["enum"][-1] == "Conv4d"


def test_the_schema_ships_as_package_data() -> None:
    # An installed (non-editable) package only carries the file if pyproject.toml names it.
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    package_data = text.split("[tool.setuptools.package-data]", 1)
    assert len(package_data) == 2 and "case_schema.json" in package_data[1].split("\n[", 1)[0]


CASE_FILES = find_case_files([ROOT / "cases"])


@pytest.mark.parametrize("file", CASE_FILES, ids=[str(f.relative_to(ROOT / "cases")) for f in CASE_FILES])
def test_every_case_file_validates(file: Path) -> None:
    documents = list(load_documents(file))
    assert documents
    for document in documents:
        assert isinstance(document, Document), document
        assert schema_errors(document.data) == [], f"{file} document {document.index}"


def test_the_schema_speaks_the_loaders_keys_and_enums() -> None:
    properties = SCHEMA["properties"]
    definitions = SCHEMA["$defs"]
    assert set(properties) == set(loader_schema.CASE_KEYS)
    conv_keys = set(definitions["conv"]["properties"])
    assert set(loader_schema.CONV_KEYS) <= conv_keys
    assert conv_keys - set(loader_schema.CONV_KEYS) <= {"type", "output_padding"}  # issue 13's keys
    sweep_keys = set(properties["sweep"]["properties"])
    assert set(loader_sweep.SWEEP_KEYS) <= sweep_keys
    assert sweep_keys - set(loader_sweep.SWEEP_KEYS) <= {"type", "output_padding"}  # issue 13's
    assert definitions["dtype"]["enum"] == list(loader_schema.DTYPES)
    assert properties["torch_variants"]["items"]["enum"] == list(loader_schema.TORCH_VARIANTS)
    assert properties["tolerance"]["properties"]["mode"]["enum"] == list(loader_schema.TOLERANCE_MODES)
    tensor = definitions["tensor"]["anyOf"][1]
    assert set(tensor["properties"]) == set(GENERATORS) | {"shape"}
    assert tensor["properties"]["random"]["properties"]["distribution"]["enum"] == list(DISTRIBUTIONS)
    assert definitions["conv"]["properties"]["padding_mode"]["anyOf"][0]["enum"] == list(loader_schema.PADDING_MODES)
    assert properties["tags"]["items"]["pattern"] == loader_schema.TAG_PATTERN.pattern
    conv_types = definitions["conv"]["properties"]["type"]["enum"]
    assert conv_types == ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]
    if hasattr(loader_schema, "CONV_TYPES"):  # issue 13's loader names them
        assert list(loader_schema.CONV_TYPES) == conv_types


BAD_INPUTS = test_loader.test_bad_input_is_named_precisely.pytestmark[0].args[1]


@pytest.mark.parametrize("text,where,words", BAD_INPUTS, ids=[where or "document" for _, where, _ in BAD_INPUTS])
def test_schema_and_loader_agree_on_the_loaders_bad_inputs(tmp_path: Path, text: str, where: str, words: str) -> None:
    assert isinstance(load_one(tmp_path, text), CaseError)  # the loader refuses it (tests/test_loader.py says how)
    (document,) = documents_of(text, tmp_path)
    reason = next((why for phrase, why in NOT_EXPRESSIBLE.items() if phrase in words or phrase in where), None)
    if isinstance(document, CaseError):  # refused while reading the YAML, before any schema could look
        assert reason is not None, f"YAML-level refusal not listed in NOT_EXPRESSIBLE: {document}"
        return
    errors = schema_errors(document.data)
    if reason is None:
        assert errors, f"the loader refuses this ({words!r} at {where}) but the schema accepts it"
    else:  # keeps NOT_EXPRESSIBLE exact: an entry the schema learns to catch must leave the list
        assert errors == [], f"the schema now catches {words!r}: remove it from NOT_EXPRESSIBLE"


def test_not_expressible_entries_are_all_used() -> None:
    used = {
        phrase for phrase in NOT_EXPRESSIBLE for _, where, words in BAD_INPUTS if phrase in words or phrase in where
    }
    assert used == set(NOT_EXPRESSIBLE)


# Documents both must refuse or both accept, beyond tests/test_loader.py's list.
AGREEMENT = [
    (
        "conv: {in_channels: 6, out_channels: 6, kernel_size: 1}\ngroups: 3\ninput: {fill: 1, shape: [1, 6, 1, 1]}",
        False,
    ),
    ("conv: {in_channels: 6, out_channels: 6, kernel_size: 1, group: 3}\ninput: {fill: 1, shape: [1, 6, 1, 1]}", False),
    (
        "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\ninput: {fill: 1, shape: [1, 1, 1, 1]}\n"
        "grad_output: {fill: 1}",
        False,
    ),
    (
        "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\ninput: {fill: 1, shape: [1, 1, 1, 1]}\n"
        "expect_error: true\nexpected: [1]",
        False,
    ),
    (
        "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\ninput: {fill: 1, shape: [1, 1, 1, 1]}\n"
        "torch_variants: [channels_last]",
        False,
    ),
    (
        "conv: {in_channels: 1, out_channels: 1, kernel_size: 1, padding: middle}\n"
        "input: {fill: 1, shape: [1, 1, 1, 1]}",
        False,
    ),
    (
        "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\ninput: {fill: 1, shape: [1, 1, 2, 2]}\n"
        "sweep: {group: [1]}",
        False,
    ),
    (
        "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\ninput: {fill: 1, shape: [1, 1, 2, 2]}\n"
        "sweep: {stride: []}",
        False,
    ),
    # valid: an invalid layer written as an expect_error case (any padding mode string, groups 0)
    (
        "conv: {in_channels: 5, out_channels: 4, kernel_size: 1, groups: 0, padding_mode: mirror}\n"
        "input: {fill: 1, shape: [1, 5, 2, 2]}\nexpect_error: {match: groups}",
        True,
    ),
    (
        "conv: {in_channels: 6, out_channels: 6, kernel_size: 1}\ninput: {random: {}}\n"
        "sweep: {groups: [1, 2], input.shape: [[1, 6, 2, 2]]}",
        True,
    ),
    (test_loader.SEED, True),
]


@pytest.mark.parametrize("text,valid", AGREEMENT)
def test_schema_and_loader_agree_on_more_documents(tmp_path: Path, text: str, valid: bool) -> None:
    text = textwrap.dedent(text)
    loaded = load_file(write_case(tmp_path, text))
    (document,) = documents_of(text, tmp_path)
    assert all(not isinstance(item, CaseError) for item in loaded) is valid, loaded
    assert (schema_errors(document.data) == []) is valid, schema_errors(document.data)


# Issue 13's format: `conv.type`, output_padding for transposed convolutions, a list per spatial dimension.
N_D = [
    ("{type: ConvTranspose2d, in_channels: 6, out_channels: 6, kernel_size: 1, groups: 3, bias: false}", True),
    ("{type: Conv1d, in_channels: 4, out_channels: 4, kernel_size: 3, padding: [1], groups: 4}", True),
    ("{type: Conv3d, in_channels: 2, out_channels: 4, kernel_size: [1, 2, 3], stride: [1, 1, 2], groups: 2}", True),
    ("{type: ConvTranspose1d, in_channels: 4, out_channels: 4, kernel_size: 3, stride: 2, output_padding: 1}", True),
    ("{type: Conv2d, in_channels: 4, out_channels: 4, kernel_size: 3, stride: 2, output_padding: 1}", False),
    ("{in_channels: 4, out_channels: 4, kernel_size: 3, output_padding: 1}", False),
    ("{type: Conv1d, in_channels: 4, out_channels: 4, kernel_size: [3, 3]}", False),
    ("{type: Conv3d, in_channels: 4, out_channels: 4, kernel_size: 3, dilation: [1, 2]}", False),
    ("{in_channels: 4, out_channels: 4, kernel_size: [1, 2, 3]}", False),
    ("{type: Conv4d, in_channels: 4, out_channels: 4, kernel_size: 3}", False),
]


@pytest.mark.parametrize("conv,valid", N_D)
def test_the_schema_covers_every_op(conv: str, valid: bool) -> None:
    data = {"conv": yaml.safe_load(conv), "input": {"random": {}, "shape": [1, 4, 5]}}
    assert (schema_errors(data) == []) is valid, schema_errors(data)


def test_a_layer_argument_at_the_top_level_suggests_its_place_under_conv(tmp_path: Path) -> None:
    error = load_one(
        tmp_path,
        """
        conv: {in_channels: 6, out_channels: 6, kernel_size: 1}
        input: {fill: 1, shape: [1, 6, 1, 1]}
        groups: 3
        stride: 2
    """,
    )
    assert isinstance(error, CaseError)
    found = {(p.key_path, p.line): p.message for p in error.problems}
    assert found[(("groups",), 3)].startswith("unknown key 'groups' (did you mean conv.groups?")
    assert "did you mean conv.stride?" in found[(("stride",), 4)]
    # the tensor `bias` is a case key of its own: no hint, the case loads
    assert_is_case(
        load_one(
            tmp_path,
            "conv: {in_channels: 1, out_channels: 1, kernel_size: 1}\n"
            "input: {fill: 1, shape: [1, 1, 1, 1]}\nbias: [1]\n",
        )
    )


# JSON Schema keywords of draft-07, the draft yaml-language-server validates with today (its support
# for 2019-09/2020-12 instance validation is an open request: redhat-developer/yaml-language-server#856).
DRAFT_07_KEYWORDS = {
    "$schema",
    "$id",
    "$ref",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "items",
    "additionalItems",
    "maxItems",
    "minItems",
    "uniqueItems",
    "contains",
    "maxProperties",
    "minProperties",
    "required",
    "properties",
    "patternProperties",
    "additionalProperties",
    "dependencies",
    "propertyNames",
    "if",
    "then",
    "else",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "format",
    "definitions",
}


def keywords_used(schema, found: set[str]) -> set[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            found.add(key)
            if key in ("properties", "$defs", "definitions", "patternProperties"):
                for subschema in value.values():  # keys here are names, not keywords
                    keywords_used(subschema, found)
            elif key in ("enum", "const", "examples", "default", "required"):
                continue  # values, not schemas
            else:
                keywords_used(value, found)
    elif isinstance(schema, list):
        for item in schema:
            keywords_used(item, found)
    return found


def test_editors_on_draft_07_rules_apply_the_whole_schema() -> None:
    """Declared 2020-12, written in keywords draft-07 also has (plus $defs, reached by JSON pointers)."""
    assert keywords_used(SCHEMA, set()) - DRAFT_07_KEYWORDS == {"$defs"}
    assert all(ref.startswith("#/$defs/") for ref in re.findall(r'"\$ref": "([^"]+)"', case_schema_text()))
