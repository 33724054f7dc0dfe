"""``--spectral-reg``: the sample spectral penalty, its effect on training, and that it is training-only."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file
from tlc.errors import ConfigError
from tlc.models import create_model
from tlc.train import TrainConfig, load_run_model, train
from tlc.train.spectral import SpectralRegularizer, feature_pool, spectral_concentration, spectral_penalty

SMALL = dict(arch="small_cnn", img_size=16, epochs=2, batch_size=16, limit_train=80, patience=None)


def test_penalty_equals_the_hand_computed_value():
    # image 0: a 2×2 map (C=2, H=1, W=2) with singular values 4 and 3 → 16 / (16 + 9) = 0.64
    # image 1: a rank-one map (all ones) → 1
    maps = torch.tensor([[[[3.0, 0.0]], [[0.0, 4.0]]],
                         [[[1.0, 1.0]], [[1.0, 1.0]]]])
    assert torch.allclose(spectral_concentration(maps), torch.tensor([0.64, 1.0]))
    assert spectral_penalty(maps, 0.5).item() == pytest.approx(0.5 * (0.64 + 1.0) / 2)
    # scale-free: a bigger map has the same penalty
    assert spectral_penalty(10 * maps, 0.5).item() == pytest.approx(0.5 * 0.82)


def _concentration(run_dir, images: torch.Tensor) -> float:
    """Mean spectral concentration of a run's feature maps on ``images`` (raw NHWC), in eval mode."""
    from tlc.train import load_deploy_model

    model, _ = load_deploy_model(run_dir)
    seen = []
    feature_pool(model.classifier).register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        model.eval()(images)
    return spectral_concentration(seen[0]).mean().item()


@pytest.fixture(scope="module")
def spectral_runs(tmp_path_factory, digits04):
    """small_cnn (4 feature-map positions at 16 px) trained with λ 0 (default), 0 given, and 1."""
    root = tmp_path_factory.mktemp("spectral")
    runs = {}
    for name, extra in (("default", {}), ("zero", {"spectral_reg": 0.0}), ("one", {"spectral_reg": 1.0})):
        runs[name] = (root / name, train(digits04, root / name, TrainConfig(**SMALL, **extra), progress=False))
    return runs


def test_spectral_reg_spreads_the_feature_spectrum(spectral_runs, digits04):
    images, _ = digits04.arrays("train", 16)
    x = torch.from_numpy(images[:64].copy())
    plain, spread = _concentration(spectral_runs["default"][0], x), _concentration(spectral_runs["one"][0], x)
    print(f"mean spectral concentration: λ=0 {plain:.4f}, λ=1 {spread:.4f}")
    assert spread < plain


def test_zero_trains_bit_identically_to_the_default(spectral_runs):
    default, zero, one = (load_file(spectral_runs[k][0] / "model.safetensors") for k in ("default", "zero", "one"))
    assert default.keys() == zero.keys() == one.keys(), "the penalty adds no parameter or buffer"
    assert all(torch.equal(default[k], zero[k]) for k in default)
    assert not all(torch.equal(default[k], one[k]) for k in default), "λ=1 must change training"
    assert all("spectral_penalty" not in r for r in spectral_runs["zero"][1].epochs)


def test_run_records_the_weight_and_the_penalty_per_epoch(spectral_runs):
    _, info = spectral_runs["one"]
    assert info.config["spectral_reg"] == 1.0
    penalties = [r["spectral_penalty"] for r in info.epochs]
    assert len(penalties) == SMALL["epochs"]
    assert all(0.25 <= p <= 1.0 for p in penalties), "λ=1 × a concentration of 4 positions lies in [1/4, 1]"


def test_trained_model_carries_no_hook(spectral_runs):
    model, _ = load_run_model(spectral_runs["one"][0])
    assert not any(m._forward_pre_hooks for m in model.modules())
    classifier = create_model("small_cnn", 2)
    regularizer = SpectralRegularizer(classifier, 1.0, 16)
    regularizer.close()
    assert not any(m._forward_pre_hooks for m in classifier.modules())


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "small_cnn"])
def test_every_backbone_gives_its_spatial_map_and_a_gradient(arch):
    torch.manual_seed(0)
    classifier = create_model(arch, 2).train()
    pool = feature_pool(classifier)
    assert pool is classifier.backbone.avgpool  # every backbone pools globally after its stages
    regularizer = SpectralRegularizer(classifier, 1.0, 64)
    classifier(torch.randn(2, 3, 64, 64))
    penalty = regularizer()
    penalty.backward()
    regularizer.close()
    assert 0 < penalty.item() <= 1.0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in classifier.backbone_parameters())


def test_a_single_position_map_is_refused():
    with pytest.raises(ConfigError, match="at least 2 positions.*1×1"):
        SpectralRegularizer(create_model("resnet18", 2), 1.0, 16)


def test_multitask_training_refuses_it(tmp_path, digits_tasks_csv):
    config = TrainConfig(arch="small_cnn", img_size=16, epochs=1, tasks=("finding", "view"), spectral_reg=0.1)
    with pytest.raises(ConfigError, match="multi-task.*--spectral-reg"):
        train(digits_tasks_csv, tmp_path / "run", config, progress=False)


@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf")])
def test_config_refuses_a_negative_or_non_finite_weight(value):
    with pytest.raises(ConfigError, match="spectral_reg"):
        dataclasses.replace(TrainConfig(), spectral_reg=value)


def test_cli_records_the_flag_and_refuses_a_negative_weight(tmp_path, digits04, capsys):
    import json

    import numpy as np
    from tlc.cli.main import run

    images, labels = digits04.arrays("train", 8)
    path = tmp_path / "digits.npz"
    np.savez(path, images=images[..., 0], labels=labels)
    common = ["--arch", "small_cnn", "--img-size", "16", "--epochs", "1", "--batch-size", "16"]
    assert run(["train", str(path), "--out", str(tmp_path / "bad"), *common, "--spectral-reg", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error:") and "spectral_reg" in err and "\n" not in err
    assert not (tmp_path / "bad").exists()
    assert run(["train", str(path), "--out", str(tmp_path / "ok"), *common, "--spectral-reg", "0.3"]) == 0
    run_json = json.loads((tmp_path / "ok" / "run.json").read_text())
    assert run_json["config"]["spectral_reg"] == 0.3
    assert "spectral_penalty" in run_json["epochs"][0]
