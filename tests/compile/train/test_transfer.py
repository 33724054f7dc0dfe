"""The core use case: a run trained on plenty of labels makes a few-label task in its domain work."""

from __future__ import annotations

import pytest
import torch
from tlc.models import create_model
from tlc.models.weights import resolve_weights
from tlc.runs import read_run_info
from tlc.train import TrainConfig, load_run_model, train

pytestmark = pytest.mark.slow

FINETUNE = dict(img_size=32, batch_size=8, epochs=12, patience=None)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, cluttered_digits):
    """resnet18 trained on every labelled image of digits 0–4 (about 540 images)."""
    root = tmp_path_factory.mktemp("transfer")
    source = cluttered_digits(root / "source.npz", (0, 1, 2, 3, 4), seed=0)
    info = train(source, root / "pretrain", TrainConfig(arch="resnet18", img_size=32, batch_size=32, epochs=8,
                                                        lr=2e-3, patience=None), progress=False)
    assert info.test_metrics["balanced_accuracy"] > 0.8, "pretraining itself must work"
    return root, info


def test_transfer_beats_scratch_with_ten_labels_per_class(pretrained, cluttered_digits):
    root, _ = pretrained
    target = cluttered_digits(root / "target.npz", (5, 6, 7, 8, 9), per_class_train=10, seed=1)
    assert len(target.splits["train"]) == 50
    scratch = train(target, root / "scratch", TrainConfig(arch="resnet18", **FINETUNE), progress=False)
    transfer = train(target, root / "transfer", TrainConfig(weights=str(root / "pretrain"), **FINETUNE),
                     progress=False)
    gain = transfer.test_metrics["balanced_accuracy"] - scratch.test_metrics["balanced_accuracy"]
    print(f"test balanced accuracy: scratch {scratch.test_metrics['balanced_accuracy']:.3f}, "
          f"transfer {transfer.test_metrics['balanced_accuracy']:.3f}")
    assert gain > 0.15
    assert transfer.test_metrics["balanced_accuracy"] > 0.4


def test_same_domain_chain_reuses_the_backbone_with_a_new_head(pretrained, cluttered_digits):
    root, parent = pretrained
    target = cluttered_digits(root / "chain.npz", (5, 6, 7), per_class_train=5, seed=2)
    child = train(target, root / "child", TrainConfig(weights=str(root / "pretrain"), **{**FINETUNE, "epochs": 1}),
                  progress=False)
    assert child.arch == parent.arch == "resnet18"  # inherited: no --arch given
    assert child.weights_init == f"run:{root / 'pretrain' / 'model.safetensors'}"
    assert child.class_names == ("digit-5", "digit-6", "digit-7")
    assert (child.preprocessing.mean, child.preprocessing.std) == (parent.preprocessing.mean,
                                                                  parent.preprocessing.std)
    assert read_run_info(root / "child") == child

    parent_model, _ = load_run_model(root / "pretrain")
    start = create_model("resnet18", 3)
    resolve_weights(str(root / "pretrain"), "resnet18").apply(start, child.class_names)
    for key, value in parent_model.backbone.state_dict().items():
        assert torch.equal(start.backbone.state_dict()[key], value), key
    assert start.head.fc.out_features == 3
    child_model, _ = load_run_model(root / "child")
    assert child_model.head.fc.out_features == 3
