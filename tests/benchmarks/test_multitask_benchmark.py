"""``benchmarks/multitask.py`` labels its tasks from real image properties it applies (a flip, a gamma). Its
end-to-end smoke run, ``--tiny`` (about a minute), is left out of CI for time."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "multitask.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("multitask_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_images_carry_the_view_and_exposure_they_are_labelled_with(bench, pneumonia_npz, tmp_path):
    csv_path = bench.write_images(str(pneumonia_npz), tmp_path, missing=0.3, tiny=True)
    rows = list(csv.DictReader(csv_path.open()))
    data = np.load(pneumonia_npz)
    labels = data["test_labels"].reshape(-1)
    originals = data["test_images"][bench.tiny_subset(labels, bench.TINY_SIZES["test"])]
    test_rows = [r for r in rows if r["split"] == "test"]
    assert len(test_rows) == len(originals)
    from PIL import Image

    for row, original in zip(test_rows, originals, strict=True):
        written = np.asarray(Image.open(tmp_path / row["path"]))
        flipped = original[:, ::-1] if row["view"] == "mirrored" else original
        if row["exposure"]:
            assert np.array_equal(written, bench.gamma(flipped, bench.GAMMA[row["exposure"]]))
        else:  # unlabelled exposure: one of the levels was still applied
            assert any(np.array_equal(written, bench.gamma(flipped, g)) for g in bench.GAMMA.values())
    assert {r["view"] for r in rows} == {"mirrored", "standard"}
    assert 0 < sum(not r["exposure"] for r in rows) < len(rows) / 2
    exposure_rows = list(csv.DictReader((tmp_path / "exposure.csv").open()))
    assert len(exposure_rows) == sum(bool(r["exposure"]) for r in rows)
