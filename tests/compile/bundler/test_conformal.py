"""Split conformal thresholds: the finite-sample quantile, and coverage on fresh data from the same source."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tlc.bundler.conformal import conformal_rule, min_calibration_size
from tlc.errors import ConfigError
from tlc.verify.trust import set_metrics
from tlc_runtime.conformal import prediction_sets, true_label_scores
from tlc_runtime.results import softmax


def _draw(n: int, rng, classes: int = 5):
    """A noisy classifier's probabilities and labels drawn from a fixed distribution."""
    labels = rng.integers(0, classes, n)
    logits = rng.normal(0.0, 1.0, (n, classes))
    logits[np.arange(n), labels] += 1.5
    return softmax(logits), labels


def test_the_threshold_is_the_finite_sample_quantile_of_the_true_label_scores():
    probs, labels = _draw(200, np.random.default_rng(0))
    rule = conformal_rule(probs, labels, "lac", 0.9)
    k = math.ceil((200 + 1) * 0.9)  # the k-th smallest score: level ceil((n+1)(1-α))/n
    assert rule.threshold == pytest.approx(np.sort(true_label_scores(probs, labels, "lac"))[k - 1])
    assert (rule.method, rule.coverage, rule.n_calibration) == ("lac", 0.9, 200)


@pytest.mark.parametrize("method", ["lac", "aps"])
@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_held_out_coverage_reaches_the_target(method, coverage):
    rng = np.random.default_rng(7)
    n_cal, n_test = 4_000, 40_000
    rule = conformal_rule(*_draw(n_cal, rng), method, coverage)
    probs, labels = _draw(n_test, rng)
    got = set_metrics(probs, labels, rule)
    alpha = 1 - coverage
    # coverage given the calibration draw is Beta-distributed around ≥ 1 − α (sd √(α(1−α)/n_cal));
    # the test estimate adds a binomial sd √(α(1−α)/n_test): 4 combined sds cannot be missed by chance
    margin = 4 * math.sqrt(alpha * (1 - alpha) * (1 / n_cal + 1 / n_test))
    assert got["empirical_coverage"] >= coverage - margin
    assert 1 <= got["mean_set_size"] < 5  # informative, not every class
    if method == "lac":  # continuous scores: no more than 1 − α + 1/(n+1) either
        assert got["empirical_coverage"] <= coverage + 1 / (n_cal + 1) + margin
    member = prediction_sets(probs, rule)
    assert member[np.arange(n_test), probs.argmax(axis=1)].all()


def test_too_few_calibration_images_for_the_coverage_are_refused():
    assert min_calibration_size(0.9) == 9  # ceil((n+1)·0.9) ≤ n from n = 9
    probs, labels = _draw(8, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="at least 9"):
        conformal_rule(probs, labels, "lac", 0.9)


@pytest.mark.parametrize("coverage", [0.0, 1.0, 1.5])
def test_a_coverage_outside_0_1_is_refused(coverage):
    probs, labels = _draw(50, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="coverage"):
        conformal_rule(probs, labels, "lac", coverage)
