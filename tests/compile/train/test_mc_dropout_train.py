"""``--mc-dropout``: training with dropout for MC-dropout uncertainty, recorded in run.json, rebuilt on load,
not inherited by child runs."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from tlc.errors import ConfigError
from tlc.models import create_model
from tlc.runs import McDropout, read_run_info
from tlc.train import TrainConfig, load_run_model, train


@pytest.fixture(scope="module")
def mc_run(tmp_path_factory, digits04, tiny_config):
    """A one-epoch run trained with MC dropout 0.3 in the head and on the last stage's input."""
    config = dataclasses.replace(tiny_config, mc_dropout=0.3, mc_dropout_where="head+stage")
    run_dir = tmp_path_factory.mktemp("mc") / "run"
    return run_dir, train(digits04, run_dir, config, progress=False)


def test_run_records_mc_dropout_and_loads_the_same_model(mc_run):
    run_dir, info = mc_run
    assert info.mc_dropout == McDropout(0.3, "head+stage")
    assert read_run_info(run_dir).mc_dropout == info.mc_dropout
    model, _ = load_run_model(run_dir)
    assert model.head.drop.p == 0.3 and model.stage_drop.p == 0.3
    plain_keys = set(create_model("resnet18", len(info.class_names)).state_dict())
    assert set(model.state_dict()) == plain_keys, "dropout must not change the checkpoint's keys"


def test_stage_dropout_acts_on_the_last_stage_input_in_training_only(mc_run):
    model, _ = load_run_model(mc_run[0])
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    seen = []
    # layer4[0] receives layer4's input; this hook runs after the model's own (registered first)
    model.backbone.layer4[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    with torch.no_grad():
        model.stage_drop.train()
        model.backbone(x)
        zeros_in_train = (seen[-1] == 0).float().mean().item()
        model.eval()
        model.backbone(x)
        zeros_in_eval = (seen[-1] == 0).float().mean().item()
    # layer3's output is post-ReLU, so some zeros exist either way; dropout at 0.3 adds about 30 % more
    assert zeros_in_train > zeros_in_eval + 0.15


def test_child_run_does_not_inherit_mc_dropout(tmp_path, digits04, tiny_config, mc_run):
    child = train(digits04, tmp_path / "child", dataclasses.replace(tiny_config, weights=str(mc_run[0])),
                  progress=False)
    assert child.mc_dropout is None and child.config["mc_dropout"] is None
    assert '"mc_dropout": {' not in (tmp_path / "child" / "run.json").read_text()
    model, _ = load_run_model(tmp_path / "child")
    assert "drop" not in dict(model.head.named_children()) and not hasattr(model, "stage_drop")


def test_plain_run_json_has_no_mc_dropout_key(tiny_run):
    run_dir, info = tiny_run
    assert info.mc_dropout is None
    assert '"mc_dropout": {' not in (run_dir / "run.json").read_text()


@pytest.mark.parametrize("options", [{"mc_dropout": 0.0}, {"mc_dropout": 1.0}, {"mc_dropout": -0.2},
                                     {"mc_dropout_where": "head+stage"},
                                     {"mc_dropout": 0.3, "mc_dropout_where": "stem"}])
def test_bad_mc_dropout_options_are_config_errors(options):
    with pytest.raises(ConfigError, match="mc_dropout"):
        TrainConfig(**options)
