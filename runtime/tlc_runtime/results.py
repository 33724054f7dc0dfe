"""What a prediction returns, and the numerically stable softmax that produces it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
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
    bundle's threshold, or the image is OOD (refer the image to a human). ``tasks``: a multi-task
    bundle's result per task name (the primary task first: this prediction itself, without
    ``tasks``), each a Prediction of that task's classes; None for a single-task bundle.
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
    tasks: dict[str, Prediction] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy (``tasks`` only for a multi-task bundle)."""
        out = {"label": self.label, "index": self.index, "confidence": self.confidence,
               "probabilities": dict(self.probabilities),
               "prediction_set": None if self.prediction_set is None else list(self.prediction_set),
               "abstain": self.abstain,
               "uncertainty": None if self.uncertainty is None else dict(self.uncertainty),
               "ood": self.ood, "ood_score": self.ood_score}
        if self.tasks is not None:
            out["tasks"] = {name: task.to_dict() for name, task in self.tasks.items()}
        return out


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
    and score, abstain when OOD; ``tasks``: each task's own prediction)."""
    predictions = predictions_from_logits(outputs[LOGITS], manifest.class_names, manifest.conformal)
    predictions = with_uncertainty(predictions, outputs, manifest.uncertainty)
    predictions = with_ood(predictions, outputs, manifest.ood)
    if manifest.tasks is None:
        return predictions
    primary, *others = manifest.tasks
    per_task = [predictions_from_logits(outputs[task.output], task.class_names) for task in others]
    return [replace(pred, tasks={primary.name: pred, **{task.name: rows[i]
                                                        for task, rows in zip(others, per_task, strict=True)}})
            for i, pred in enumerate(predictions)]


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
