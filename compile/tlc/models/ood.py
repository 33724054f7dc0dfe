"""A deploy model that also scores how unlike the training data an image is (the OOD gate's inputs).

Outputs (the multi-output contract: ``"logits"`` first, then per-image float32 scores, higher = more
out-of-distribution):

- ``energy``: −logsumexp of the (calibrated) logits (Liu et al. 2020); for an MC-dropout model, of
  the deterministic head's logits (its own are log mean probabilities, whose logsumexp is always 0);
- ``mahalanobis``: the squared Mahalanobis distance of the pooled features
  (``Classifier.forward_features``) to the nearest class mean under one shared covariance, whose
  precision matrix is a buffer (Lee et al. 2018). All classes at once: N×K×D differences, one MatMul
  by the precision, a product summed over D, a min over K; no per-class loop in the graph;
- ``ood_score``: ``weights · (energy, mahalanobis)``, the score the gate thresholds (the weights say
  which score the bundle uses, see ``tlc.bundler.ood``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .calibrated import TemperatureScaled
from .deploy import DeployModel
from .mc_dropout import McDropoutModel
from .multitask import MultiTaskClassifier
from .ops import logsumexp

OUTPUTS = ("logits", "energy", "mahalanobis", "ood_score")


def unwrap(model: nn.Module) -> tuple[DeployModel | McDropoutModel, float | None]:
    """(the DeployModel, or head-only MC-dropout model, inside ``model``; the temperature its logits
    are divided by, or None)."""
    inner, temperature = (model.model, float(model.temperature)) if isinstance(model, TemperatureScaled) else (model, None)
    single = isinstance(inner, DeployModel) and not isinstance(inner.classifier, MultiTaskClassifier)
    if single or (isinstance(inner, McDropoutModel) and inner.where == "head"):
        return inner, temperature
    raise TypeError(f"cannot score {type(inner).__name__}: expected a DeployModel or a head-only MC-dropout model, "
                    "optionally TemperatureScaled")


def scorable(model: nn.Module) -> bool:
    """Whether :class:`OodScored` can wrap ``model``: a single DeployModel or a head-only MC-dropout
    model (its backbone runs once, unmasked), optionally TemperatureScaled. Not an ensemble (members
    have different feature spaces), a multi-task model (its heads read the spatial map), nor
    head+stage MC dropout (its features are masked K times)."""
    try:
        unwrap(model)
    except TypeError:
        return False
    return True


def _deploy_of(inner: DeployModel | McDropoutModel) -> DeployModel:
    return inner.model if isinstance(inner, McDropoutModel) else inner


def pooled_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The pooled feature vectors (N×D) of raw NHWC pixels, through the model's own preprocessing."""
    deploy = _deploy_of(unwrap(model)[0])
    return deploy.classifier.forward_features(deploy.preprocess(x))


def features_of(model: nn.Module, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """``pooled_features`` of raw NHWC inputs in batches, as a float64 N×D array (no gradients); the
    model should be in eval mode."""
    outs = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(inputs[start:start + batch_size]))
            outs.append(pooled_features(model, chunk).double().numpy())
    return np.concatenate(outs)


class OodScored(nn.Module):
    """``model`` (a DeployModel, optionally TemperatureScaled) plus the OOD scores.

    means: K×D class means of the pooled features; precision: D×D inverse of the shared covariance;
    weights: (w_energy, w_mahalanobis) of ``ood_score``.
    """

    def __init__(self, model: nn.Module, means: np.ndarray, precision: np.ndarray,
                 weights: tuple[float, float]) -> None:
        super().__init__()
        inner, temperature = unwrap(model)
        deploy = _deploy_of(inner)
        self.preprocess, self.classifier = deploy.preprocess, deploy.classifier
        self.mc = inner if isinstance(inner, McDropoutModel) else None  # its outputs pass through
        self.register_buffer("temperature", torch.tensor(temperature or 1.0, dtype=torch.float32))
        self.register_buffer("means", torch.as_tensor(np.asarray(means, np.float32)))
        self.register_buffer("precision", torch.as_tensor(np.asarray(precision, np.float32)))
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.classifier.forward_features(self.preprocess(x))
        plain = self.classifier.forward_head(features) / self.temperature  # eval mode: no dropout
        inner = {"logits": plain} if self.mc is None else self.mc.from_features(features)
        logits = inner.pop("logits") / (1.0 if self.mc is None else self.temperature)
        # energy of the plain logits: an MC model's logits are log mean probabilities, whose logsumexp is 0
        energy = -logsumexp(plain, dim=1)
        diff = features.unsqueeze(1) - self.means                     # N×K×D
        mahalanobis = ((diff @ self.precision) * diff).sum(dim=2).amin(dim=1)
        score = self.weights[0] * energy + self.weights[1] * mahalanobis
        return {"logits": logits, **inner, "energy": energy, "mahalanobis": mahalanobis, "ood_score": score}


