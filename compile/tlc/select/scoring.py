"""The run's model on the pool: probabilities and pooled features in one pass, or K dropout passes.

MC dropout uses ``tlc.models.mc_dropout`` (fixed seeded masks, the graph ``tlc build --mc-samples``
exports). A run trained without ``--mc-dropout`` gets dropout at ``FALLBACK_RATE`` on the head's
normalised features for the passes only (its weights never saw dropout: the scores are a proxy).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ..models.deploy import DeployModel
from ..models.mc_dropout import DEFAULT_SAMPLES, McDropoutModel
from ..runs import McDropout, RunInfo

FALLBACK_RATE = 0.3
BATCH = 256


def probabilities_and_features(model: DeployModel, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N×C softmax probabilities, N×F pooled features ``Classifier.forward_features``) in eval mode."""
    model.eval()
    probs, feats = [], []
    with torch.no_grad():
        for start in range(0, len(inputs), BATCH):
            x = torch.from_numpy(np.ascontiguousarray(inputs[start:start + BATCH]))
            features = model.classifier.forward_features(model.preprocess(x))
            probs.append(torch.softmax(model.classifier.forward_head(features), dim=-1).numpy())
            feats.append(features.numpy())
    return np.concatenate(probs).astype(np.float64), np.concatenate(feats).astype(np.float64)


def mc_dropout_scores(model: DeployModel, run: RunInfo, inputs: np.ndarray, samples: int = DEFAULT_SAMPLES,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """(mutual information per image, N×C MC-mean probabilities, a note saying which dropout ran)."""
    if model.classifier.mc_dropout is None:
        model = copy.deepcopy(model)
        model.classifier.mc_dropout = McDropout(FALLBACK_RATE, "head")
        note = (f"the run was trained without --mc-dropout: dropout {FALLBACK_RATE:g} on the head's features "
                f"for {samples} passes")
    else:
        note = f"the run's {model.classifier.mc_dropout.describe()}, {samples} passes"
    mc = McDropoutModel.for_run(model, run, samples, seed)
    info, probs = [], []
    with torch.no_grad():
        for start in range(0, len(inputs), BATCH):
            out = mc(torch.from_numpy(np.ascontiguousarray(inputs[start:start + BATCH])))
            info.append(out["epistemic"].numpy())
            probs.append(out["logits"].exp().numpy())
    return np.concatenate(info).astype(np.float64), np.concatenate(probs).astype(np.float64), note
