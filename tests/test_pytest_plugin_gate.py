"""The pytest plugin in someone else's repo: inert unless --conv-impl is given, then the case
library's cases as test items judged as `conformance run` judges them (refusals, kinds, xfail)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import reference_impl
from conformance.cases.library import bundled_cases_path

CASES = """
name: grouped/good
conv: {in_channels: 4, out_channels: 4, kernel_size: 1, groups: 2}
input: {random: {}, shape: [1, 4, 2, 3]}
---
name: depthwise/good
conv: {in_channels: 3, out_channels: 3, kernel_size: 3, groups: 3, padding: 1}
input: {random: {}, shape: [1, 3, 4, 5]}
---
name: errors/not_divisible
conv: {in_channels: 5, out_channels: 4, kernel_size: 1, groups: 2}
input: {fill: 1, shape: [1, 5, 3, 3]}
expect_error: {match: "in_channels must be divisible by groups"}
"""
# The user's module: plug-ins that differ only in how they fail.
USER_MODULE = '''
import numpy as np
import torch
import reference_impl


class ConvError(Exception):
    """The user's own refusal type (not a ValueError)."""


def _exact(input, weight, bias, *args, **options):
    as64 = lambda a: None if a is None else np.asarray(a, np.float64)
    out = reference_impl.conv2d(as64(input), as64(weight), as64(bias), *args, **options)
    return out.astype(np.asarray(input).dtype)


def _refusing(error):
    def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **options):
        try:
            return _exact(input, weight, bias, stride, padding, dilation, groups, **options)
        except ValueError:
            raise error("this layer is not for us") from None
    return conv2d


correct = _refusing(ValueError)          # refuses in its own words, not torch's
custom_refusal = _refusing(ConvError)
crashes_on_invalid = _refusing(TypeError)


def interleaved(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **options):
    out = correct(input, weight, bias, stride, padding, dilation, groups, **options)
    per_group = out.shape[1] // groups
    return out.reshape(out.shape[0], groups, per_group, *out.shape[2:]).swapaxes(1, 2).reshape(out.shape)


def unsupported(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **options):
    if groups == 3:
        raise NotImplementedError("depthwise is not written yet")
    return correct(input, weight, bias, stride, padding, dilation, groups, **options)


def aborts_on_depthwise(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **options):
    if groups == 3:
        import os
        os.abort()  # what a kernel's failed CHECK or a segfault does to the process
    return correct(input, weight, bias, stride, padding, dilation, groups, **options)


def torch_only(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **options):
    assert isinstance(input, torch.Tensor) and input.dtype == torch.float32, (type(input), input.dtype)
    return torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups)
