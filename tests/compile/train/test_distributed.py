"""`tlc train --nproc 2` on CPU (gloo): the same run as one process, clean failure, resume with another N.

Tolerance. Both runs use the same seeds and the same data order (every rank draws the one seeded
permutation and takes its share of each global batch), the same augmentation draws, synchronised
BatchNorm and a loss scaled to the global batch: one step's gradients agree to float rounding
(the sum over two shards and E[x²]−E[x]² in the synchronised BatchNorm add in another order), which
``test_first_step_gradients_match_one_process`` checks at 1e-4 of each tensor's largest value. Over an
epoch, AdamW turns near-zero gradient components (whose sign that rounding can flip) into full-size
steps, so whole-run figures drift a little further: losses are compared at 5 % relative, the
validation predictions must agree on at least 90 % of images.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tlc.cli.main import run

pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytestmark = pytest.mark.slow

TINY = ["--arch", "resnet18", "--img-size", "16", "--batch-size", "16", "--no-augment", "--patience", "5"]


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory, cluttered_digits) -> Path:
    path = tmp_path_factory.mktemp("ddp") / "digits.npz"
    cluttered_digits(path, (0, 1, 2), per_class_train=30)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, digits_npz) -> dict[int, Path]:
    """One epoch of the same run on 1 and on 2 processes."""
    root = tmp_path_factory.mktemp("ddp-runs")
    for nproc in (1, 2):
        assert run(["train", str(digits_npz), "--out", str(root / f"n{nproc}"), *TINY, "--epochs", "1",
                    "--nproc", str(nproc)]) == 0
    return {n: root / f"n{n}" for n in (1, 2)}


def _info(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def test_first_step_gradients_match_one_process(digits_npz, monkeypatch):
    from tlc.launch import LaunchSpec, launch

    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # spawned workers import ddp_probe by name
    import ddp_probe

    loss1, grads1, buffers1 = ddp_probe.first_step(str(digits_npz), False)
    loss2, grads2, buffers2 = launch(LaunchSpec(2), ddp_probe.first_step, (str(digits_npz), True))[0]
    assert loss2 == pytest.approx(loss1, rel=1e-5)
    for name, grad in grads1.items():
        scale = float(grad.abs().max()) or 1.0
        assert float((grad - grads2[name]).abs().max()) <= 1e-4 * scale, name
    for name, buffer in buffers1.items():  # BatchNorm running statistics of the whole global batch
        assert np.allclose(buffer.float().numpy(), buffers2[name].float().numpy(), rtol=1e-4, atol=1e-5), name


def test_two_processes_give_the_run_of_one(runs, tmp_path):
    one, two = _info(runs[1]), _info(runs[2])
    assert sorted(p.name for p in runs[2].iterdir()) == sorted(p.name for p in runs[1].iterdir())
    assert two["config"] == one["config"] and two["data"] == one["data"]
    assert len(two["epochs"]) == 1 and two["best_epoch"] == 1
    for key in ("train_loss", "val_loss"):
        assert two["epochs"][0][key] == pytest.approx(one["epochs"][0][key], rel=0.05), key
    assert two["val_metrics"]["n"] == one["val_metrics"]["n"] and two["test_metrics"]["n"] == one["test_metrics"]["n"]
    cm1, cm2 = np.array(one["val_metrics"]["confusion_matrix"]), np.array(two["val_metrics"]["confusion_matrix"])
    assert np.abs(cm1 - cm2).sum() / 2 <= 0.1 * cm1.sum()  # at most 10 % of predictions moved
    assert not [p for p in runs[2].parent.iterdir() if p.name.startswith(".n2.staging")]


def test_a_failing_rank_fails_the_run_cleanly(digits_npz, tmp_path, in_workers, capfd):
    in_workers("""
        import os
        from tlc.train.progress import Reporter

        def fail_in_rank_1(self, record, epochs, best, _line=Reporter.epoch_line):
            if os.environ.get("RANK") == "1" and record["epoch"] == 1:  # once epoch 1 is saved by rank 0
                raise RuntimeError("rank 1 failed on purpose after epoch 1")
            return _line(self, record, epochs, best)

        Reporter.epoch_line = fail_in_rank_1
    """)
    out = tmp_path / "run"
    code = run(["train", str(digits_npz), "--out", str(out), *TINY, "--epochs", "2", "--nproc", "2"])
    err = capfd.readouterr().err
    assert code == 3
    errors = [line for line in err.splitlines() if line.startswith(("Error", "Internal error"))]
    assert errors == ["Error: rank 1 of the distributed run failed: RuntimeError: rank 1 failed on purpose "
                      "after epoch 1"]
    assert "Traceback" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "staging" in p.name]


@pytest.mark.parametrize(("first", "then"), [(2, 1), (1, 2)])
def test_resume_with_another_process_count(runs, tmp_path, digits_npz, first, then):
    out = tmp_path / "run"
    shutil.copytree(runs[first], out)
    assert run(["train", str(digits_npz), "--out", str(out), *TINY, "--epochs", "2", "--resume",
                "--nproc", str(then)]) == 0
    info = _info(out)
    assert [e["epoch"] for e in info["epochs"]] == [1, 2]
    assert info["epochs"][0] == _info(runs[first])["epochs"][0]  # the first epoch is kept as it was
    assert info["run_id"] == _info(runs[first])["run_id"]
    assert info["test_metrics"]["n"] > 0


def test_nproc_options_are_checked_before_anything_starts(digits_npz, tmp_path, capsys):
    assert run(["train", str(digits_npz), "--out", str(tmp_path / "a"), *TINY, "--nproc", "2", "--nnodes", "2"]) == 2
    assert "--node-rank" in capsys.readouterr().err
    assert run(["train", str(digits_npz), "--out", str(tmp_path / "b"), *TINY, "--nproc", "2",
                "--members", "2"]) == 2
    assert "--members and --nproc" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
