"""Spectral regularisation of each image's feature map (``tlc train --spectral-reg LAMBDA``).

What the study did: "SAR Target Classification Based on Sample Spectral Regularization" (2020)
pretrained a CNN on simulated SAR images, fine-tuned it on few real ones, and added a *sample*
spectral regulariser: a penalty on the singular values of each image's own feature matrix, so that
an image's features do not collapse onto one dominant direction; that improved the discriminability
of the real images' features and the accuracy with few real samples. (Batch Spectral Penalization,
Chen et al., ICML 2019, is the batch form: it penalises the top singular values of the whole batch's
feature matrix.)

What tlc does: the feature map that the backbone's global average pooling reads (its last stage's
output, C×H×W) is, per training image n, a C×HW matrix F_n with singular values s_1 ≥ s_2 ≥ ...
Its *spectral concentration* r_n = s_1² / Σ_i s_i² is the share of the map's energy in its dominant
direction: 1 for a rank-one map, 1/min(C, HW) for a perfectly spread one. The training loss gains
``LAMBDA × mean_n r_n`` (singular values from ``torch.linalg.svdvals``, batched). The ratio is
scale-free, so the network cannot lower it by merely shrinking the features. A map of one position
(HW = 1: e.g. resnet18 at 28 px) has r ≡ 1 and nothing to regularise, so tlc refuses it.

Training-only: a forward pre-hook on the pooling module reads its input while a training step runs
with gradients and is removed after training; no module, parameter or state_dict key is added, so
checkpoints and exported graphs are those of a run without it. LAMBDA = 0 (the default) installs
nothing and trains exactly as before.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..models.classifier import Classifier


def spectral_concentration(feature_map: torch.Tensor) -> torch.Tensor:
    """r_n = s_1² / Σ s_i² of each image's C×HW matrix, for an N×C×H×W ``feature_map`` (N values)."""
    matrices = feature_map.float().flatten(2)  # N×C×HW
    singular = torch.linalg.svdvals(matrices)  # N×min(C, HW), descending
    energy = singular.square()
    return energy[:, 0] / energy.sum(dim=1).clamp_min(1e-12)


def spectral_penalty(feature_map: torch.Tensor, weight: float) -> torch.Tensor:
    """``weight`` × the mean spectral concentration of the batch (the term added to the loss)."""
    return weight * spectral_concentration(feature_map).mean()


def feature_pool(classifier: Classifier) -> nn.Module:
    """The backbone's global average pooling (the last ``AdaptiveAvgPool2d`` it registers): its input
    is the spatial feature map. Squeeze-excitation pools inside MobileNetV3/EfficientNet blocks come
    earlier in registration order, so they are not picked."""
    pools = [m for m in classifier.backbone.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    if not pools or hasattr(classifier, "tasks"):
        raise ConfigError(f"--spectral-reg needs a single-task backbone with a global average pooling; "
                          f"{classifier.arch} {'is multi-task' if pools else 'has none'}")
    return pools[-1]


class SpectralRegularizer:
    """Captures the feature map of each training forward pass; ``__call__`` gives that batch's penalty.

    ``train_epoch`` calls it after the forward pass and adds the result to the loss. ``epoch_mean()``
    is the mean penalty of the steps since the last call (recorded per epoch as ``spectral_penalty``).
    """

    def __init__(self, classifier: Classifier, weight: float, img_size: int) -> None:
        if weight <= 0:
            raise ConfigError(f"spectral regularisation weight must be positive, got {weight}")
        self.weight = weight
        pool = feature_pool(classifier)
        _check_positions(classifier, pool, img_size)
        self._captured: torch.Tensor | None = None
        self._total, self._steps = 0.0, 0
        self._handle = pool.register_forward_pre_hook(self._capture)

    def _capture(self, _module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        if torch.is_grad_enabled():  # training steps only; predictions and BN recalibration skip it
            self._captured = args[0]

    def __call__(self) -> torch.Tensor:
        if self._captured is None:
            raise RuntimeError("no feature map captured: call the regulariser after a training forward pass")
        value = spectral_penalty(self._captured, self.weight)
        self._captured = None
        self._total += float(value.detach())
        self._steps += 1
        return value

    def epoch_mean(self) -> float:
        """The mean penalty since the last call (0.0 when no step ran), then start counting afresh."""
        mean = self._total / self._steps if self._steps else 0.0
        self._total, self._steps = 0.0, 0
        return mean

    def close(self) -> None:
        """Remove the hook (the model is then exactly as without regularisation)."""
        self._handle.remove()
        self._captured = None


def _check_positions(classifier: Classifier, pool: nn.Module, img_size: int) -> None:
    """Refuse a feature map of one position (no spectrum to spread): found with one eval-mode pass."""
    shapes: list[torch.Size] = []
    handle = pool.register_forward_pre_hook(lambda _m, args: shapes.append(args[0].shape))
    was_training = classifier.training
    device = next(classifier.parameters()).device
    try:
        classifier.eval()
        with torch.no_grad():
            classifier(torch.zeros(1, 3, img_size, img_size, device=device))
    finally:
        handle.remove()
        classifier.train(was_training)
    if not shapes:
        raise ConfigError(f"--spectral-reg: {classifier.arch} does not call its global pooling; cannot find "
                          "its feature map")
    height, width = shapes[-1][-2:]
    if height * width < 2:
        raise ConfigError(f"--spectral-reg needs a feature map of at least 2 positions; {classifier.arch} at "
                          f"{img_size} px gives {height}×{width} (use a larger --img-size)")
