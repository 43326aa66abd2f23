"""JUnit XML for CI systems: one ``<testcase>`` per case, the domain report as the failure text.

The layout is the one pytest's ``--junitxml`` writes (``testsuites/testsuite/testcase`` with
``failure`` or ``error`` children), which GitLab, Jenkins and GitHub test reporters read.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable

from .report import format_failure
from .runner import ERROR, FAILED, CaseResult


def junit_tree(results: Iterable[CaseResult], suite_name: str = "conformance") -> ET.ElementTree:
    """``<testsuites><testsuite><testcase classname=FILE name=CASE time=S>[<failure|error>]``."""
    results = list(results)
    failures = sum(r.status == FAILED for r in results)
    errors = sum(r.status == ERROR for r in results)
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(len(results)), failures=str(failures),
                          errors=str(errors), skipped="0", time=f"{sum(r.seconds for r in results):.3f}")
    for result in results:
        attributes = {"classname": result.file, "name": result.name, "time": f"{result.seconds:.3f}"}
        if result.case is not None:
            attributes.update(file=str(result.case.file), line=str(result.case.line))
        testcase = ET.SubElement(suite, "testcase", attributes)
        if result.status in (FAILED, ERROR):
            tag = "failure" if result.status == FAILED else "error"
            report = format_failure(result)  # which check, which element, which group
            child = ET.SubElement(testcase, tag, message=report)
            child.text = report
    return ET.ElementTree(root)


def write_junit(results: Iterable[CaseResult], path: Path | str, suite_name: str = "conformance") -> None:
    tree = junit_tree(results, suite_name)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
