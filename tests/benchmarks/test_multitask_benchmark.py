"""``benchmarks/multitask.py --tiny`` runs every step on real PneumoniaMNIST images, so the script cannot rot."""

from __future__ import annotations

import csv
import importlib.util
import json
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


@pytest.mark.slow
def test_tiny_run_measures_every_task_bundle_and_target(bench, pneumonia_npz, tmp_path):
    # small_cnn and one extra build keep it short; the INT8 and intel-cpu builds of a multi-task run are
    # tested in tests/compile/bundler/test_build_multi_output.py
    result = bench.main(["--tiny", "--data", str(pneumonia_npz), "--out", str(tmp_path / "out"),
                         "--results", str(tmp_path / "results"), "--arch", "small_cnn",
                         "--extra-builds", "x86-cpu:int8"])
    saved = json.loads((tmp_path / "results" / "multitask.json").read_text())
    assert (tmp_path / "results" / "multitask.png").stat().st_size > 0
    assert saved["quality"].keys() == set(bench.TASKS)
    assert saved["quality"]["exposure"]["n"] < saved["quality"]["finding"]["n"]  # blank labels left out
    for task in bench.TASKS:
        assert {"single", "multitask-static"} <= saved["quality"][task].keys()
        assert "minus_single" in saved["quality"][task]["multitask-static"]
    assert saved["latency"]["batch1"]["multitask"]["n"] > 0
    assert saved["sizes"]["multitask-static"]["model_bytes"] > 0
    rows = {(r["target"], r["precision"]): r for r in result["targets"]}
    assert rows.keys() == {("x86-cpu", "fp32"), ("x86-cpu", "int8")}
    for row in rows.values():  # built and verified on every task, or refused with tlc's own message
        if row["built"]:
            assert row["verify"]["tasks"].keys() == set(bench.TASKS)
        else:
            assert row["refused"]
    assert rows[("x86-cpu", "fp32")]["verify"]["passed"]
