"""tlc verify --junit writes Ant-schema JUnit even when the verification cannot run (exit 2)."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from tlc.cli.main import run


def test_a_verification_that_cannot_run_still_writes_junit(tmp_path, capsys, ant_junit):
    junit = tmp_path / "reports" / "verify.xml"
    code = run(["verify", str(tmp_path / "no-such-bundle"), "--data", str(tmp_path), "--junit", str(junit)])
    assert code == 2
    err = capsys.readouterr().err
    ant_junit(junit)
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("1", "1", "0")
    error = suite.find("testcase/error")
    assert error.get("message") in err and "not found" in error.get("message")
    assert error.get("type") == "tlc_runtime.errors.BundleError"


def test_the_checker_rejects_what_the_ant_schema_rejects(tmp_path, ant_junit):
    """The schema check is not vacuous: a suite without timestamp/hostname/system-out (what tlc wrote
    before) and a failure without a type are refused."""
    import pytest

    old = tmp_path / "old.xml"
    old.write_text('<testsuite name="tlc-verify" tests="1" failures="1" errors="0">'
                   '<testcase classname="c" name="n"><failure message="m"/></testcase><properties/></testsuite>')
    with pytest.raises(AssertionError):
        ant_junit(old)
