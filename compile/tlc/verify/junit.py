"""JUnit XML for CI systems: one test case per verification check.

The file is valid against the Apache Ant JUnit schema (the strictest format CI systems read:
``testsuite`` with ``name``, ``timestamp`` (no time zone), ``hostname``, ``tests``, ``failures``,
``errors`` and ``time``, and nothing else; then ``properties``, the test cases, ``system-out`` and
``system-err``, in that order; every ``failure``/``error`` has a ``type``), so GitLab, Jenkins, Azure
and GitHub reporters all take it. A verification that could not run (a user error, exit 2) still
gets a file: one test case with an ``error``, so a CI job shows why instead of a missing report.
"""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from .runner import VerifyResult

SUITE = "tlc-verify"


def write_junit(result: VerifyResult, path: str | Path, seconds: float = 0.0) -> None:
    """One test case per budget check (a task's or member's checks named after it: "task view:
    top1_agreement"); a failed check is a ``failure`` whose type is the check's name."""
    cases = [(check.case, None if check.passed else ("failure", f"tlc.budget.{check.name}", check.describe()))
             for check in result.checks]
    _write(path, Path(result.bundle).name, cases, {**result.runner, "split": result.split, "data": result.data},
           seconds)


def write_junit_error(bundle: str | Path, error: BaseException, path: str | Path, seconds: float = 0.0) -> None:
    """The report of a verification that could not run: one ``error`` case naming the error."""
    kind = f"{type(error).__module__}.{type(error).__name__}"
    _write(path, Path(bundle).name, [("verification", ("error", kind, str(error)))], {}, seconds)


def _write(path: str | Path, bundle_name: str, cases: list[tuple[str, tuple[str, str, str] | None]],
           properties: dict[str, Any], seconds: float) -> None:
    failures = sum(1 for _, outcome in cases if outcome and outcome[0] == "failure")
    errors = sum(1 for _, outcome in cases if outcome and outcome[0] == "error")
    suite = ET.Element("testsuite", name=SUITE, timestamp=datetime.now().strftime("%Y-%m-%dT%H:%M:%S"),
                       hostname=socket.gethostname() or "localhost", tests=str(len(cases)),
                       failures=str(failures), errors=str(errors), time=f"{seconds:.3f}")
    props = ET.SubElement(suite, "properties")
    for key, value in properties.items():
        ET.SubElement(props, "property", name=str(key), value="" if value is None else str(value))
    for name, outcome in cases:
        case = ET.SubElement(suite, "testcase", name=name, classname=f"tlc.verify.{bundle_name}", time="0")
        if outcome:
            tag, kind, message = outcome
            ET.SubElement(case, tag, message=message, type=kind).text = message
    ET.SubElement(suite, "system-out").text = ""
    ET.SubElement(suite, "system-err").text = ""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    ET.ElementTree(suite).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
