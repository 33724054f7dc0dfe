"""Fixtures for every test: where the shared real data lives, and the CI rule for it.

The real data sits in ``../shared/data`` beside the repository (override with ``TLC_SHARED_DATA``).
Outside CI a test that needs it skips with the reason; under ``CI=true`` it fails instead, so a CI run
can never go green by silently dropping the end-to-end tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("TLC_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_shared_file(name: str) -> Path:
    """Path of a shared data file; skip without it, or fail under CI=true."""
    path = shared_data_dir() / name
    if not path.is_file():
        reason = f"real data not found at {path} (the shared data folder sits beside the repo)"
        if in_ci():
            pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def pneumonia_npz() -> Path:
    """The real PneumoniaMNIST file (../shared/data/pneumoniamnist.npz)."""
    return require_shared_file("pneumoniamnist.npz")


@pytest.fixture(scope="session")
def small_eval_budget():
    """f(tolerance) → the same budget with margins a few-hundred-image digits evaluation set can decide.

    The default INT8/FP16 margins (≥ 99 % agreement, ≤ 1 point drop, at 95 % confidence) need about
    300 images and 50 per class of 10 to be decidable at all; the quantization tests evaluate on ~450
    digits (45 per class), where ≥ 98 % and ≤ 3 points can be shown. Exact budgets (FP32) stay exact.
    """
    import dataclasses

    def widen(tol):
        if tol.confidence == 0:
            return tol
        agreement = tol.min_agreement if tol.min_agreement >= 1.0 else min(tol.min_agreement, 0.98)
        drop = tol.max_balanced_accuracy_drop
        return dataclasses.replace(tol, min_agreement=agreement, max_balanced_accuracy_drop=drop if drop <= 0 else max(drop, 0.03))

    return widen


class DicomFiles:
    """pydicom's own test files (never downloaded) and variants of them written under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pydicom = pytest.importorskip("pydicom")

    def testdata(self, name: str) -> Path:
        """Path of one of pydicom's bundled test files; skip when this pydicom lacks it."""
        from pydicom.data import get_testdata_file

        path = get_testdata_file(name, download=False)
        if path is None:
            pytest.skip(f"pydicom's test file {name} is not installed (never downloaded in tests)")
        return Path(path)

    def stored(self, path: Path):
        """pydicom's raw ``pixel_array`` of a file (no modality LUT, no window, no inversion)."""
        return self.pydicom.dcmread(path).pixel_array

    def variant(self, source: str, name: str | Path, pixels=None, **tags) -> Path:
        """A copy of the uncompressed test file ``source`` with new ``pixels`` (H×W, the file's dtype)
        and/or tags set (a value of None deletes the tag), saved as ``root/name`` (or ``name`` if absolute)."""
        ds = self.pydicom.dcmread(self.testdata(source))
        if pixels is not None:
            dtype = ds.pixel_array.dtype.newbyteorder("<")
            ds.PixelData = pixels.astype(dtype).tobytes()
            ds.Rows, ds.Columns = pixels.shape[:2]
        for key, value in tags.items():
            if value is None:
                delattr(ds, key)
            else:
                setattr(ds, key, value)
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path)
        return path


@pytest.fixture
def dicom_files(tmp_path: Path) -> DicomFiles:
    """DICOM test files: ``testdata(name)``, ``variant(source, name, pixels, **tags)``, ``stored(path)``."""
    return DicomFiles(tmp_path / "dicom")


def _check_ant_junit(path) -> None:
    """Assert ``path`` is valid against the Apache Ant JUnit schema (windyroad JUnit.xsd, the one strict
    CI reporters follow), rule by rule: the suite's required attributes and no others, a time-zone-less
    timestamp, properties → testcases → system-out → system-err in that order, each case with name,
    classname and a decimal time and at most one failure/error, which must carry a type."""
    import re
    from decimal import Decimal
    from xml.etree import ElementTree as ET

    suite = ET.parse(path).getroot()
    assert suite.tag == "testsuite"
    required = {"name", "timestamp", "hostname", "tests", "failures", "errors", "time"}
    assert set(suite.attrib) == required, f"testsuite attributes {sorted(suite.attrib)}"
    assert suite.get("name").strip() and suite.get("hostname").strip()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", suite.get("timestamp"))
    Decimal(suite.get("time"))
    children = [child.tag for child in suite]
    assert children[0] == "properties" and children[-2:] == ["system-out", "system-err"]
    assert set(children[1:-2]) <= {"testcase"}
    for prop in suite.find("properties"):
        assert prop.tag == "property" and set(prop.attrib) == {"name", "value"} and prop.get("name").strip()
    cases = suite.findall("testcase")
    assert int(suite.get("tests")) == len(cases)
    outcomes = {"failure": 0, "error": 0}
    for case in cases:
        assert set(case.attrib) == {"name", "classname", "time"} and case.get("name").strip()
        Decimal(case.get("time"))
        inner = list(case)
        assert len(inner) <= 1 and all(e.tag in outcomes and e.get("type") for e in inner)
        assert all(set(e.attrib) <= {"message", "type"} for e in inner)
        for e in inner:
            outcomes[e.tag] += 1
    assert int(suite.get("failures")) == outcomes["failure"] and int(suite.get("errors")) == outcomes["error"]


@pytest.fixture
def ant_junit():
    """``ant_junit(path)``: assert the file is valid Ant-schema JUnit XML (see _check_ant_junit)."""
    return _check_ant_junit
