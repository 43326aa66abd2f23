"""The C-parser loader (libyaml, used for speed) must read every file exactly as the pure-Python
one does: the same data, the same line for every key, the same refusals at the same lines."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conformance.cases.errors import CaseError
from conformance.cases.loader import find_case_files
from conformance.cases.yaml_loader import CaseLoader, FastCaseLoader, load_documents

ROOT = Path(__file__).resolve().parent.parent

TRICKY_TEXTS = {
    "yaml12_floats": "values: [1e5, 1e-1, -2E+2, .5e1, .nan, -.inf, 1_000, 0x10, 1.5]\n",
    "merge_keys": "base: &b {in_channels: 2, out_channels: 2}\nconv:\n  <<: *b\n  kernel_size: 1\n",
    "several_documents": "a: 1\n---\nb: [1, 2]\n---\n# only a comment\n---\nc: {d: 3}\n",
    "syntax_error_later": "a: 1\n---\nb: [1, 2\nc: 3\n",
    "bad_indentation": "conv:\n  in_channels: 1\n out_channels: 2\n",
    "python_tag": "conv: !!python/object/apply:os.system ['true']\n",
    "duplicate_key": "a: 1\nb: 2\na: 3\n",
    "non_string_key": "conv: {1: 2}\n",
    "tabs": "a:\n\t- 1\n",
    "empty": "",
}


def outcome(file: Path, loader_class: type) -> list:
    """What load_documents yields, as comparable plain values."""
    result = []
    for item in load_documents(file, loader_class):
        if isinstance(item, CaseError):
            result.append(("error", [(p.key_path, p.line, p.message) for p in item.problems]))
        else:
            result.append(("document", item.data, item.lines, item.index, item.line))
    return result


@pytest.mark.skipif(FastCaseLoader is CaseLoader, reason="PyYAML was built without libyaml")
@pytest.mark.parametrize("name", sorted(TRICKY_TEXTS))
def test_both_loaders_agree_on_tricky_text(tmp_path: Path, name: str) -> None:
    file = tmp_path / f"{name}.yaml"
    file.write_text(TRICKY_TEXTS[name], encoding="utf-8")
    fast, plain = outcome(file, FastCaseLoader), outcome(file, CaseLoader)
    assert fast == plain
    if name == "yaml12_floats":
        assert fast[0][1]["values"][:4] == [1e5, 0.1, -200.0, 5.0]


@pytest.mark.skipif(FastCaseLoader is CaseLoader, reason="PyYAML was built without libyaml")
def test_both_loaders_agree_on_the_case_library() -> None:
    files = find_case_files([ROOT / "cases"])
    assert files
    for file in files:
        assert outcome(file, FastCaseLoader) == outcome(file, CaseLoader), file


def test_the_fast_loader_is_the_c_parser_when_libyaml_is_there() -> None:
    assert (FastCaseLoader is not CaseLoader) == yaml.__with_libyaml__
