"""A training run writes the run directory contract, and reading it back gives the same model."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import torch
from tlc.errors import ConfigError
from tlc.models import DeployModel
from tlc.runs import read_run_info
from tlc.train import TrainConfig, load_deploy_model, load_run_model, train
from tlc.train.metrics import classification_metrics


def test_run_dir_holds_the_contract_files(tiny_run, digits04):
    run_dir, info = tiny_run
    for name in ("run.json", "model.safetensors", "last.safetensors", "last_state.json", "training.png"):
        assert (run_dir / name).is_file(), name
    assert not list(run_dir.glob("*.pt*")), "checkpoints are safetensors only"
    assert read_run_info(run_dir) == info
    assert re.fullmatch(r"resnet18-\d{8}-\d{6}-[0-9a-f]{6}", info.run_id)
    assert info.class_names == digits04.class_names
    assert (info.input_channels, info.input_dtype, info.img_size) == (1, "uint8", 16)
    assert info.preprocessing == digits04.preprocessing((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert info.preprocessing.channel_rule == "replicate"
    assert info.data.split_sizes == {"train": 80, "val": len(digits04.splits["val"]),
                                     "test": len(digits04.splits["test"])}
    assert info.data.content_hash == digits04.content_hash
    assert set(info.versions) == {"tlc", "torch", "torchvision", "numpy"}
    assert info.config["img_size"] == 16 and info.weights_init == "none"
    (epoch,) = info.epochs
    assert {"train_loss", "val_loss", "val_balanced_accuracy", "val_auc", "lr", "seconds"} <= set(epoch)
    assert info.best_epoch == 1 and info.test_metrics["n"] == len(digits04.splits["test"])


def test_loaded_model_reproduces_the_recorded_test_metrics(tiny_run, digits04):
    run_dir, info = tiny_run
    model, loaded_info = load_run_model(run_dir)
    assert loaded_info == info and not model.training
    images, labels = digits04.arrays("test", 16)
    deploy = DeployModel(model, info.preprocessing, info.input_channels).eval()
    with torch.no_grad():
        logits = deploy(torch.from_numpy(images)).numpy()
    recomputed = classification_metrics(logits, labels)
    for key in ("accuracy", "balanced_accuracy", "confusion_matrix", "per_class_recall"):
        assert recomputed[key] == info.test_metrics[key], key
    assert recomputed["auc"] == pytest.approx(info.test_metrics["auc"], abs=1e-9)

    via_run, _ = load_deploy_model(run_dir)
    via_class, _ = DeployModel.from_run(run_dir)
    with torch.no_grad():
        x = torch.from_numpy(images[:8])
        assert torch.equal(via_run(x), deploy(x)) and torch.equal(via_class(x), deploy(x))


def test_same_seed_gives_identical_first_epoch(tmp_path, digits04, tiny_config, tiny_run):
    _, first = tiny_run
    again = train(digits04, tmp_path / "again", tiny_config, progress=False)
    other = train(digits04, tmp_path / "other", dataclasses.replace(tiny_config, seed=1), progress=False)
    keys = ("train_loss", "val_loss", "val_balanced_accuracy")
    assert [again.epochs[0][k] for k in keys] == [first.epochs[0][k] for k in keys]
    assert other.epochs[0]["train_loss"] != first.epochs[0]["train_loss"]


def test_resume_extends_a_finished_run_to_more_epochs(tmp_path, digits04, tiny_config):
    first = train(digits04, tmp_path / "run", tiny_config, progress=False)
    resumed = train(digits04, tmp_path / "run", dataclasses.replace(tiny_config, epochs=2, resume=True),
                    progress=False)
    assert [e["epoch"] for e in resumed.epochs] == [1, 2]
    assert resumed.epochs[0] == first.epochs[0] and resumed.run_id == first.run_id
    assert len(read_run_info(tmp_path / "run").epochs) == 2


def test_interrupted_run_resumes_exactly_where_it_stopped(tmp_path, digits04, tiny_config, monkeypatch):
    two = dataclasses.replace(tiny_config, epochs=2)
    straight = train(digits04, tmp_path / "straight", two, progress=False)

    def interrupt(self, record, epochs, best):
        raise KeyboardInterrupt  # Ctrl-C right after epoch 1 was saved

    with monkeypatch.context() as patch:
        patch.setattr("tlc.train.trainer.Reporter.epoch_line", interrupt)
        with pytest.raises(KeyboardInterrupt):
            train(digits04, tmp_path / "resumed", two, progress=False)
    assert json.loads((tmp_path / "resumed" / "last_state.json").read_text())["epochs_done"] == 1
    resumed = train(digits04, tmp_path / "resumed", dataclasses.replace(two, resume=True), progress=False)
    assert [e["epoch"] for e in resumed.epochs] == [1, 2]
    for key in ("train_loss", "val_loss", "val_balanced_accuracy", "lr"):
        assert resumed.epochs[1][key] == pytest.approx(straight.epochs[1][key], rel=1e-5), key
    assert resumed.test_metrics["confusion_matrix"] == straight.test_metrics["confusion_matrix"]


def test_resume_refuses_changed_options_and_finished_runs(tiny_run, digits04, tiny_config):
    run_dir, _ = tiny_run
    with pytest.raises(ConfigError, match="lr="):
        train(digits04, run_dir, dataclasses.replace(tiny_config, lr=0.5, epochs=2, resume=True), progress=False)
    with pytest.raises(ConfigError, match="already trained 1 epochs"):
        train(digits04, run_dir, dataclasses.replace(tiny_config, resume=True), progress=False)


def test_existing_run_is_not_overwritten_unless_asked(tiny_run, digits04, tiny_config, tmp_path):
    run_dir, info = tiny_run
    with pytest.raises(ConfigError, match="already holds a run"):
        train(digits04, run_dir, tiny_config, progress=False)
    assert read_run_info(run_dir) == info
    with pytest.raises(ConfigError, match="cannot resume"):
        train(digits04, tmp_path / "fresh", dataclasses.replace(tiny_config, resume=True), progress=False)


def test_16bit_data_trains_with_float32_input_and_its_value_range(tmp_path):
    from tlc.data import load_dataset

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 12)
    images = rng.integers(0, 1000, (24, 20, 20)).astype(np.uint16)
    images[labels == 1, 5:15, 5:15] += 3000  # a bright square marks class 1; max < 4096 → 12-bit
    path = tmp_path / "sixteen.npz"
    np.savez(path, train_images=images[::2], train_labels=labels[::2], val_images=images[1::4],
             val_labels=labels[1::4], test_images=images[3::4], test_labels=labels[3::4])
    info = train(load_dataset(path), tmp_path / "run",
                 TrainConfig(arch="resnet18", img_size=16, epochs=1, batch_size=4, patience=None), progress=False)
    assert info.input_dtype == "float32"
    assert info.preprocessing.value_range == (0.0, 4095.0) and info.preprocessing.source_bit_depth == 12
    model, _ = load_deploy_model(tmp_path / "run")
    with torch.no_grad():
        assert model(torch.full((1, 16, 16, 1), 4095.0)).shape == (1, 2)


def _without_val(dataset):
    return dataclasses.replace(dataset, splits={k: v for k, v in dataset.splits.items() if k != "val"})


def test_failed_training_leaves_no_run_directory(tmp_path, digits04, tiny_config, monkeypatch):
    from tlc.errors import DataError

    with pytest.raises(DataError, match="validation"):  # bad data, found after the run was prepared
        train(_without_val(digits04), tmp_path / "bad-data", tiny_config, progress=False)

    def crash(*_args, **_kwargs):
        raise RuntimeError("simulated crash mid-training")

    monkeypatch.setattr("tlc.train.trainer.train_epoch", crash)
    with pytest.raises(RuntimeError, match="simulated"):
        train(digits04, tmp_path / "crashed", tiny_config, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_previous_run_untouched(tiny_run, digits04, tiny_config, tmp_path,
                                                           monkeypatch):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run[0], run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}

    def crash_after_first_epoch(self, record, epochs, best):
        raise RuntimeError("simulated crash after epoch 1 was saved")

    monkeypatch.setattr("tlc.train.trainer.Reporter.epoch_line", crash_after_first_epoch)
    with pytest.raises(RuntimeError, match="simulated"):
        train(digits04, run_dir, dataclasses.replace(tiny_config, seed=3), progress=False, overwrite=True)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_cli_train_with_unreadable_data_leaves_no_run_directory(tmp_path, capsys):
    from tlc.cli.main import run

    assert run(["train", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "r")]) == 2
    assert "missing.npz" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("threads", [1, 3])
def test_training_uses_the_configured_threads_and_restores_the_callers(tmp_path, digits04, tiny_config, monkeypatch,
                                                                      threads):
    seen = []

    def record_and_stop(*_args, **_kwargs):
        seen.append(torch.get_num_threads())
        raise RuntimeError("stop after the first epoch started")

    monkeypatch.setattr("tlc.train.trainer.train_epoch", record_and_stop)
    caller = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError, match="stop after"):
            train(digits04, tmp_path / "run", dataclasses.replace(tiny_config, threads=threads), progress=False)
        assert seen == [threads]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(caller)


def test_default_threads_are_the_cpus_this_process_may_use_shared_between_processes(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1, 2, 3, 4}, raising=False)
    assert TrainConfig().cpu_threads() == 5
    assert TrainConfig().cpu_threads(processes=2) == 2
    assert TrainConfig().cpu_threads(processes=8) == 1
    assert TrainConfig(threads=3).cpu_threads(processes=2) == 3
    with pytest.raises(ConfigError, match="threads must be at least 1"):
        TrainConfig(threads=0)
