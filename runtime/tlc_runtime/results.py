"""What a prediction returns, and the numerically stable softmax that produces it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .conformal import prediction_sets
from .manifest import LOGITS, ConformalRule, Manifest
from .ood import with_ood
from .uncertainty import with_uncertainty


@dataclass(frozen=True)
class Prediction:
    """One image's result: the winning class, its probability, and every class's probability.

    ``probabilities`` maps class name to probability, in the order of the model's class names
    (calibrated when the bundle records a temperature: it is folded into the graph).
    ``prediction_set``: the classes (model order) the bundle's conformal rule keeps, always holding
    ``label``; None when the bundle has no rule. ``uncertainty``: MC-dropout {"aleatoric",
    "epistemic", "total"} in nats (``tlc_runtime.uncertainty``); None when the bundle has none.
    ``ood``: the bundle's OOD score ``ood_score`` is above its threshold (the image is unlike the
    training data); both None when the bundle has no OOD gate (``tlc_runtime.ood``).
    ``abstain``: the set holds more than one label, the epistemic uncertainty is above the
    bundle's threshold, or the image is OOD (refer the image to a human).
    """

    label: str
    index: int
    confidence: float
    probabilities: dict[str, float]
    prediction_set: list[str] | None = None
    abstain: bool = False
    uncertainty: dict[str, float] | None = None
    ood: bool | None = None
    ood_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return {"label": self.label, "index": self.index, "confidence": self.confidence,
                "probabilities": dict(self.probabilities),
                "prediction_set": None if self.prediction_set is None else list(self.prediction_set),
                "abstain": self.abstain,
                "uncertainty": None if self.uncertainty is None else dict(self.uncertainty),
                "ood": self.ood, "ood_score": self.ood_score}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of N×K logits, computed in float64 after subtracting each row's max."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predictions_from_outputs(outputs: dict[str, np.ndarray], manifest: Manifest) -> list[Prediction]:
    """One Prediction per image from a graph's outputs (``Classifier.predict_outputs``): probabilities
    and the conformal set from the logits; the manifest's sections give the extra outputs a meaning
    (``uncertainty``: MC-dropout parts, abstain above the epistemic threshold; ``ood``: the OOD flag
    and score, abstain when OOD)."""
    predictions = predictions_from_logits(outputs[LOGITS], manifest.class_names, manifest.conformal)
    predictions = with_uncertainty(predictions, outputs, manifest.uncertainty)
    return with_ood(predictions, outputs, manifest.ood)


def predictions_from_logits(logits: np.ndarray, class_names: Sequence[str],
                            conformal: ConformalRule | None = None) -> list[Prediction]:
    """One Prediction per row of N×K logits; ``conformal`` (the manifest's rule) adds the prediction sets."""
    probs = softmax(logits)
    best = probs.argmax(axis=1)
    sets: list[list[str] | None] = [None] * len(probs)
    if conformal is not None:
        sets = [[n for n, keep in zip(class_names, row, strict=True) if keep]
                for row in prediction_sets(probs, conformal).tolist()]
    out = []
    for row, idx, members in zip(probs.tolist(), best.tolist(), sets, strict=True):
        out.append(Prediction(label=class_names[idx], index=idx, confidence=row[idx],
                              probabilities=dict(zip(class_names, row, strict=True)),
                              prediction_set=members, abstain=members is not None and len(members) > 1))
    return out
