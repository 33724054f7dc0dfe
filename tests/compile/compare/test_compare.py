"""`tlc compare` on tiny real digits: the files it writes, its intervals, and its one-line refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from tlc.cli.main import run

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

FAST = ["--img-size", "16", "--epochs", "1", "--batch-size", "16", "--no-augment", "--bootstrap", "200",
        "--latency-runs", "20"]


def _digits_npz(path: Path, classes: tuple[int, ...]) -> Path:
    """sklearn digits of ``classes`` (8×8 grey uint8), split 60/20/20 in file order."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    keep = np.isin(bunch.target, classes)
    images = np.rint(bunch.images[keep] * 255 / 16).astype(np.uint8)
    labels = np.searchsorted(classes, bunch.target[keep])
    a, b = int(0.6 * len(labels)), int(0.8 * len(labels))
    np.savez(path, train_images=images[:a], train_labels=labels[:a], val_images=images[a:b],
             val_labels=labels[a:b], test_images=images[b:], test_labels=labels[b:])
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(target npz of digits 0/1, a one-epoch small_cnn source run trained on digits 2/3/4)."""
    from tlc.train import TrainConfig, train

    root = tmp_path_factory.mktemp("compare")
    source = _digits_npz(root / "source.npz", (2, 3, 4))
    train(source, root / "source_run", TrainConfig(arch="small_cnn", img_size=16, epochs=1, patience=None),
          progress=False)
    return _digits_npz(root / "target.npz", (0, 1)), root / "source_run"


def test_compare_writes_table_json_csv_and_plot(data, tmp_path, capsys):
    target, source = data
    out = tmp_path / "cmp"
    assert run(["compare", str(target), "--candidate", "small=small-cnn", "--candidate",
                f"xfer=small-cnn:{source}", "--out", str(out), *FAST]) == 0
    stdout = capsys.readouterr().out
    assert "small" in stdout and "xfer" in stdout and "AUC" in stdout
    report = json.loads((out / "compare.json").read_text())
    assert [c["name"] for c in report["candidates"]] == ["small", "xfer"]
    assert report["target"] == "x86-cpu" and report["test_images"] > 0
    for c in report["candidates"]:
        for name, score in c["scores"].items():
            lo, hi = score["ci95"]
            assert lo <= score["value"] <= hi, (c["name"], name, score)
        assert 0 < c["latency_ms"]["p50"] <= c["latency_ms"]["p99"]
        assert c["bundle_bytes"] > 0 and c["train_seconds"] > 0
        assert (out / c["bundle"] / "manifest.json").is_file() and (out / c["run"] / "run.json").is_file()
    small, xfer = report["candidates"]
    assert small["source_distance"] is None and xfer["source_distance"]["distance"] >= 0
    rows = list(csv.DictReader((out / "compare.csv").open()))
    assert [r["name"] for r in rows] == ["small", "xfer"]
    assert float(rows[1]["auc"]) == pytest.approx(xfer["scores"]["auc"]["value"])
    assert float(rows[1]["source_distance"]) == pytest.approx(xfer["source_distance"]["distance"])
    assert float(rows[1]["source_logme"]) == pytest.approx(xfer["source_distance"]["logme"])
    assert rows[0]["source_logme"] == "" and "LogME" in stdout
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp"]  # no staging or lock left beside it


@pytest.mark.parametrize("spec, message", [
    ("small-cnn", "expected NAME=ARCH"),
    ("a=no-such-arch", "unknown architecture 'no-such-arch'"),
    ("a=resnet18:/no/such/run", "run directory not found"),
    ("a=resnet18::head", "':head' needs a run"),
    ("a b=resnet18", "a name may hold"),
])
def test_a_bad_candidate_exits_2_with_one_line(spec, message, data, tmp_path, capsys):
    target, _ = data
    assert run(["compare", str(target), "--candidate", spec, "--out", str(tmp_path / "cmp"), *FAST]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert not (tmp_path / "cmp").exists()


def test_a_run_of_another_architecture_and_repeated_names_are_refused(data, tmp_path, capsys):
    target, source = data
    for specs, message in ((["a=resnet18:" + str(source)], "is a small_cnn, not a resnet18"),
                           (["a=small-cnn", "a=small-cnn"], "given more than once: a")):
        args = [a for s in specs for a in ("--candidate", s)]
        assert run(["compare", str(target), *args, "--out", str(tmp_path / "cmp"), *FAST]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0]


def test_a_failure_midway_leaves_no_output(data, tmp_path, monkeypatch, capsys):
    from tlc.compare import api
    from tlc.errors import BuildError

    target, source = data
    real, calls = api.build_bundle, []

    def failing_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise BuildError("export failed (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "build_bundle", failing_second)
    assert run(["compare", str(target), "--candidate", "a=small-cnn", "--candidate", f"b=small-cnn:{source}:head",
                "--out", str(tmp_path / "cmp"), *FAST]) == 2
    assert "injected" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
