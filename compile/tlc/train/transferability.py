"""LogME: how well a source model's frozen features explain the target's labels, before fine-tuning.

You, Liu, Wang and Long, "LogME: Practical Assessment of Pre-trained Models for Transfer Learning"
(ICML 2021). For each class k, the one-hot column y_k of the N labelled target images is modelled as a
Bayesian linear regression on their N×D features F: weights w ~ N(0, α⁻¹ I), y_k = F w + N(0, β⁻¹ I).
The evidence p(y_k | F, α, β) = N(y_k; 0, α⁻¹ F Fᵀ + β⁻¹ I) is maximised over α, β by MacKay's fixed-point
updates (the paper's Algorithm 1):

    γ = Σᵢ β σᵢ² / (α + β σᵢ²),  m = β (αI + βFᵀF)⁻¹ Fᵀ y,  α ← γ / mᵀm,  β ← (N − γ) / ‖F m − y‖²

with σᵢ the singular values of F, all in the SVD basis: one SVD of F, then each iteration costs
O(min(N, D)). The score
is the maximised log evidence divided by N, averaged over the classes: higher means a linear model on
these features explains the labels with less complexity, so the source's features suit the task. The
paper reports it ranks pre-trained models by fine-tuned accuracy better than LEEP, NCE and H-score.

Unlike ``source_distance`` it uses the target's labels and ignores the source's data, so it answers
"are these features useful for my labels", not "do my images look like the source's". The score depends
on the features' scale and width, as the paper's does (it compares raw features across architectures);
compare it between sources for one target, not between targets.

Written here rather than imported: the reference code (github.com/thuml/LogME) is not a package on PyPI,
and the algorithm is the twenty lines below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ITERATIONS = 100
TOLERANCE = 1e-5  # relative change of α and β between iterations


@dataclass(frozen=True)
class Evidence:
    """The maximised log evidence of one label column and the α, β that maximise it."""

    log_evidence: float
    alpha: float
    beta: float


def class_evidence(left: np.ndarray, singular: np.ndarray, y: np.ndarray) -> Evidence:
    """Maximise the evidence of ``y`` (N) for features F = left · diag(singular) · Vᵀ (the thin SVD without
    zero singular values: ``left`` N×R, ``singular`` R); module docstring. F's width does not enter."""
    n = len(y)
    proj = left.T @ y  # y in the left singular basis
    outside = max(float(y @ y - proj @ proj), 0.0)  # the part of y no weight vector can reach
    s2 = singular**2
    alpha, beta = 1.0, 1.0
    for _ in range(MAX_ITERATIONS):
        coef = beta * singular * proj / (alpha + beta * s2)  # m in the right singular basis
        gamma = float(np.sum(beta * s2 / (alpha + beta * s2)))
        m2 = float(coef @ coef)
        residual = float(np.sum((singular * coef - proj) ** 2)) + outside
        new_alpha = gamma / max(m2, 1e-300)
        new_beta = (n - gamma) / max(residual, 1e-300)
        done = abs(new_alpha - alpha) <= TOLERANCE * alpha and abs(new_beta - beta) <= TOLERANCE * beta
        alpha, beta = new_alpha, new_beta
        if done:
            break
    coef = beta * singular * proj / (alpha + beta * s2)
    m2 = float(coef @ coef)
    residual = float(np.sum((singular * coef - proj) ** 2)) + outside
    # D/2 ln α − ½ ln|αI + βFᵀF| = R/2 ln α − ½ Σᵢ ln(α + βσᵢ²): the D − R directions F never spans cancel
    # (and with no direction at all, R = 0, α drops out instead of giving 0·ln 0)
    alpha_terms = (len(singular) * np.log(alpha) if len(singular) else 0.0) - float(np.sum(np.log(alpha + beta * s2)))
    value = (n * np.log(beta) + alpha_terms - n * np.log(2 * np.pi) - beta * residual - alpha * m2) / 2
    return Evidence(float(value), alpha, beta)


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME score (module docstring) of N×D ``features`` for integer class ``labels`` (N)."""
    f = np.asarray(features, np.float64)
    labels = np.asarray(labels)
    if f.ndim != 2 or len(f) != len(labels) or len(f) < 2:
        raise ValueError(f"need N×D features and N labels with N ≥ 2, got {f.shape} and {labels.shape}")
    if not np.isfinite(f).all():
        raise ValueError("the features hold NaN or infinite values")
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError("LogME needs labels of at least two classes")
    left, singular, _ = np.linalg.svd(f, full_matrices=False)
    keep = singular > singular.max() * max(f.shape) * np.finfo(np.float64).eps
    left, singular = left[:, keep], singular[keep]
    evidences = [class_evidence(left, singular, (labels == k).astype(np.float64)).log_evidence
                 for k in classes]
    return float(np.mean(evidences) / len(f))
