"""Classification metrics agree with scikit-learn and handle absent classes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score, roc_auc_score
from tlc.train.metrics import classification_metrics


def _logits(rng: np.random.Generator, labels: np.ndarray, k: int, signal: float) -> np.ndarray:
    logits = rng.normal(size=(len(labels), k))
    logits[np.arange(len(labels)), labels] += signal
    return logits.astype(np.float32)


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    labels[:150] = 0  # imbalanced
    logits = _logits(rng, labels, 2, 1.0)
    preds = logits.argmax(1)
    m = classification_metrics(logits, labels)
    assert m["n"] == 200
    assert m["accuracy"] == pytest.approx((preds == labels).mean())
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, preds))
    assert m["macro_f1"] == pytest.approx(f1_score(labels, preds, average="macro"))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert m["auc"] == pytest.approx(roc_auc_score(labels, probs[:, 1]))
    assert m["confusion_matrix"] == confusion_matrix(labels, preds).tolist()
    recall = np.diag(confusion_matrix(labels, preds)) / np.bincount(labels)
    assert m["per_class_recall"] == pytest.approx(recall.tolist())


def test_multiclass_auc_is_one_vs_rest_macro():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 300)
    logits = _logits(rng, labels, 4, 1.5)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    m = classification_metrics(logits, labels)
    assert m["auc"] == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr", average="macro"))
    assert 0.5 < m["auc"] <= 1.0


def test_absent_class_gives_none_not_nan():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 50)  # class 2 never appears
    m = classification_metrics(_logits(rng, labels, 3, 2.0), labels)
    assert m["auc"] is None
    assert m["per_class_recall"][2] is None
    assert len(m["confusion_matrix"]) == 3 and sum(m["confusion_matrix"][2]) == 0
    assert classification_metrics(np.zeros((0, 3), np.float32), np.zeros(0, np.int64)) == {"n": 0}
