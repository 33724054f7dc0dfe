"""Multi-task end to end through the CLI: train on a tasks CSV, build one graph, predict every task."""

from __future__ import annotations

import json

import pytest
from tlc.cli.main import run

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

TINY = ["--arch", "resnet18", "--img-size", "16", "--epochs", "1", "--batch-size", "16", "--no-augment"]


def test_train_build_predict_with_three_tasks(digits_tasks_csv, tmp_path, capsys):
    run_dir, bundle = tmp_path / "run", tmp_path / "bundle"
    assert run(["train", str(digits_tasks_csv), "--out", str(run_dir), *TINY,
                "--tasks", "finding,view,exposure", "--task-attention", "static"]) == 0
    assert "task exposure: test balanced accuracy=" in capsys.readouterr().out
    # a one-epoch model decides nothing: the observed FP32 numerics are the budget
    assert run(["build", str(run_dir), "--target", "x86-cpu", "--out", str(bundle), "--confidence", "0"]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert [t["name"] for t in manifest["tasks"]] == ["finding", "view", "exposure"]
    assert [o["name"] for o in manifest["outputs"]] == ["logits", "task_view", "task_exposure"]
    assert set(manifest["golden"]["atol_outputs"]) == {"task_view", "task_exposure"}
    per_task = manifest["verification"]["tasks"]
    assert set(per_task) == {"finding", "view", "exposure"} and all(t["agreement"] == 1.0 for t in per_task.values())
    capsys.readouterr()
    assert run(["predict", str(bundle), str(digits_tasks_csv.parent / "0.png"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert set(result["tasks"]) == {"finding", "view", "exposure"}
    assert result["tasks"]["finding"]["label"] == result["label"]
    assert set(result["tasks"]["view"]["probabilities"]) == {"mirrored", "plain"}
    capsys.readouterr()
    assert run(["verify", str(bundle), "--data", str(digits_tasks_csv)]) == 0
    out = capsys.readouterr().out
    assert all(f"task {t} ({o}): agreement 100.00%" in out for t, o in
               (("finding", "logits"), ("view", "task_view"), ("exposure", "task_exposure")))


def test_tasks_on_an_npz_is_a_user_error(tmp_path, capsys):
    import numpy as np

    np.savez(tmp_path / "d.npz", images=np.zeros((4, 8, 8), np.uint8), labels=np.arange(4) % 2)
    assert run(["train", str(tmp_path / "d.npz"), "--out", str(tmp_path / "run"), *TINY, "--tasks", "a,b"]) == 2
    assert "several tasks need a CSV manifest" in capsys.readouterr().err
