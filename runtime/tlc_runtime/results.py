"""What a prediction returns, and the numerically stable softmax that produces it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .conformal import prediction_sets
from .manifest import ConformalRule, OodRule


@dataclass(frozen=True)
class Prediction:
    """One image's result: the winning class, its probability, and every class's probability.

    ``probabilities`` maps class name to probability, in the order of the model's class names
    (calibrated when the bundle records a temperature: it is folded into the graph).
    ``prediction_set``: the classes (model order) the bundle's conformal rule keeps, always holding
    ``label``; None when the bundle has no rule. ``abstain``: the set holds more than one label
    (refer the image to a human), or the image is out of distribution.
    ``ood``: ``ood_score`` is above the bundle's OOD threshold (the image is unlike the training
    data); both None when the bundle has no OOD gate.
    """

    label: str
    index: int
    confidence: float
    probabilities: dict[str, float]
    prediction_set: list[str] | None = None
    abstain: bool = False
    ood: bool | None = None
    ood_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return {"label": self.label, "index": self.index, "confidence": self.confidence,
                "probabilities": dict(self.probabilities),
                "prediction_set": None if self.prediction_set is None else list(self.prediction_set),
                "abstain": self.abstain, "ood": self.ood, "ood_score": self.ood_score}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of N×K logits, computed in float64 after subtracting each row's max."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predictions_from_logits(logits: np.ndarray, class_names: Sequence[str],
                            conformal: ConformalRule | None = None, ood: OodRule | None = None,
                            ood_scores: np.ndarray | None = None) -> list[Prediction]:
    """One Prediction per row of N×K logits; ``conformal`` (the manifest's rule) adds the prediction sets,
    ``ood`` with the graph's ``ood_scores`` (N) the OOD flag."""
    probs = softmax(logits)
    best = probs.argmax(axis=1)
    sets: list[list[str] | None] = [None] * len(probs)
    if conformal is not None:
        sets = [[n for n, keep in zip(class_names, row, strict=True) if keep]
                for row in prediction_sets(probs, conformal).tolist()]
    scores: list[float | None] = [None] * len(probs)
    if ood is not None and ood_scores is not None:
        scores = np.asarray(ood_scores, dtype=np.float64).reshape(len(probs)).tolist()
    out = []
    for row, idx, members, score in zip(probs.tolist(), best.tolist(), sets, scores, strict=True):
        flag = None if score is None else bool(score > ood.threshold)
        out.append(Prediction(label=class_names[idx], index=idx, confidence=row[idx],
                              probabilities=dict(zip(class_names, row, strict=True)),
                              prediction_set=members,
                              abstain=(members is not None and len(members) > 1) or bool(flag),
                              ood=flag, ood_score=score))
    return out
