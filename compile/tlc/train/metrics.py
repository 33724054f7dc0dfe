"""Classification metrics from logits and labels (numpy + scikit-learn), JSON-ready.

Undefined values are None, never NaN: AUC is None when a class is absent from the labels, a
class's recall is None when it has no images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..verify.compare import balanced_accuracy, per_class_recall, softmax


def auc(labels: np.ndarray, probs: np.ndarray) -> float | None:
    """ROC AUC: binary on the positive class; one-vs-rest macro for more classes."""
    num_classes = probs.shape[1]
    if len(labels) == 0 or len(np.unique(labels)) < num_classes:
        return None
    from sklearn.metrics import roc_auc_score

    if num_classes == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    return float(roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=np.arange(num_classes)))


def macro_f1(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, preds, labels=np.arange(num_classes), average="macro", zero_division=0))


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> list[list[int]]:
    """Rows: true class, columns: predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, preds), 1)
    return matrix.tolist()


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """accuracy, balanced_accuracy, macro_f1, auc, per_class_recall, confusion_matrix, n."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    num_classes = logits.shape[1]
    if len(labels) == 0:
        return {"n": 0}
    preds = logits.argmax(axis=1)
    bal = balanced_accuracy(labels, preds, num_classes)
    return {
        "n": int(len(labels)),
        "accuracy": float((preds == labels).mean()),
        "balanced_accuracy": None if np.isnan(bal) else bal,
        "macro_f1": macro_f1(labels, preds, num_classes),
        "auc": auc(labels, softmax(logits)),
        "per_class_recall": per_class_recall(labels, preds, num_classes),
        "confusion_matrix": confusion_matrix(labels, preds, num_classes),
    }
