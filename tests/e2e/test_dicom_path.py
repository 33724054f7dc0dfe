"""DICOM end to end: ``tlc train --dicom-window`` on a folder of .dcm files, build, then ``tlc predict``
and ``clf.predict`` on .dcm paths agree with predicting the very array training read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tlc_runtime
from tlc.cli.main import run
from tlc.data import load_dataset
from tlc_runtime.manifest import DicomPolicy, read_manifest

pytestmark = pytest.mark.slow
LUNG = DicomPolicy(rescale=True, window=(-600.0, 1500.0))


def _scans(dicom_files, root: Path) -> None:
    """Two classes of CT_small variants (b mirrored); two of b's files are stored MONOCHROME1."""
    stored = dicom_files.stored(dicom_files.testdata("CT_small.dcm")).astype(np.int64)
    for i in range(6):
        dicom_files.variant("CT_small.dcm", root / "a" / f"a{i}.dcm", pixels=stored + 7 * i)
        mirrored = stored[:, ::-1] + 7 * i
        if i < 2:
            dicom_files.variant("CT_small.dcm", root / "b" / f"b{i}.dcm", pixels=65535 - mirrored,
                                PhotometricInterpretation="MONOCHROME1", PixelRepresentation=0)
        else:
            dicom_files.variant("CT_small.dcm", root / "b" / f"b{i}.dcm", pixels=mirrored)


def test_dicom_train_build_predict(dicom_files, tmp_path, capsys):
    root, run_dir, bundle = tmp_path / "scans", tmp_path / "run", tmp_path / "bundle"
    _scans(dicom_files, root)
    assert run(["train", str(root), "--arch", "resnet18", "--img-size", "16", "--epochs", "2", "--batch-size", "8",
                "--dicom-window", "lung", "--out", str(run_dir)]) == 0
    recorded = {"rescale": True, "window": [-600.0, 1500.0]}
    assert json.loads((run_dir / "run.json").read_text())["preprocessing"]["dicom"] == recorded
    assert run(["build", str(run_dir), "--target", "x86-cpu", "--out", str(bundle)]) == 0
    assert read_manifest(bundle).preprocessing.dicom == LUNG

    dataset = load_dataset(root, dicom=LUNG)  # what training read, as the trainer loads it
    seen = {i: im for s in dataset.splits.values() for i, im in zip(s.ids, s.images, strict=True)}
    paths = [root / "a" / "a0.dcm", root / "b" / "b0.dcm", root / "b" / "b3.dcm"]
    capsys.readouterr()
    assert run(["predict", str(bundle), *map(str, paths), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    clf = tlc_runtime.load(bundle)
    for entry, path in zip(printed, paths, strict=True):
        expected = clf.predict(seen[path.relative_to(root).as_posix()])
        assert clf.predict(path).probabilities == expected.probabilities
        assert entry["label"] == expected.label
        assert entry["confidence"] == pytest.approx(expected.confidence, abs=1e-6)

    two = dicom_files.variant("CT_small.dcm", tmp_path / "two.dcm", NumberOfFrames=2)
    capsys.readouterr()
    assert run(["predict", str(bundle), str(two)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("Error: ") and "multi-frame DICOM" in err[-1] and "Traceback" not in "".join(err)
