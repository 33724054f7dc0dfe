"""MC-dropout uncertainty as one deterministic graph: K stochastic passes with dropout masks drawn once,
at build time (seeded), and stored as buffers, so every backend computes the same numbers.

Head-only dropout runs the backbone once and applies the K masks to the normalised pooled features
in one batched op; "head+stage" runs the trunk once and the last stage on N·K inputs (the masked
copies of its input, K-major), then the head masks as before. Outputs, per image:

- ``logits``: log of the mean of the K softmax probabilities (softmax(logits) is the MC mean),
- ``total``: entropy of that mean (predictive entropy),
- ``aleatoric``: mean of the K entropies (expected entropy),
- ``epistemic``: total − aleatoric (mutual information), clipped at 0.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import ConfigError
from .deploy import DeployModel
from .ops import logsumexp

if TYPE_CHECKING:
    from ..runs import RunInfo

DEFAULT_SAMPLES = 16
DEFAULT_SEED = 0
OUTPUT_NAMES = ("logits", "total", "aleatoric", "epistemic")


def dropout_masks(samples: int, shape: tuple[int, ...], rate: float, generator: torch.Generator) -> torch.Tensor:
    """K inverted-dropout masks of ``shape`` (values 0 or 1/(1 − rate)), float32, samples first."""
    keep = torch.rand((samples, *shape), generator=generator) >= rate
    return keep.to(torch.float32) / (1.0 - rate)


def uncertainty_outputs(sample_logits: torch.Tensor, samples: int) -> dict[str, torch.Tensor]:
    """The four outputs from K×N×C per-sample logits (K = ``samples``; log-space throughout: no log(0))."""
    log_probs = torch.log_softmax(sample_logits, dim=-1)
    mean_log = logsumexp(log_probs, dim=0) - math.log(samples)
    total = -(mean_log.exp() * mean_log).sum(-1)
    aleatoric = -(log_probs.exp() * log_probs).sum(-1).mean(0)
    return {"logits": mean_log, "total": total, "aleatoric": aleatoric,
            "epistemic": torch.clamp(total - aleatoric, min=0.0)}


class _StageSamples(nn.Module):
    """N×C×H×W → (K·N)×C×H×W: the K masked copies of the last stage's input, K-major."""

    def __init__(self, masks: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("masks", masks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        samples = x.unsqueeze(0) * self.masks.unsqueeze(1)
        return samples.reshape(-1, *x.shape[1:])

    def hook(self, _module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (self(args[0]), *args[1:])


class McDropoutModel(nn.Module):
    """A run's :class:`DeployModel` (trained with ``--mc-dropout``) with K fixed-mask dropout passes.

    ``samples``: K; ``seed``: the masks' seed; ``image_size``: (height, width) of the graph input,
    which fixes the shape of the last-stage masks. The deploy model is copied (it stays unchanged).
    """

    def __init__(self, model: DeployModel, samples: int = DEFAULT_SAMPLES, seed: int = DEFAULT_SEED,
                 image_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        spec = model.classifier.mc_dropout
        if spec is None:
            raise ConfigError("MC-dropout samples need a run trained with --mc-dropout")
        if samples < 2:
            raise ConfigError(f"MC-dropout needs at least 2 samples, got {samples}")
        self.samples, self.seed, self.rate, self.where = samples, seed, spec.rate, spec.where
        self.model = copy.deepcopy(model).eval()
        classifier = self.model.classifier
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("head_masks", dropout_masks(samples, (1, classifier.num_features), spec.rate, gen))
        self.stage = None
        if spec.where == "head+stage":
            if image_size is None:
                raise ConfigError("head+stage MC dropout needs the graph's image size for its masks")
            shape = _stage_input_shape(classifier, image_size)
            self.stage = _StageSamples(dropout_masks(samples, shape, spec.rate, gen))
            classifier.last_stage_entry().register_forward_pre_hook(self.stage.hook)

    @classmethod
    def for_run(cls, model: DeployModel, run: RunInfo, samples: int, seed: int) -> McDropoutModel:
        """The wrapper of ``run``'s deploy model at its image size (eval mode)."""
        return cls(model, samples, seed, (run.img_size, run.img_size)).eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.model.classifier.forward_features(self.model.preprocess(x))  # N×F, or (K·N)×F
        return self.from_features(features)

    def from_features(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """The outputs from the pooled features (N×F; (K·N)×F when the last stage is masked too)."""
        classifier = self.model.classifier
        normed = classifier.head.norm(features)
        if self.stage is not None:
            normed = normed.reshape(self.samples, -1, normed.shape[-1])
        sample_logits = classifier.head.fc(normed * self.head_masks)   # K×N×C
        return uncertainty_outputs(sample_logits, self.samples)


def _stage_input_shape(classifier: nn.Module, image_size: tuple[int, int]) -> tuple[int, ...]:
    """C×H×W of the last stage's input for an image of ``image_size``, from one dry pass."""
    seen: list[tuple[int, ...]] = []
    handle = classifier.last_stage_entry().register_forward_pre_hook(
        lambda _m, args: seen.append(tuple(args[0].shape[1:])))
    try:
        with torch.no_grad():
            classifier.backbone(torch.zeros(1, 3, *image_size))
    finally:
        handle.remove()
    return seen[0]
