"""JUnit XML for CI systems: one test case per verification check."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from .runner import VerifyResult


def write_junit(result: VerifyResult, path: str | Path) -> None:
    failures = sum(not c.passed for c in result.checks)
    suite = ET.Element("testsuite", name="tlc-verify", tests=str(len(result.checks)),
                       failures=str(failures), errors="0")
    for check in result.checks:
        case = ET.SubElement(suite, "testcase", classname=f"tlc.verify.{Path(result.bundle).name}",
                             name=check.name)
        if not check.passed:
            ET.SubElement(case, "failure", message=check.describe())
    props = ET.SubElement(suite, "properties")
    for key, value in result.runner.items():
        ET.SubElement(props, "property", name=key, value=str(value))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
