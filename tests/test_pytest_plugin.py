"""YAML cases as pytest items: one item per case, broken files isolated, domain reports."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import reference_impl

GOOD = """
name: grouped/good
conv: {in_channels: 4, out_channels: 4, kernel_size: 1, groups: 2}
input: {random: {}, shape: [1, 4, 2, 3]}
tags: [grouped]
---
name: depthwise/good
conv: {in_channels: 3, out_channels: 3, kernel_size: 3, groups: 3, padding: 1}
input: {random: {}, shape: [1, 3, 4, 5]}
tags: [depthwise]
"""
WRONG_EXPECTED = """
name: seed/wrong_expected
conv: {in_channels: 2, out_channels: 2, kernel_size: 1, groups: 2, bias: false}
input: {values: [1, 10], shape: [1, 2, 1, 1]}
weight: [3, 4]
expected: {values: [3, 41], shape: [1, 2, 1, 1]}
"""
BROKEN = """
name: broken/typo
conv: {in_channels: 2, out_channels: 2, kernel_size: 1, gruops: 2}
input: {fill: 1, shape: [1, 2, 1, 1]}
"""


# pytester's in-process runs drop the modules first imported inside them, and numba (which the
# reference imports on its first depthwise call) cannot be imported twice in one process. One
# reference call at collection, before any pytester run of any module, loads it for good.
reference_impl.conv2d(np.ones((1, 3, 4, 5)), np.ones((3, 1, 3, 3)), groups=3, padding=1)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    # This project's own setup: conftest.py lists the plugin (the entry point loads it too: that must
    # not register it twice) and the ini option names the case folder.
    pytester.makeconftest('pytest_plugins = ["conformance.pytest_plugin"]')
    pytester.makeini("[pytest]\nconformance_cases = cases\n")
    cases = pytester.mkdir("cases")
    for name, text in {"good.yaml": GOOD, "wrong.yaml": WRONG_EXPECTED, "broken.yaml": BROKEN}.items():
        (cases / name).write_text(textwrap.dedent(text).lstrip())
    (pytester.path / "not_a_case.yaml").write_text("ignored: true\n")  # outside cases/: not collected
    return pytester


def test_each_case_is_one_item_and_a_broken_file_fails_alone(project: pytest.Pytester) -> None:
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    text = result.stdout.str()
    assert "cases/good.yaml::grouped/good PASSED" in project.runpytest("-v").stdout.str()
    assert "broken.yaml:2: conv.gruops: unknown key 'gruops' (did you mean 'groups'?)" in text
    assert ">    2 | conv: {in_channels: 2" in text


def test_failure_prints_the_domain_report_not_a_traceback(project: pytest.Pytester) -> None:
    result = project.runpytest("-k", "wrong_expected")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "reference vs expected: 1 of 2 elements differ" in text
    assert "y[n=0, o=1, h=0, w=0]: output channel 1 is in group 1 of 2, which reads input channel 1" in text
    assert "reference = 40, torch = 40, expected = 41" in text
    assert "Traceback" not in text and "raise ConformanceFailure" not in text


def test_keyword_and_tag_selection(project: pytest.Pytester) -> None:
    project.runpytest("-k", "depthwise").assert_outcomes(passed=1)
    project.runpytest("-m", "grouped", "--strict-markers").assert_outcomes(passed=1)


def test_impl_option_checks_a_plugin(project: pytest.Pytester) -> None:
    result = project.runpytest("-k", "good", "--conv-impl", "tests.plugins.wrong_convs:interleaved_groups")
    # Interleaving output channels is invisible with one output per group (plain depthwise):
    # only the grouped case, with 2 outputs per group, can catch it.
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*tests.plugins.wrong_convs:interleaved_groups vs torch:*elements differ*"])


def test_a_bad_impl_option_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("--conv-impl", "nowhere:f")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot import 'nowhere'*"])


def test_a_conftest_listing_the_plugin_opts_in_to_its_cases_folder(pytester: pytest.Pytester) -> None:
    # No ini option: the conftest's explicit request is what makes cases/ a case folder (the entry
    # point alone leaves it alone: tests/test_pytest_plugin_gate.py::test_inert_without_conv_impl).
    pytester.makeconftest('pytest_plugins = ["conformance.pytest_plugin"]')
    (pytester.mkdir("cases") / "good.yaml").write_text(textwrap.dedent(GOOD).lstrip())
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
