"""The OOD gate's build-time fit: Gaussian on training features, score weights, 95 % threshold."""

from __future__ import annotations

import numpy as np
import pytest
from tlc.bundler.ood import OodOptions, fit_gaussian, ood_threshold, score_weights
from tlc.errors import ConfigError


def _features(n: int = 400, dim: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    scale = np.array([1.0, 10.0, 0.1, 3.0, 1.0, 50.0])[:dim]
    x = rng.normal(size=(n, dim)) * scale + labels[:, None] * scale
    return x, labels


def test_gaussian_fit_gives_class_means_and_a_shrunk_inverse_covariance():
    x, labels = _features()
    fit = fit_gaussian(x, labels, 3)
    means = np.stack([x[labels == k].mean(axis=0) for k in range(3)])
    np.testing.assert_allclose(fit.means, means)
    centred = x - means[labels]
    cov = np.linalg.inv(fit.precision)
    # standardised shrinkage keeps each dimension's own scale: the diagonal stays the sample variances
    np.testing.assert_allclose(np.diag(cov), centred.var(axis=0), rtol=1e-6)
    assert 0 <= fit.shrinkage <= 1 and fit.n_images == len(x)
    np.testing.assert_allclose(fit.precision, fit.precision.T)


def test_far_features_score_higher_than_training_ones():
    x, labels = _features()
    fit = fit_gaussian(x, labels, 3)
    maha = lambda f: min((f - m) @ fit.precision @ (f - m) for m in fit.means)  # noqa: E731
    inside = np.median([maha(f) for f in x])
    assert maha(x.mean(axis=0) + 8 * x.std(axis=0)) > 10 * inside


def test_fit_needs_every_class():
    x, labels = _features()
    with pytest.raises(ConfigError, match="class index"):
        fit_gaussian(x[labels < 2], labels[labels < 2], 3)


def test_threshold_accepts_the_requested_fraction_of_in_distribution_scores():
    rng = np.random.default_rng(1)
    val, test = rng.normal(size=999), rng.normal(size=20000)
    thr = ood_threshold(val, 0.95)
    assert (val <= thr).mean() >= 0.95
    assert abs((test <= thr).mean() - 0.95) < 0.02


def test_threshold_refuses_too_few_images_and_bad_options():
    with pytest.raises(ConfigError, match="at least 19"):
        ood_threshold(np.arange(10.0), 0.95)
    with pytest.raises(ConfigError, match="acceptance"):
        OodOptions(acceptance=1.0)
    with pytest.raises(ConfigError, match="not one of"):
        OodOptions(score="softmax")


def test_combined_weights_put_both_scores_on_one_scale():
    rng = np.random.default_rng(2)
    energy, maha = rng.normal(size=100) * 0.1, rng.normal(size=100) * 500
    w = score_weights("combined", energy, maha)
    assert np.std(w[0] * energy) == pytest.approx(1) and np.std(w[1] * maha) == pytest.approx(1)
    assert score_weights("energy", energy, maha) == (1.0, 0.0)
    assert score_weights("mahalanobis", energy, maha) == (0.0, 1.0)


def test_a_score_constant_up_to_rounding_gets_no_weight():
    """An energy that is 0 ± float rounding (an MC-dropout model's log-mean-probability logits) divided
    by its spread would make rounding noise the gate's decision: it gets weight 0 instead."""
    rng = np.random.default_rng(3)
    rounding = rng.normal(size=200) * 1e-8
    maha = rng.normal(size=200) * 300 + 900
    w_energy, w_maha = score_weights("combined", rounding, maha)
    assert w_energy == 0.0 and np.std(w_maha * maha) == pytest.approx(1)


def test_an_artifact_whose_scores_do_not_follow_pytorch_ships_without_the_gate():
    """Scores that rank validation images unlike PyTorch's (what NNCF INT8 did to the score path)
    give no gate and say why; scores that follow them (rank-preserving noise) keep it."""
    from tlc.bundler.ood import GaussianFit, OodOptions, rule_and_report

    rng = np.random.default_rng(4)
    reference = rng.normal(size=300)
    fit = GaussianFit(means=np.zeros((2, 3)), precision=np.eye(3), shrinkage=0.1, n_images=500)
    said = []
    scrambled = {"ood_score": rng.permutation(reference)}
    rule, report = rule_and_report(fit, OodOptions(), scrambled, scrambled, said.append, reference)
    assert rule is None and "skipped" in report["ood"] and report["ood"]["rank_correlation"] < 0.9
    assert any("do not follow PyTorch's" in line for line in said)
    close = {"ood_score": reference + rng.normal(size=300) * 0.01}
    rule, report = rule_and_report(fit, OodOptions(), close, close, said.append, reference)
    assert rule is not None and report["ood"]["rank_correlation"] > 0.99
