"""How far a model's probabilities can be trusted, measured on labelled data: calibration (ECE, NLL)
and the conformal prediction sets (empirical coverage, mean set size). Used by ``tlc build`` (its
report) and ``tlc verify`` on the bundle's own artifact.

Computed here with numpy (ECE with 15 equal-width bins on the top probability, as in Guo et al. 2017);
netcal would give the same numbers for one more dependency.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tlc_runtime.conformal import prediction_sets
from tlc_runtime.manifest import Calibration, ConformalRule
from tlc_runtime.results import softmax

ECE_BINS = 15


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS):
    """Per equal-width bin (i/B, (i+1)/B] of the top probability: (count, mean confidence, accuracy)."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    which = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    safe = np.maximum(count, 1)
    return (count, np.bincount(which, conf, bins) / safe,
            np.bincount(which, correct.astype(np.float64), bins) / safe)


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: Σ_b |B_b|/n · |accuracy(B_b) − confidence(B_b)|."""
    count, conf, acc = reliability_bins(np.asarray(probs, np.float64), np.asarray(labels), bins)
    return float(np.sum(count * np.abs(acc - conf)) / max(len(labels), 1))


def nll(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels under softmax(logits)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(z)), labels]))


def set_metrics(probs: np.ndarray, labels: np.ndarray, rule: ConformalRule) -> dict[str, Any]:
    """Empirical coverage, mean set size and abstention rate of ``rule``'s sets on labelled data."""
    member = prediction_sets(probs, rule)
    sizes = member.sum(axis=1)
    return {"method": rule.method, "coverage": rule.coverage, "threshold": rule.threshold,
            "n": int(len(labels)), "empirical_coverage": float(member[np.arange(len(labels)), labels].mean()),
            "mean_set_size": float(sizes.mean()), "abstain_rate": float((sizes > 1).mean())}


def trust_metrics(logits: np.ndarray, labels: np.ndarray, calibration: Calibration | None,
                  rule: ConformalRule | None) -> dict[str, Any]:
    """What ``tlc verify`` and the build report say about an artifact's (calibrated) logits:
    ECE before (the temperature undone) and after calibration, and the sets' coverage."""
    temperature = calibration.temperature if calibration else None
    probs = softmax(logits)
    before = softmax(np.asarray(logits, np.float64) * temperature) if temperature else probs
    return {"calibration": {"temperature": temperature, "n": int(len(labels)), "ece_before": ece(before, labels),
                            "ece_after": ece(probs, labels)},
            "conformal": set_metrics(probs, labels, rule) if rule else None}
