"""Numerical comparison of a candidate model's outputs with the reference model's.

Knows nothing about backends: it takes logits (N×K) and labels and returns statistics.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

import numpy as np

from .bootstrap import bootstrap_draws


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def balanced_accuracy(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> float:
    """Mean per-class recall over the classes present in ``labels``."""
    recalls = per_class_recall(labels, preds, num_classes)
    present = [r for r in recalls if r is not None]
    return float(np.mean(present)) if present else float("nan")


def per_class_recall(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> list[float | None]:
    out: list[float | None] = []
    for c in range(num_classes):
        mask = labels == c
        out.append(float((preds[mask] == c).mean()) if mask.any() else None)
    return out


@dataclass(frozen=True)
class Comparison:
    """Candidate vs reference on the same inputs (and labels, when given).

    ``parts``: the comparisons of a multi-output model's parts judged on their own beside its main
    output, by scope ("task view", "member 1 (run id, arch)"); see ``tlc.verify.parts``.
    """

    n: int
    agreement: float
    flip_rate: float
    max_abs_prob_delta: float
    mean_abs_prob_delta: float
    max_abs_logit_delta: float
    accuracy_reference: float | None = None
    accuracy_candidate: float | None = None
    balanced_accuracy_reference: float | None = None
    balanced_accuracy_candidate: float | None = None
    balanced_accuracy_drop: float | None = None
    balanced_accuracy_drop_ci95: tuple[float, float] | None = None
    recall_reference: tuple[float | None, ...] | None = None
    recall_candidate: tuple[float | None, ...] | None = None
    class_counts: tuple[int, ...] | None = None      # images per class
    harmful_flips: tuple[int, ...] | None = None     # per class: reference right, candidate wrong
    helpful_flips: tuple[int, ...] | None = None     # per class: reference wrong, candidate right
    parts: dict[str, Comparison] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def compare_logits(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None = None,
                   num_classes: int | None = None, bootstrap: int = 1000, seed: int = 0) -> Comparison:
    """Agreement, |Δprob| and (with labels) accuracy changes with a bootstrap 95% CI of the drop."""
    if reference.shape != candidate.shape or reference.ndim != 2 or len(reference) == 0:
        raise ValueError(f"cannot compare outputs of shapes {reference.shape} and {candidate.shape}")
    num_classes = num_classes or reference.shape[1]
    p_ref, p_cand = softmax(reference), softmax(candidate)
    y_ref, y_cand = p_ref.argmax(1), p_cand.argmax(1)
    delta = np.abs(p_ref - p_cand)
    agreement = float((y_ref == y_cand).mean())
    stats = dict(n=len(reference), agreement=agreement, flip_rate=1.0 - agreement,
                 max_abs_prob_delta=float(delta.max()), mean_abs_prob_delta=float(delta.mean()),
                 max_abs_logit_delta=float(np.abs(reference.astype(np.float64) - candidate).max()))
    if labels is None:
        return Comparison(**stats)
    labels = np.asarray(labels).reshape(-1)
    bal_ref = balanced_accuracy(labels, y_ref, num_classes)
    bal_cand = balanced_accuracy(labels, y_cand, num_classes)
    right_ref, right_cand = y_ref == labels, y_cand == labels
    per_class = functools.partial(np.bincount, labels, minlength=num_classes)
    return Comparison(
        **stats,
        accuracy_reference=float((y_ref == labels).mean()),
        accuracy_candidate=float((y_cand == labels).mean()),
        balanced_accuracy_reference=bal_ref,
        balanced_accuracy_candidate=bal_cand,
        balanced_accuracy_drop=bal_ref - bal_cand,
        balanced_accuracy_drop_ci95=(_bootstrap_drop_ci(labels, y_ref, y_cand, num_classes, bootstrap, seed)
                                     if bootstrap > 0 else None),
        recall_reference=tuple(per_class_recall(labels, y_ref, num_classes)),
        recall_candidate=tuple(per_class_recall(labels, y_cand, num_classes)),
        class_counts=tuple(int(c) for c in per_class()),
        harmful_flips=tuple(int(c) for c in per_class(weights=right_ref & ~right_cand)),
        helpful_flips=tuple(int(c) for c in per_class(weights=~right_ref & right_cand)),
    )


def _bootstrap_drop_ci(labels: np.ndarray, y_ref: np.ndarray, y_cand: np.ndarray, num_classes: int,
                       rounds: int, seed: int) -> tuple[float, float]:
    """95% percentile CI of the balanced-accuracy drop, resampling images with replacement."""
    def drop(idx: np.ndarray) -> float:
        return (balanced_accuracy(labels[idx], y_ref[idx], num_classes)
                - balanced_accuracy(labels[idx], y_cand[idx], num_classes))

    drops = bootstrap_draws(len(labels), drop, rounds, seed)
    lo, hi = np.nanpercentile(drops, [2.5, 97.5])
    return float(lo), float(hi)
