"""Interval estimates the report shows: Wilson intervals for per-class recall, paired bootstrap CIs for
metric changes between two models on the same images, and ROC curves (one-vs-rest beyond two classes)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..verify.bootstrap import bootstrap_draws
from ..verify.compare import balanced_accuracy

Z95 = 1.959963984540054  # two-sided 95 %


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (95 % by default); None when ``n`` is 0."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _metrics(labels: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    return np.array([(pred == labels).mean(), balanced_accuracy(labels, pred, num_classes)])


def paired_deltas(labels: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, num_classes: int,
                  rounds: int = 1000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Accuracy and balanced accuracy of A and B on the same images, and B − A with a paired bootstrap
    95 % percentile CI (images resampled with replacement, both models' predictions kept together)."""
    labels = np.asarray(labels).reshape(-1)
    a, b = _metrics(labels, pred_a, num_classes), _metrics(labels, pred_b, num_classes)
    deltas = bootstrap_draws(len(labels), lambda idx: (_metrics(labels[idx], pred_b[idx], num_classes)
                                                       - _metrics(labels[idx], pred_a[idx], num_classes)),
                             rounds, seed)
    lo, hi = np.nanpercentile(deltas, [2.5, 97.5], axis=0)
    return {name: {"a": float(a[i]), "b": float(b[i]), "delta": float(b[i] - a[i]),
                   "ci95": [float(lo[i]), float(hi[i])]}
            for i, name in enumerate(("accuracy", "balanced_accuracy"))}


def roc_curves(labels: np.ndarray, probs: np.ndarray,
               class_names: tuple[str, ...]) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    """(name, false positive rates, true positive rates, AUC) per curve: the positive (second) class for
    two classes, one-vs-rest per class for more; classes without both outcomes in ``labels`` are left out."""
    from sklearn.metrics import roc_auc_score, roc_curve

    labels = np.asarray(labels).reshape(-1)
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    curves = []
    for c in classes:
        positive = labels == c
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, probs[:, c])
        curves.append((class_names[c], fpr, tpr, float(roc_auc_score(positive, probs[:, c]))))
    return curves
