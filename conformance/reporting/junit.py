"""JUnit XML for CI systems: one ``<testcase>`` per case, the domain report as the failure text.

The layout is the one pytest's ``--junitxml`` writes (``testsuites/testsuite/testcase`` with
``failure``, ``error`` or ``skipped`` children), which GitLab, Jenkins and GitHub test reporters
read. A failure's ``type`` is its kind (wrong_values, crashed, ...); an xfailed case is
``skipped`` (as pytest writes it), an xpassed one a failure; run facts (the case library's
version, the implementation, threads) are ``properties`` of the suite, and each case's seconds per
stage (``duration.load``, ``duration.implementation``, ``duration.torch``, ...) ``properties`` of its testcase.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path

from conformance.judging.outcomes import SKIPPED, XFAILED, XPASSED
from conformance.reporting.terminal import format_failure
from conformance.running.runner import ERROR, FAILED, CaseResult


def junit_tree(
    results: Iterable[CaseResult], suite_name: str = "conformance", properties: Mapping[str, str] | None = None
) -> ET.ElementTree:
    """``<testsuites><testsuite><testcase classname=FILE name=CASE time=S>[<failure|error|skipped>]``."""
    results = list(results)
    failures = sum(r.status in (FAILED, XPASSED) for r in results)
    errors = sum(r.status == ERROR for r in results)
    skipped = sum(r.status in (SKIPPED, XFAILED) for r in results)
    root = ET.Element("testsuites")
    suite = ET.SubElement(
        root,
        "testsuite",
        name=suite_name,
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    if properties:
        holder = ET.SubElement(suite, "properties")
        for name, value in properties.items():
            ET.SubElement(holder, "property", name=name, value=str(value))
    for result in results:
        attributes = {"classname": result.file, "name": result.name, "time": f"{result.seconds:.3f}"}
        if result.case is not None:
            attributes.update(file=str(result.case.file), line=str(result.case.line))
        testcase = ET.SubElement(suite, "testcase", attributes)
        if result.durations:  # where the case's time went, as pytest's record_property writes properties
            timings = ET.SubElement(testcase, "properties")
            for stage, seconds in result.durations.items():
                ET.SubElement(timings, "property", name=f"duration.{stage}", value=f"{seconds:.6f}")
        if result.status in (FAILED, ERROR, XPASSED):
            tag = "error" if result.status == ERROR else "failure"
            report = format_failure(result)  # which check, which element, which group
            child = ET.SubElement(testcase, tag, message=report, type=result.kind or result.status)
            child.text = report
        elif result.status in (SKIPPED, XFAILED):
            label = f"xfail ({result.kind}): " if result.status == XFAILED else ""
            ET.SubElement(
                testcase,
                "skipped",
                message=label + result.message,
                type="pytest.xfail" if result.status == XFAILED else "pytest.skip",
            )
    return ET.ElementTree(root)


def write_junit(
    results: Iterable[CaseResult],
    path: Path | str,
    suite_name: str = "conformance",
    properties: Mapping[str, str] | None = None,
) -> None:
    tree = junit_tree(results, suite_name, properties)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
