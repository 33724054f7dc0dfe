"""Multi-task training: masked per-task loss, per-task class weights and metrics, a loadable run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tlc.data.records import Task
from tlc.train.multitask import masked_loss, task_class_weights

TASKS = ("finding", "view", "exposure")


def test_unlabelled_images_add_nothing_to_a_tasks_loss():
    torch.manual_seed(0)
    out = {"logits": torch.randn(4, 3), "task_view": torch.randn(4, 2)}
    labels = torch.tensor([[0, 1], [2, -1], [1, 0], [0, -1]])
    expected = F.cross_entropy(out["logits"], labels[:, 0]) + F.cross_entropy(out["task_view"][[0, 2]],
                                                                               labels[[0, 2], 1])
    torch.testing.assert_close(masked_loss(out, labels, [None, None]), expected)
    changed = dict(out, task_view=out["task_view"].clone())
    changed["task_view"][[1, 3]] += 100.0  # an unlabelled image's view logits are not trained
    torch.testing.assert_close(masked_loss(changed, labels, [None, None]), expected)


def test_class_weights_count_only_the_labelled_images_of_each_task():
    labels = np.array([[0, 0], [0, -1], [0, -1], [1, 1]])
    weights = task_class_weights(labels, [Task("a", ("x", "y")), Task("b", ("p", "q"))])
    torch.testing.assert_close(weights[0], torch.tensor([4 / 6, 4 / 2]))
    torch.testing.assert_close(weights[1], torch.tensor([1.0, 1.0]))


@pytest.fixture(scope="module")
def multitask_run(tmp_path_factory, digits_tasks_csv):
    from tlc.train import TrainConfig, train

    config = TrainConfig(arch="resnet18", img_size=16, epochs=1, batch_size=16, patience=None, tasks=TASKS,
                         task_attention="dynamic")
    run_dir = tmp_path_factory.mktemp("mt") / "run"
    return run_dir, train(digits_tasks_csv, run_dir, config, progress=False)


def test_a_run_records_each_tasks_metrics_on_its_labelled_images(multitask_run, digits_tasks_csv):
    run_dir, info = multitask_run
    assert [(t.name, t.output) for t in info.tasks] == [("finding", "logits"), ("view", "task_view"),
                                                       ("exposure", "task_exposure")]
    rows = [line.split(",") for line in digits_tasks_csv.read_text().splitlines()[1:]]
    test_rows = [r for r in rows if r[4] == "test"]
    per_task = info.test_metrics["tasks"]
    assert set(per_task) == set(TASKS)
    assert per_task["finding"]["n"] == per_task["view"]["n"] == len(test_rows)
    assert per_task["exposure"]["n"] == sum(1 for r in test_rows if r[3])
    assert info.test_metrics["balanced_accuracy"] == per_task["finding"]["balanced_accuracy"]
    stored = json.loads((run_dir / "run.json").read_text())
    assert stored["tasks"][1] == {"name": "view", "class_names": ["mirrored", "plain"], "output": "task_view"}
    assert set(stored["epochs"][0]["val_task_balanced_accuracy"]) == set(TASKS)


def test_the_run_loads_back_as_a_multi_output_deploy_model(multitask_run):
    from tlc.models.checkpoint import load_deploy_model

    model, info = load_deploy_model(multitask_run[0])
    with torch.no_grad():
        out = model(torch.zeros(2, 16, 16, 1, dtype=torch.uint8))
    assert list(out) == ["logits", "task_view", "task_exposure"]
    assert model.classifier.attention == "dynamic"
