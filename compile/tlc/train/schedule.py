"""Optimiser, learning-rate schedule and the freeze/unfreeze schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..models.classifier import Classifier
from .config import TrainConfig


def param_groups(model: Classifier, config: TrainConfig, pretrained: bool) -> list[dict]:
    """AdamW groups: backbone at ``lr * backbone_lr_mult`` (pretrained only), head (and a learned
    channel adapter) at ``lr``;
    no weight decay on biases and normalisation weights (1-D tensors)."""
    backbone_lr = config.lr * (config.backbone_lr_mult if pretrained else 1.0)
    groups = []
    for name, params, lr in (("backbone", model.backbone_parameters(), backbone_lr),
                             ("head", model.head_parameters(), config.lr),
                             ("adapter", model.adapter_parameters(), config.lr)):
        params = list(params)
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        groups.append({"name": f"{name}", "params": decay, "lr": lr, "weight_decay": config.weight_decay})
        groups.append({"name": f"{name}_no_decay", "params": no_decay, "lr": lr, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def make_optimizer(model: Classifier, config: TrainConfig, pretrained: bool) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, config, pretrained))


def lr_factor(step: int, total_steps: int, warmup_steps: int, floor: float = 0.01) -> float:
    """Linear warmup to 1 over ``warmup_steps``, then cosine decay to ``floor`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_steps_for(total_steps: int, steps_per_epoch: int) -> int:
    """5% of the run, at most one epoch, at least one step."""
    return max(1, min(steps_per_epoch, round(0.05 * total_steps)))


def make_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int,
                   start_step: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step warmup + cosine schedule, positioned at ``start_step`` (for resume)."""
    warmup = warmup_steps_for(total_steps, steps_per_epoch)
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup), last_epoch=start_step - 1)


def trainable_stages(config: TrainConfig, epoch: int, num_stages: int) -> int:
    """How many backbone stages (counted from the output end) train in ``epoch`` (0-based)."""
    if config.freeze == "none":
        return num_stages
    if config.freeze == "head":
        return 0
    return min(num_stages, epoch // config.unfreeze_every)


def apply_freeze(model: Classifier, num_trainable: int) -> None:
    """Freeze all but the top ``num_trainable`` stages; frozen stages keep BatchNorm statistics fixed.

    Call after ``model.train()``: frozen modules are switched back to eval mode.
    """
    stages = model.backbone_stages()
    frozen = stages[: len(stages) - num_trainable]
    trainable_ids = {id(p) for s in stages[len(stages) - num_trainable:] for p in s.parameters()}
    for p in model.backbone_parameters():
        p.requires_grad_(id(p) in trainable_ids or num_trainable >= len(stages))
    for stage in frozen:
        for module in stage.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()

