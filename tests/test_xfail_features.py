"""xfail entries that select by feature and hold only where the environment says (issue 19 item 5),
the environment facts every result records, and the ``rerun:`` line's options."""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.cases.loader import load_cases
from conformance.cli import main
from conformance.commands.run import rerun_options
from conformance.judging.environment import cpu_facts, environment_facts
from conformance.judging.xfail import XfailFileError, load_xfail_file
from conformance.running.runner import CaseResult
from tests.helpers import assert_is_case, write_case

CASES = """
name: f/conv2d_float64
conv: {in_channels: 4, out_channels: 4, kernel_size: 3, groups: 2, padding: 1}
input: {random: {}, shape: [1, 4, 5, 5]}
dtype: float64
tags: [grouped]
---
name: f/conv2d_float32
conv: {in_channels: 4, out_channels: 4, kernel_size: 3, groups: 2, stride: [2, 2]}
input: {random: {}, shape: [1, 4, 5, 5]}
---
name: f/transposed_float64
conv: {type: ConvTranspose1d, in_channels: 4, out_channels: 2, kernel_size: 3, groups: 2, stride: 2}
input: {random: {}, shape: [1, 4, 6]}
dtype: float64
"""


@pytest.fixture
def cases(tmp_path: Path) -> dict:
    path = write_case(tmp_path, CASES, "f.yaml")
    return {case.name: case for case in map(assert_is_case, load_cases([path]))}


def entries(tmp_path: Path, text: str) -> list:
    path = tmp_path / "xfail.yaml"
    path.write_text(text)
    return load_xfail_file(path)


@pytest.mark.parametrize(
    ("entry", "selected"),
    [
        ("{dtype: float64, reason: r}", ["f/conv2d_float64", "f/transposed_float64"]),
        ("{op: Conv2d, reason: r}", ["f/conv2d_float64", "f/conv2d_float32"]),
        ("{op: [ConvTranspose1d, Conv3d], reason: r}", ["f/transposed_float64"]),
        ("{op: Conv2d, dtype: float64, reason: r}", ["f/conv2d_float64"]),  # AND
        ("{tag: grouped, reason: r}", ["f/conv2d_float64"]),
        ("{folder: f, reason: r}", ["f/conv2d_float64", "f/conv2d_float32", "f/transposed_float64"]),
        ("{folder: g, reason: r}", []),
        ("{groups: [2, 3], padding: 1, reason: r}", ["f/conv2d_float64"]),
        ("{stride: 2, reason: r}", ["f/conv2d_float32", "f/transposed_float64"]),  # 2 is [2, 2] of a 2-d op
        ("{stride: [2, 2], reason: r}", ["f/conv2d_float32"]),
        ("{padding_mode: zeros, case: 'f/conv2d_*', reason: r}", ["f/conv2d_float64", "f/conv2d_float32"]),
        ("{case: 'f/*', dtype: float32, reason: r}", ["f/conv2d_float32"]),
    ],
)
def test_an_entry_selects_by_every_feature_it_names(tmp_path: Path, cases: dict, entry: str, selected: list) -> None:
    (parsed,) = entries(tmp_path, f"- {entry}\n")
    assert [name for name, case in cases.items() if parsed.selects(case)] == selected


