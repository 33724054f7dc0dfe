"""``--channel-adapter learned``: trained with the model, recorded in run.json, rebuilt on load."""

from __future__ import annotations

import dataclasses
import json

import pytest

torch = pytest.importorskip("torch")


def test_learned_adapter_trains_is_recorded_and_reloads(tmp_path, digits04, tiny_config):
    from tlc.models.checkpoint import load_deploy_model, load_run_model
    from tlc.train import train

    config = dataclasses.replace(tiny_config, channel_adapter="learned")
    info = train(digits04, tmp_path / "run", config, progress=False)
    assert info.channel_adapter == "learned"
    assert json.loads((tmp_path / "run" / "run.json").read_text())["channel_adapter"] == "learned"
    model, _ = load_run_model(tmp_path / "run")
    assert not torch.allclose(model.adapter.weight.flatten(1), torch.eye(3)), "the adapter never trained"
    deploy, _ = load_deploy_model(tmp_path / "run")
    assert deploy.classifier.adapter is not None


def test_cli_channel_adapter_option(tmp_path):
    import numpy as np
    from tlc.cli.main import run

    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, **{f"{s}_images": rng.integers(0, 256, (n, 16, 16)).astype(np.uint8)
                      for s, n in (("train", 8), ("val", 4), ("test", 4))},
             **{f"{s}_labels": np.arange(n) % 2 for s, n in (("train", 8), ("val", 4), ("test", 4))})
    common = ["--arch", "resnet18", "--img-size", "16", "--epochs", "1", "--batch-size", "4", "--no-augment"]
    assert run(["train", str(path), "--out", str(tmp_path / "r"), *common, "--channel-adapter", "learned"]) == 0
    assert json.loads((tmp_path / "r" / "run.json").read_text())["channel_adapter"] == "learned"
    assert run(["train", str(path), "--out", str(tmp_path / "bad"), *common, "--channel-adapter", "x"]) == 2
