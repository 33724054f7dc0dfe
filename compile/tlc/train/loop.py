"""One training epoch and batched prediction, on whole-split tensors (no per-sample Python loops)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models.deploy import DeployModel
from .augment import AugmentConfig, augment_batch
from .distributed import LOCAL, DistContext

EVAL_BATCH = 256
RECALIBRATION_IMAGES = 1024


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``N / (K * count)``; a class absent from training gets weight 0."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def batches_per_epoch(n: int, batch_size: int) -> int:
    """Optimiser steps in one epoch: every batch except a trailing single image."""
    full, rest = divmod(n, batch_size)
    return max(1, full + (1 if rest > 1 else 0))


def train_epoch(model: DeployModel, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int,
                optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                gen: torch.Generator, loss_weights: torch.Tensor | None, augment: AugmentConfig | None,
                on_batch: Callable[[int], None] | None = None,
                criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                dist: DistContext = LOCAL, regularizer: Callable[[], torch.Tensor] | None = None) -> float:
    """One pass over ``images`` (raw NHWC) in a seeded random order; returns the mean loss.

    ``criterion(model output, labels)``: the loss; None → cross-entropy weighted by ``loss_weights``
    (a multi-task model passes ``tlc.train.multitask.task_criterion``). ``regularizer()``: a term added
    to the loss after each forward pass (``tlc.train.spectral.SpectralRegularizer``); the returned mean
    loss is the criterion's alone.

    The model must already be in train mode with its freeze state applied. Preprocessing is the
    DeployModel's own module, split around the augmentation. With several ranks (``dist``) every rank
    draws the same order and augmentation of each global batch of ``batch_size`` and trains on its
    share; the loss is scaled so that DDP's gradient average is the gradient of the global batch's loss.
    """
    order = torch.randperm(len(images), generator=gen)
    classifier = dist.wrap(model.classifier)
    total, seen = 0.0, 0
    for step in range(batches_per_epoch(len(order), batch_size)):  # a trailing single image would break BatchNorm
        idx = order[step * batch_size:(step + 1) * batch_size]
        x = model.preprocess.to_unit(images[idx])
        if augment is not None:
            x = augment_batch(x, gen, augment)
        mine = dist.shard(torch.arange(len(idx), device=idx.device))
        x = model.preprocess.standardize(x[mine])
        y = labels[idx]
        if criterion is not None:  # multi-task (one process: tlc.train.ddp refuses tasks)
            loss = criterion(classifier(x), y)
        elif dist.world_size == 1:  # one process: the plain weighted mean (bit-identical to runs before --nproc)
            loss = F.cross_entropy(classifier(x), y, weight=loss_weights)
        else:
            weight = len(idx) if loss_weights is None else loss_weights[y].sum()  # the global batch's total weight
            loss = F.cross_entropy(classifier(x), y[mine], weight=loss_weights, reduction="sum") / weight
        objective = loss if regularizer is None else loss + regularizer()
        optimizer.zero_grad(set_to_none=True)
        (objective * dist.world_size).backward()  # DDP averages over ranks
        optimizer.step()
        scheduler.step()
        total += float(loss.detach()) * len(idx)
        seen += len(idx)
        if on_batch is not None:
            on_batch(len(idx))
    return dist.sum(total) / max(seen, 1)


@torch.no_grad()
def recalibrate_batchnorm(model: DeployModel, images: torch.Tensor, max_images: int = RECALIBRATION_IMAGES,
                          dist: DistContext = LOCAL) -> None:
    """Re-estimate the running statistics of the *trainable* BatchNorm layers ("precise BN").

    Running statistics are an exponential average that needs many steps to forget its initial
    values (and for MobileNetV3 tiny activations start far below the initial variance of 1): after
    the few dozen steps of a small-data run, eval mode can collapse to one class. So after each
    epoch they are recomputed as exact averages over up to ``max_images`` training images (evenly
    spaced, not augmented). BatchNorm layers of frozen stages (eval mode) keep their statistics.
    With several ranks each chunk is split between them (synchronised BatchNorm sees the whole chunk).
    """
    layers = [m for m in model.classifier.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    if not layers:
        return
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    idx = torch.linspace(0, len(images) - 1, min(len(images), max_images)).round().long().to(images.device)
    for chunk in idx.split(EVAL_BATCH):
        if len(chunk) > 1:
            model(images[dist.shard(chunk)])
    for m, momentum in zip(layers, momenta, strict=True):
        m.momentum = momentum


@torch.inference_mode()
def predict(model: DeployModel, images: torch.Tensor, dist: DistContext = LOCAL) -> np.ndarray:
    """Logits (N×K float32) of raw NHWC ``images``, in eval mode (each rank predicts its share)."""
    was_training = model.training
    model.eval()
    images = images[dist.shard(torch.arange(len(images), device=images.device))]
    outs = [model(images[i:i + EVAL_BATCH]) for i in range(0, len(images), EVAL_BATCH)]
    model.train(was_training)
    logits = torch.cat(outs).float().cpu().numpy() if outs else \
        np.zeros((0, model.classifier.num_classes), dtype=np.float32)
    return dist.gather(logits)


def mean_loss(logits: np.ndarray, labels: np.ndarray, loss_weights: torch.Tensor | None) -> float | None:
    """(Weighted) cross-entropy of logits already computed; None for an empty split."""
    if len(labels) == 0:
        return None
    return float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels), weight=loss_weights))
