"""Where a build finds its data: a moved dataset is named with where its path came from, and INT8
calibration takes a flat folder of unlabelled images."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from PIL import Image
from tlc.bundler.builder import build_bundle
from tlc.cli.main import run
from tlc.errors import ConfigError
from tlc.targets import load_target


def test_a_moved_dataset_says_where_the_path_came_from(tiny_run_dir, tmp_path, capsys):
    moved = tmp_path / "run"
    shutil.copytree(tiny_run_dir, moved)
    info = json.loads((moved / "run.json").read_text())
    info["data"]["source"] = str(tmp_path / "gone" / "digits01.npz")
    (moved / "run.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match=r"recorded in its run\.json.*--data"):
        build_bundle(moved, "x86-cpu", tmp_path / "b", log=lambda _: None)
    assert run(["build", str(moved), "--target", "x86-cpu", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "gone/digits01.npz" in err and "--data" in err and "Dataset" not in err
    assert not (tmp_path / "b").exists()


def test_int8_calibrates_on_a_flat_folder_of_unlabelled_images(tiny_run_dir, tmp_path):
    with np.load(tiny_run_dir.parent / "digits01.npz") as data:
        images = data["train_images"][:40]
    folder = tmp_path / "calib"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    board = load_target("x86-cpu")
    loose = dataclasses.replace(board.tolerance("int8"), confidence=0.0, min_agreement=0.8,
                                max_balanced_accuracy_drop=0.2)  # ~80 test images decide nothing at 95%
    result = build_bundle(tiny_run_dir, board, tmp_path / "b", precision="int8", calib=folder, tolerance=loose,
                          log=lambda _: None)
    assert result.manifest.artifact().precision == "int8"
    assert result.report["artifact"]["calibration_samples"] == len(images)