def test_when_holds_only_where_the_facts_say(tmp_path: Path, cases: dict) -> None:
    (entry,) = entries(
        tmp_path, "- {dtype: float64, reason: r, when: {cpu.avx512f: no, tensorflow.onednn: [on, '1']}}\n"
    )
    assert entry.when == (("cpu.avx512f", ("no", "off", "false")), ("tensorflow.onednn", ("yes", "on", "true", "1")))
    assert entry.holds({"cpu.avx512f": "no", "tensorflow.onednn": "on"})
    assert not entry.holds({"cpu.avx512f": "yes", "tensorflow.onednn": "on"})
    assert not entry.holds({"cpu.avx512f": "no"})  # an absent fact never matches
    from conformance.judging.xfail import XfailList

    listed = XfailList([entry], facts={"cpu.avx512f": "yes"})
    failed = CaseResult("f/conv2d_float64", "f.yaml", "failed", case=cases["f/conv2d_float64"])
    assert listed.apply(failed).status == "failed"  # not on this machine
    assert listed.unused([failed]) == []  # ... but it selects a case: not stale
    listed.facts = {"cpu.avx512f": "no", "tensorflow.onednn": "1"}
    assert listed.apply(failed).status == "xfailed"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "- {dtpye: float64, reason: r}\n",
            "unknown key 'dtpye' in entry 1; an entry has case, op, dtype, tag, folder",
        ),
        ("- {op: Conv4d, reason: r}\n", "entry 1: op: expected one of Conv1d, Conv2d"),
        ("- {dtype: float128, reason: r}\n", "dtype: expected one of float32, float64, float16, bfloat16"),
        ("- {reason: r}\n", "entry 1: selects nothing: give case:"),
        ("- {dtype: float64}\n", "entry 1: missing key 'reason'"),
        ("- {dtype: float64, reason: r, when: avx}\n", "entry 1: when: expected a mapping of environment facts"),
        ("- {groups: two, reason: r}\n", "groups: expected an int"),
        ("- {case: a, reason: r}\n- {stride: [a], reason: r}\n", "entry 2: stride: expected an int or a list of ints"),
    ],
)
def test_a_bad_entry_is_an_error_naming_the_file_the_entry_and_what_is_allowed(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(XfailFileError) as raised:
        entries(tmp_path, text)
    assert message in str(raised.value) and "xfail.yaml" in str(raised.value)


def test_a_plugin_wrong_only_on_float64_is_green_with_one_entry(capsys, tmp_path: Path) -> None:
    path = write_case(tmp_path, CASES, "f.yaml")
    impl = ["--impl", "tests.plugins.wrong_on_float64", "--no-isolate"]
    assert main(["run", "-q", str(path), *impl]) == 1
    out = capsys.readouterr().out
    assert out.count("FAILED") == 2 and "f/conv2d_float32" not in out.split("FAILED", 1)[1].split("\n")[0]
    xfail = tmp_path / "known.yaml"
    xfail.write_text('- {dtype: float64, reason: "no float64 kernels"}\n')
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    code = main(["run", "-q", str(path), *impl, "--xfail", str(xfail), "--json", str(report), "--junit", str(junit)])
    assert code == 0, capsys.readouterr().out
    document = json.loads(report.read_text())
    assert [case["status"] for case in document["cases"]] == ["xfailed", "passed", "xfailed"]
    # every result records the environment it was reached under, in JSON and in JUnit
    assert document["environment"]["cpu.avx2"] in ("yes", "no", "unknown")
    assert document["environment"]["threads.torch"] == str(document["threads"]["torch"])
    properties = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert properties["env.torch.version"] == document["environment"]["torch.version"]
    assert "env.cpu.vendor" in properties


def test_unused_entries_are_reported_for_the_whole_library_and_only_inside_a_partial_selection(
    capsys, tmp_path: Path
) -> None:
    path = write_case(tmp_path, CASES, "f.yaml")
    xfail = tmp_path / "known.yaml"
    xfail.write_text(
        "- {case: f/conv2d_float64, reason: a}\n"  # used
        "- {case: f/conv2d_flaot32, reason: typo in the selected folder}\n"
        "- {case: other/elsewhere, reason: another folder}\n"
        "- {op: Conv3d, reason: no such case here}\n"
    )
    run = ["run", "-q", str(path), "--impl", "tests.plugins.wrong_on_float64", "--no-isolate", "--xfail", str(xfail)]
    main(run)
    out = capsys.readouterr().out
    assert "matches no case: 'f/conv2d_flaot32'" in out
    assert "other/elsewhere" not in out and "op: Conv3d" not in out  # outside this PATH's selection
    main([*run, "-k", "transposed"])
    out = capsys.readouterr().out
    assert "matches no case" not in out  # nothing listed reaches into -k transposed
    main([*run, "-k", "conv2d"])
    assert "matches no case: 'f/conv2d_flaot32'" in capsys.readouterr().out


def test_the_rerun_line_repeats_every_option_that_changes_the_verdict() -> None:
    args = argparse.Namespace(
        impl="m",
        arrays="torch",
        impl_device="cuda",
        refusal_type=["m.Refused"],
        strict_errors=True,
        allow_unsupported=True,
        isolate=None,
        timeout=30.0,
        xfail=["a.yaml", "b.yaml"],
        threads=None,
        device="cuda",
        allow_tf32=True,
    )
    assert rerun_options(args, threads=8) == [
        *("--impl", "m", "--arrays", "torch", "--impl-device", "cuda", "--refusal-type", "m.Refused"),
        *("--strict-errors", "--allow-unsupported", "--timeout", "30", "--xfail", "a.yaml", "--xfail", "b.yaml"),
        *("--threads", "8", "--device", "cuda", "--allow-tf32"),
    ]


def test_environment_facts_are_flat_strings_and_take_the_implementations_own() -> None:
    class Adapter:
        def environment(self) -> dict[str, str]:
            return {"tensorflow.onednn": "on"}

    class Broken:
        def environment(self) -> dict[str, str]:
            raise OSError("no settings")

    facts = environment_facts(Adapter())
    assert facts["tensorflow.onednn"] == "on" and facts["platform.machine"]
    assert {"cpu.avx2", "cpu.avx512f", "cpu.avx512_bf16", "cpu.amx", "torch.version", "numpy.version"} <= set(facts)
    assert all(isinstance(value, str) for value in facts.values())
    assert environment_facts(Broken())["implementation.environment_error"] == "OSError: no settings"
    assert cpu_facts("vendor_id : AuthenticAMD\nmodel name : AMD EPYC\nflags : fpu avx2\n") == {
        "cpu.vendor": "AuthenticAMD",
        "cpu.model": "AMD EPYC",
        "cpu.avx2": "yes",
        "cpu.avx512f": "no",
        "cpu.avx512_bf16": "no",
        "cpu.amx": "no",
    }
