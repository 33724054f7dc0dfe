"""Test-split scores of one candidate with bootstrap 95 % CIs: macro precision, recall and F1, balanced
accuracy, and AUC (binary on the positive class, one-vs-rest macro beyond two classes)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..train.metrics import auc
from ..verify.bootstrap import bootstrap_draws
from ..verify.compare import balanced_accuracy

METRICS = ("precision", "recall", "f1", "balanced_accuracy", "auc")
ROUNDS = 1000


def _macro_prf(labels: np.ndarray, preds: np.ndarray, k: int) -> tuple[float, float, float]:
    """Macro precision, recall and F1 over all ``k`` classes (an undefined class ratio counts as 0)."""
    matrix = np.bincount(labels * k + preds, minlength=k * k).reshape(k, k)
    hits = np.diag(matrix).astype(np.float64)
    predicted, actual = matrix.sum(0), matrix.sum(1)
    precision = np.divide(hits, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros(k), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros(k), where=total > 0)
    return float(precision.mean()), float(recall.mean()), float(f1.mean())


def point_scores(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """The METRICS of one set of predictions, in order (NaN where undefined, e.g. AUC without a class)."""
    k = probs.shape[1]
    preds = probs.argmax(axis=1)
    area = auc(labels, probs)
    return np.array([*_macro_prf(labels, preds, k), balanced_accuracy(labels, preds, k),
                     np.nan if area is None else area])


def scores_with_ci(labels: np.ndarray, probs: np.ndarray, rounds: int = ROUNDS, seed: int = 0,
                   score: Callable[[np.ndarray, np.ndarray], np.ndarray] = point_scores) -> dict[str, dict]:
    """``{metric: {"value", "ci95": [lo, hi]}}``: percentile bootstrap over test images resampled with
    replacement (``rounds`` times); a metric undefined on the whole set is None with no interval."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    point = score(labels, probs)
    draws = bootstrap_draws(len(labels), lambda idx: score(labels[idx], probs[idx]), rounds, seed)
    out = {}
    for j, name in enumerate(METRICS):
        column = draws[:, j][~np.isnan(draws[:, j])]
        if np.isnan(point[j]) or len(column) == 0:
            out[name] = {"value": None, "ci95": None}
            continue
        lo, hi = np.percentile(column, [2.5, 97.5])
        out[name] = {"value": float(point[j]), "ci95": [float(lo), float(hi)]}
    return out
