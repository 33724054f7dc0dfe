"""What a prediction returns, and the numerically stable softmax that produces it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Prediction:
    """One image's result: the winning class, its probability, and every class's probability.

    ``probabilities`` maps class name to probability, in the order of the model's class names.
    """

    label: str
    index: int
    confidence: float
    probabilities: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return {"label": self.label, "index": self.index, "confidence": self.confidence,
                "probabilities": dict(self.probabilities)}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of N×K logits, computed in float64 after subtracting each row's max."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predictions_from_logits(logits: np.ndarray, class_names: Sequence[str]) -> list[Prediction]:
    """One Prediction per row of N×K logits."""
    probs = softmax(logits)
    best = probs.argmax(axis=1)
    out = []
    for row, idx in zip(probs.tolist(), best.tolist(), strict=True):
        out.append(Prediction(label=class_names[idx], index=idx, confidence=row[idx],
                              probabilities=dict(zip(class_names, row, strict=True))))
    return out
