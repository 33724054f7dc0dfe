"""`tlc train`: the duplicates policy and progress within an epoch, through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tlc.cli.main import run

pytest.importorskip("torch")
pytest.importorskip("torchvision")

TINY = ["--arch", "resnet18", "--img-size", "16", "--epochs", "1", "--batch-size", "4", "--no-augment"]


@pytest.fixture
def leaky_npz(tmp_path):
    """Like MedMNIST's BreastMNIST: one image (train 5 = test 2) in both train and test."""
    rng = np.random.default_rng(0)
    images = {s: rng.integers(0, 256, (n, 16, 16)).astype(np.uint8) for s, n in (("train", 12), ("val", 4),
                                                                                   ("test", 4))}
    images["test"][2] = images["train"][5]
    path = tmp_path / "leaky.npz"
    np.savez(path, **{f"{s}_images": v for s, v in images.items()},
             **{f"{s}_labels": np.arange(len(v)) % 2 for s, v in images.items()})
    return path


def test_duplicate_in_train_and_test_exits_2_naming_the_flag(leaky_npz, tmp_path, capsys):
    assert run(["train", str(leaky_npz), "--out", str(tmp_path / "run"), *TINY]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "npz:train:5 (train) and npz:test:2 (test)" in lines[0] and "--duplicates drop" in lines[0]
    assert not (tmp_path / "run").exists()


def test_duplicates_drop_trains_and_records_the_dropped_image(leaky_npz, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["train", str(leaky_npz), "--out", str(out), *TINY, "--duplicates", "drop"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["data"]["dropped_duplicates"] == [{"id": "npz:train:5", "split": "train",
                                                   "same_as": "npz:test:2 (test)"}]
    assert info["data"]["split_sizes"] == {"train": 11, "val": 4, "test": 4}
    assert info["config"]["duplicates"] == "drop"


def test_long_epochs_report_progress_when_stderr_is_not_a_terminal(leaky_npz, tmp_path, capsys, monkeypatch):
    from tlc.train import progress

    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)  # as if every batch took longer than the interval
    assert run(["train", str(leaky_npz), "--out", str(tmp_path / "run"), *TINY, "--duplicates", "drop"]) == 0
    err = capsys.readouterr().err
    assert "epoch 1/1  4/11 images" in err and "epoch 1/1  8/11 images" in err
    assert "\x1b[" not in err


def test_mc_dropout_is_recorded_and_shown_in_the_summary(leaky_npz, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["train", str(leaky_npz), "--out", str(out), *TINY, "--duplicates", "drop",
                "--mc-dropout", "0.25", "--mc-dropout-where", "head+stage"]) == 0
    assert json.loads((out / "run.json").read_text())["mc_dropout"] == {"rate": 0.25, "where": "head+stage"}
    captured = capsys.readouterr()
    summary = " ".join(captured.out.split())  # the console wraps long lines
    assert "MC dropout 0.25 (head+stage)" in summary and "MC dropout 0.25 (head+stage)" in captured.err


def test_mc_dropout_rate_out_of_range_exits_2(leaky_npz, tmp_path, capsys):
    assert run(["train", str(leaky_npz), "--out", str(tmp_path / "run"), *TINY, "--mc-dropout", "1.5"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "mc_dropout" in lines[0]
