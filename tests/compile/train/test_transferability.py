"""LogME: the evidence it maximises is the Gaussian marginal likelihood, and features that carry the labels
score higher than features that do not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from tlc.train.transferability import class_evidence, logme


def _marginal(features: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    cov = features @ features.T / alpha + np.eye(len(y)) / beta
    return float(multivariate_normal(np.zeros(len(y)), cov).logpdf(y))


@pytest.mark.parametrize(("n", "d"), [(40, 8), (12, 30)])  # more images than features, and fewer
def test_the_evidence_is_the_marginal_likelihood_at_its_maximum(n, d):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(n, d))
    y = (features @ rng.normal(size=d) + rng.normal(size=n) > 0).astype(np.float64)
    left, singular, _ = np.linalg.svd(features, full_matrices=False)
    found = class_evidence(left, singular, y)
    assert found.log_evidence == pytest.approx(_marginal(features, y, found.alpha, found.beta), rel=1e-6)
    for scale_a, scale_b in [(2.0, 1.0), (0.5, 1.0), (1.0, 2.0), (1.0, 0.5)]:
        assert found.log_evidence > _marginal(features, y, found.alpha * scale_a, found.beta * scale_b)


def test_features_that_carry_the_labels_score_higher_than_noise():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 150)
    noise = rng.normal(size=(150, 32))
    signal = noise.copy()
    signal[:, :3] += 3 * np.eye(3)[labels]
    weaker = noise.copy()
    weaker[:, :3] += 1 * np.eye(3)[labels]
    assert logme(signal, labels) > logme(weaker, labels) > logme(noise, labels)


def test_rank_deficient_features_match_their_full_rank_columns():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 60)
    base = rng.normal(size=(60, 5)) + labels[:, None]
    padded = np.concatenate([base, np.zeros((60, 3))], axis=1)  # three dead features (ReLU units never on)
    # a dead column adds nothing to the fit; only the prior's width term D/2 ln α − ½ ln|A| sees D, and it cancels
    assert logme(padded, labels) == pytest.approx(logme(base, labels), rel=1e-9)


def test_features_that_are_all_zero_give_the_noise_only_evidence():
    labels = np.array([0, 1, 1, 0, 1, 1])
    score = logme(np.zeros((6, 4)), labels)
    expected = []
    for k in (0, 1):  # no weight can explain y: y ~ N(0, β⁻¹ I) with β = N / ‖y‖²
        y = (labels == k).astype(float)
        expected.append(_marginal(np.zeros((6, 1)), y, alpha=1.0, beta=len(y) / (y @ y)))
    assert np.isfinite(score) and score == pytest.approx(np.mean(expected) / 6, rel=1e-9)


@pytest.mark.parametrize(("features", "labels", "words"), [
    (np.ones((5, 3)), np.zeros(5), "at least two classes"),
    (np.ones((5, 3)), np.zeros(4), "N labels"),
    (np.full((4, 3), np.nan), np.array([0, 1, 0, 1]), "NaN"),
])
def test_bad_inputs_are_refused(features, labels, words):
    with pytest.raises(ValueError, match=words):
        logme(features, labels)
