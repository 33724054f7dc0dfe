"""Multi-task training pieces: the masked per-task loss, per-task class weights and per-task metrics.

Labels are N×T int64 (``Split.task_labels``: one column per task, primary first, -1 = no label).
An image without a label for a task adds nothing to that task's loss or metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tlc_runtime.manifest import LOGITS, TASK_OUTPUT_PREFIX

from ..data.records import Task
from ..models.deploy import DeployModel
from ..models.outputs import ModelOutput, as_outputs
from .loop import EVAL_BATCH, class_weights
from .metrics import classification_metrics

Criterion = Callable[[ModelOutput, torch.Tensor], torch.Tensor]


def task_class_weights(labels: np.ndarray, tasks: Sequence[Task]) -> list[torch.Tensor]:
    """Inverse-frequency weights per task (``loop.class_weights``) over the images labelled for it."""
    return [class_weights(labels[labels[:, t] >= 0, t], len(task.class_names)) for t, task in enumerate(tasks)]


def task_logits(out: ModelOutput, count: int) -> list[torch.Tensor]:
    """The ``count`` tasks' logits of a multi-task model's output, primary first (graph output order)."""
    outputs = as_outputs(out)
    logits = [outputs[LOGITS], *(v for k, v in outputs.items() if k.startswith(TASK_OUTPUT_PREFIX))]
    if len(logits) != count:
        raise ValueError(f"the model gives {len(logits)} task outputs, the data has {count} tasks")
    return logits


def masked_loss(out: ModelOutput, labels: torch.Tensor, weights: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """Sum over tasks of each task's (weighted) cross-entropy on the images labelled for it."""
    total = labels.new_zeros((), dtype=torch.float32)
    for t, logits in enumerate(task_logits(out, labels.shape[1])):
        keep = labels[:, t] >= 0
        if bool(keep.any()):
            weight = weights[t]
            total = total + F.cross_entropy(logits[keep].float(), labels[keep, t],
                                            weight=None if weight is None else weight.to(logits.device))
    return total


def task_criterion(weights: Sequence[torch.Tensor | None]) -> Criterion:
    """``train_epoch``'s loss for a multi-task model."""
    return lambda out, labels: masked_loss(out, labels, weights)


@torch.inference_mode()
def predict_tasks(model: DeployModel, images: torch.Tensor, count: int) -> list[np.ndarray]:
    """Every task's logits (N×K_t float32, primary first) of raw NHWC ``images``, in eval mode."""
    was_training = model.training
    model.eval()
    chunks = [task_logits(model(images[i:i + EVAL_BATCH]), count) for i in range(0, len(images), EVAL_BATCH)]
    model.train(was_training)
    if not chunks:
        return [np.zeros((0, k), np.float32) for k in _widths(model, count)]
    return [torch.cat([c[t] for c in chunks]).float().cpu().numpy() for t in range(count)]


def _widths(model: DeployModel, count: int) -> list[int]:
    return [k for _, k in model.classifier.tasks][:count]


def evaluate_tasks(model: DeployModel, images: torch.Tensor, labels: torch.Tensor, tasks: Sequence[Task],
                   weights: Sequence[torch.Tensor | None]) -> dict[str, Any]:
    """The primary task's metrics at the top level (as a single-task run records them), ``loss`` = the
    summed masked loss, and ``tasks``: each task's metrics and loss on its labelled images."""
    logits = predict_tasks(model, images, len(tasks))
    labels_np = labels.cpu().numpy()
    per_task = {}
    for t, task in enumerate(tasks):
        keep = labels_np[:, t] >= 0
        loss = None
        if keep.any():
            loss = float(F.cross_entropy(torch.from_numpy(logits[t][keep]), torch.from_numpy(labels_np[keep, t]),
                                         weight=None if weights[t] is None else weights[t].cpu()))
        per_task[task.name] = {"loss": loss, **classification_metrics(logits[t][keep], labels_np[keep, t])}
    losses = [m["loss"] for m in per_task.values() if m["loss"] is not None]
    primary = per_task[tasks[0].name]
    return {**primary, "loss": float(sum(losses)) if losses else None, "tasks": per_task}


def task_summary(metrics: dict[str, Any]) -> str:
    """One line: each task's balanced accuracy (``evaluate_tasks`` output)."""
    parts = []
    for name, m in metrics.get("tasks", {}).items():
        bal = m.get("balanced_accuracy")
        parts.append(f"{name} {'n/a' if bal is None else f'{bal:.4f}'} (n={m.get('n', 0)})")
    return "balanced accuracy per task: " + ", ".join(parts)
