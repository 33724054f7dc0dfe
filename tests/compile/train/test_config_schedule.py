"""TrainConfig validation, the LR schedule and the freeze schedule."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from tlc.errors import ConfigError
from tlc.models import create_model
from tlc.train import TrainConfig
from tlc.train.schedule import (
    apply_freeze,
    lr_factor,
    make_optimizer,
    make_scheduler,
    trainable_stages,
)


@pytest.mark.parametrize(("changes", "words"), [
    ({"img_size": 15}, "img_size must be at least 16"),
    ({"epochs": 0}, "epochs must be at least 1"),
    ({"freeze": "all"}, "freeze must be one of none, head, gradual"),
    ({"batch_size": 0}, "batch_size"),
    ({"lr": 0.0}, "lr must be positive"),
    ({"val_fraction": 0.6, "test_fraction": 0.5}, "sum < 1"),
    ({"limit_train": 1}, "limit_train"),
])
def test_invalid_options_are_config_errors(changes, words):
    with pytest.raises(ConfigError, match=words):
        TrainConfig(**changes)


def test_config_round_trips_through_a_dict_and_rejects_unknown_keys():
    config = TrainConfig(arch="resnet18", epochs=3, freeze="gradual")
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown training option.*'?learning_rate"):
        TrainConfig.from_dict({**config.to_dict(), "learning_rate": 1.0})


def test_lr_warms_up_then_decays_by_cosine():
    total, warmup = 100, 5
    factors = [lr_factor(s, total, warmup) for s in range(total)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))
    assert factors[52] == pytest.approx(0.01 + 0.99 * 0.5, abs=0.02)
    assert factors[-1] == pytest.approx(0.01, abs=0.01)


def test_scheduler_positioned_for_resume_matches_a_stepped_one():
    def optimizer():
        return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=0.1)

    stepped = optimizer()
    scheduler = make_scheduler(stepped, 40, 10)
    for _ in range(17):
        stepped.step()
        scheduler.step()
    resumed = optimizer()
    make_scheduler(resumed, 40, 10, start_step=17)
    assert resumed.param_groups[0]["lr"] == pytest.approx(stepped.param_groups[0]["lr"])


def test_discriminative_learning_rates_only_for_pretrained_backbones():
    model = create_model("resnet18", 2)
    config = TrainConfig(lr=1e-3, backbone_lr_mult=0.1)
    lrs = {g["name"]: g["lr"] for g in make_optimizer(model, config, pretrained=True).param_groups}
    assert lrs["backbone"] == pytest.approx(1e-4) and lrs["head"] == pytest.approx(1e-3)
    scratch = {g["name"]: g["lr"] for g in make_optimizer(model, config, pretrained=False).param_groups}
    assert scratch["backbone"] == pytest.approx(1e-3)
    no_decay = [g for g in make_optimizer(model, config, True).param_groups if g["name"].endswith("no_decay")]
    assert all(g["weight_decay"] == 0 and all(p.ndim == 1 for p in g["params"]) for g in no_decay)


def test_gradual_unfreezing_adds_one_stage_every_k_epochs():
    config = TrainConfig(freeze="gradual", unfreeze_every=2)
    assert [trainable_stages(config, e, 5) for e in range(12)] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert trainable_stages(dataclasses.replace(config, freeze="head"), 9, 5) == 0
    assert trainable_stages(dataclasses.replace(config, freeze="none"), 0, 5) == 5


def test_apply_freeze_freezes_lower_stages_and_their_batchnorm():
    model = create_model("resnet18", 3).train()
    apply_freeze(model, 2)  # layer3 and layer4 train
    stages = model.backbone_stages()
    assert all(not p.requires_grad for s in stages[:3] for p in s.parameters())
    assert all(p.requires_grad for s in stages[3:] for p in s.parameters())
    assert all(p.requires_grad for p in model.head_parameters())
    assert not model.backbone.layer1[0].bn1.training and model.backbone.layer4[0].bn1.training
    x = torch.randn(4, 3, 32, 32)
    frozen_before = model.backbone.layer1[0].bn1.running_mean.clone()
    model(x).sum().backward()
    assert torch.equal(model.backbone.layer1[0].bn1.running_mean, frozen_before)
    assert model.backbone.conv1.weight.grad is None and model.backbone.layer4[0].conv1.weight.grad is not None
    model.train()
    apply_freeze(model, 5)
    assert all(p.requires_grad for p in model.parameters())