'''


# pytester's in-process runs drop the modules first imported inside them, and numba (which the
# reference imports on its first depthwise call) cannot be imported twice in one process. One
# reference call at collection, before any pytester run of any module, loads it for good.
reference_impl.conv2d(np.ones((1, 3, 4, 5)), np.ones((3, 1, 3, 3)), groups=3, padding=1)


@pytest.fixture
def user_repo(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> pytest.Pytester:
    """A repo that knows nothing of us: its own test, its module, no conftest and no ini option.
    Its cases live outside the rootdir (like the bundled library in site-packages)."""
    pytester.makepyfile(test_own="def test_own():\n    assert True\n")
    pytester.makepyfile(mine=USER_MODULE)
    pytester.syspathinsert()
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "cases.yaml").write_text(textwrap.dedent(CASES).lstrip())
    pytester.elsewhere = elsewhere  # type: ignore[attr-defined]
    return pytester


def gate(repo: pytest.Pytester, impl: str, *args: str, only_cases: bool = True) -> pytest.RunResult:
    """pytest --conv-impl mine:IMPL over the repo's cases; only_cases: just the case items
    (-k also matches the pytester folder's name, which is the test's name, in the user's own test)."""
    select = ["-m", "conv_case"] if only_cases else []
    return repo.runpytest(
        "-p",
        "no:cacheprovider",
        "-rxX",
        "--conv-impl",
        f"mine:{impl}",
        "--conv-cases",
        str(repo.elsewhere),
        *select,
        *args,
    )  # type: ignore[attr-defined]


def test_inert_without_conv_impl(pytester: pytest.Pytester) -> None:
    # A cases/ folder of valid case files in someone's repo is none of our business.
    (pytester.mkdir("cases") / "cases.yaml").write_text(textwrap.dedent(CASES).lstrip())
    pytester.makepyfile(test_own="def test_own():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1)
    assert "cases.yaml" not in result.stdout.str() and "conformance: gating" not in result.stdout.str()
    assert "--conv-impl" in pytester.runpytest("--help").stdout.str()  # loaded by the entry point, though


def test_inert_plugin_imports_neither_the_harness_nor_torch(pytester: pytest.Pytester) -> None:
    # pytest loads the plugin in every session of anyone with the package installed: it must stay cheap.
    pytester.makepyfile(
        test_own="""
        import sys

        def test_own():
            assert "conformance.pytest_plugin" in sys.modules  # the entry point loaded the plugin ...
            heavy = [name for name in ("torch", "numpy", "conformance.running.runner") if name in sys.modules]
            assert not heavy, heavy  # ... and it imported nothing of the harness
    """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_gate_option_without_conv_impl_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--conv-xfail", "known.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--conv-xfail: give --conv-impl SPEC too*"])


@pytest.mark.slow
def test_cases_outside_the_rootdir_become_items_beside_the_users_tests(user_repo: pytest.Pytester) -> None:
    result = gate(user_repo, "correct", "-v", only_cases=False)
    result.assert_outcomes(passed=4)  # the user's own test + 3 cases; the refusal is worded its own way
    result.stdout.fnmatch_lines(["test_own.py::test_own PASSED*", "*cases.yaml::grouped/good PASSED*"])
    # the library is selectable like any tests, and every case carries the conv_case mark
    gate(user_repo, "correct", "-k", "depthwise").assert_outcomes(passed=1)
    gate(user_repo, "correct").assert_outcomes(passed=3)


def test_a_wrong_plugin_fails_with_the_domain_report(user_repo: pytest.Pytester) -> None:
    result = gate(user_repo, "interleaved")
    result.assert_outcomes(passed=2, failed=1)  # one output per group (depthwise) cannot show interleaving
    text = result.stdout.str()
    assert "case grouped/good" in text and "[wrong_values]" in text
    assert "mine:interleaved vs torch" in text and "Traceback" not in text


def test_refusals_crashes_and_refusal_types(user_repo: pytest.Pytester) -> None:
    result = gate(user_repo, "crashes_on_invalid", "-k", "errors")
    result.assert_outcomes(failed=1)
    assert "[crashed]" in result.stdout.str() and "TypeError" in result.stdout.str()
    gate(user_repo, "custom_refusal", "-k", "errors").assert_outcomes(failed=1)
    gate(user_repo, "custom_refusal", "-k", "errors", "--conv-refusal-type", "mine.ConvError").assert_outcomes(passed=1)


def test_strict_errors_holds_the_plugin_to_torchs_wording(user_repo: pytest.Pytester) -> None:
    gate(user_repo, "correct", "-k", "errors").assert_outcomes(passed=1)
    gate(user_repo, "correct", "-k", "errors", "--conv-strict-errors").assert_outcomes(failed=1)


def test_unsupported_fails_unless_allowed(user_repo: pytest.Pytester) -> None:
    result = gate(user_repo, "unsupported", "-k", "depthwise")
    result.assert_outcomes(failed=1)
    assert "[unsupported]" in result.stdout.str() and "depthwise is not written yet" in result.stdout.str()
    gate(user_repo, "unsupported", "-k", "depthwise", "--conv-allow-unsupported").assert_outcomes(skipped=1)


def test_xfail_file_xfailed_strict_xpass_and_unmatched_entries(user_repo: pytest.Pytester) -> None:
    known = user_repo.path / "known.yaml"
    known.write_text(
        '- case: "grouped/*"\n  reason: interleaving bug\n  link: https://example.org/mine/1\n'
        "- case: grouped/typo\n  reason: stale\n"
    )
    result = gate(user_repo, "interleaved", "--conv-xfail", str(known))
    result.assert_outcomes(passed=2, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    text = result.stdout.str()
    assert "interleaving bug" in text
    assert "xfail entries matching no case" in text
    assert f"xfail entry matches no case: 'grouped/typo' ({known}:4, reason: stale)" in text
    # a listed case that passes fails the run: strict, so stale entries get removed
    known.write_text(known.read_text() + "- case: depthwise/good\n  reason: thought it was broken\n")
    result = gate(user_repo, "interleaved", "--conv-xfail", str(known))
    result.assert_outcomes(passed=1, xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["*[[]XPASS(strict)[]]*case depthwise/good*"])


def test_torch_arrays_reach_the_plugin_as_tensors(user_repo: pytest.Pytester) -> None:
    result = gate(
        user_repo,
        "torch_only",
        "-k",
        "good",
        "--conv-arrays",
        "torch",
        "--conv-impl-device",
        "cpu",
        "--conv-threads",
        "1",
    )
    result.assert_outcomes(passed=2)
    assert "threads: torch 1" in result.stdout.str()
    gate(user_repo, "torch_only", "-k", "good").assert_outcomes(failed=2)  # NumPy arrays by default


def test_no_case_collected_is_an_error_not_a_pass(user_repo: pytest.Pytester, tmp_path: Path) -> None:
    empty = tmp_path / "no-cases"
    empty.mkdir()
    result = user_repo.runpytest("--conv-impl", "mine:correct", "--conv-cases", str(empty))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no conformance case collected from*"])
    missing = user_repo.runpytest("--conv-impl", "mine:correct", "--conv-cases", str(tmp_path / "nowhere"))
    assert missing.ret == pytest.ExitCode.USAGE_ERROR


def test_without_conv_cases_the_bundled_library_is_gated(user_repo: pytest.Pytester) -> None:
    result = user_repo.runpytest("-p", "no:cacheprovider", "--conv-impl", "mine:correct", "--collect-only", "-q")
    library_items = [line for line in result.stdout.lines if line.startswith("conv-cases/")]
    assert len(library_items) >= 200, result.stdout.str()[-2000:]
    assert bundled_cases_path().is_dir()
    result = user_repo.runpytest("-p", "no:cacheprovider", "--conv-impl", "mine:correct", "-k", "seed/groups", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["conv-cases/seed/groups2.yaml::seed/groups2 PASSED*"])
    assert "conformance: gating mine:correct" in result.stdout.str()


def test_option_errors_name_the_pytest_options(user_repo: pytest.Pytester) -> None:
    result = user_repo.runpytest("--conv-impl", "mine:correct", "--conv-impl-device", "cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--conv-impl-device cuda: NumPy arrays live on the cpu; use --conv-arrays torch*"])
    bad_xfail = user_repo.path / "bad.yaml"
    bad_xfail.write_text("- case: x\n  reasn: typo\n")
    result = user_repo.runpytest("--conv-impl", "mine:correct", "--conv-xfail", str(bad_xfail))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*bad.yaml*reasn*"])


def test_verdicts_are_the_ones_conformance_run_gives(pytester: pytest.Pytester, tmp_path: Path) -> None:
    import json
    import xml.etree.ElementTree as ET

    from conformance.cli import main

    root = Path(__file__).resolve().parent.parent / "cases"
    cases = [
        str(root / "seed"),
        str(root / "semantics" / "depthwise.yaml"),
        str(root / "errors" / "not_divisible.yaml"),
    ]
    xfail = tmp_path / "known.yaml"  # one listed case that fails (xfailed), one that passes (xpassed)
    xfail.write_text("- case: seed/groups2\n  reason: known\n- case: semantics/depthwise_3x3\n  reason: stale\n")
    options = ["--impl", "tests.plugins.wrong_convs:interleaved_groups", "--xfail", str(xfail)]
    main(["run", *cases, *options, "-q", "--json", str(tmp_path / "run.json")])
    by_run = {case["name"]: case["status"] for case in json.loads((tmp_path / "run.json").read_text())["cases"]}

    junit = tmp_path / "pytest.xml"
    pytester.runpytest(
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        *[f"--conv-cases={c}" for c in cases],
        *[option.replace("--", "--conv-", 1) if option.startswith("--") else option for option in options],
    )
    by_pytest = {}
    for testcase in ET.parse(junit).getroot().iter("testcase"):
        child = next((c for c in testcase if c.tag in ("failure", "error", "skipped")), None)
        if child is None:
            status = "passed"
        elif child.tag == "skipped":
            status = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
        else:
            status = "xpassed" if "XPASS(strict)" in (child.text or "") else "failed"
        by_pytest[testcase.get("name")] = status
    assert by_pytest == by_run
    assert {"passed", "failed", "xfailed", "xpassed"} <= set(by_run.values())


def test_isolate_turns_an_abort_into_a_crashed_case(user_repo: pytest.Pytester) -> None:
    try:
        import conformance.running.isolation  # noqa: F401 - the crash-isolating worker (issue 11)
    except ImportError:
        result = gate(user_repo, "aborts_on_depthwise", "--conv-isolate")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*--conv-isolate: this installation has no conformance.running.isolation*"])
        return
    result = gate(user_repo, "aborts_on_depthwise", "--conv-isolate", "--conv-timeout", "120")
    result.assert_outcomes(passed=2, failed=1)  # the session survived the abort
    assert "[crashed]" in result.stdout.str() and "case depthwise/good" in result.stdout.str()
