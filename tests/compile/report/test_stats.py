"""The report's interval estimates."""

from __future__ import annotations

import numpy as np
import pytest
from tlc.report.stats import paired_deltas, roc_curves, wilson


@pytest.mark.parametrize("k, n, expected", [(0, 10, (0.0, 0.2775)), (5, 10, (0.2366, 0.7634)),
                                            (10, 10, (0.7225, 1.0))])
def test_wilson_matches_the_textbook_interval(k, n, expected):
    assert wilson(k, n) == pytest.approx(expected, abs=1e-4)


def test_wilson_of_no_images_is_none():
    assert wilson(0, 0) is None


def test_paired_deltas_of_identical_predictions_are_exactly_zero():
    rng = np.random.default_rng(0)
    labels, pred = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    for m in paired_deltas(labels, pred, pred, 3, rounds=200).values():
        assert m["delta"] == 0 and m["ci95"] == [0.0, 0.0]


def test_paired_deltas_see_a_better_model():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    worse = np.where(rng.random(400) < 0.3, 1 - labels, labels)
    better = np.where(rng.random(400) < 0.5, labels, worse)
    acc = paired_deltas(labels, worse, better, 2, rounds=300)["accuracy"]
    assert acc["delta"] == pytest.approx((better == labels).mean() - (worse == labels).mean())
    assert 0 < acc["ci95"][0] <= acc["delta"] <= acc["ci95"][1]


def test_roc_is_one_vs_rest_beyond_two_classes():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(3), 20)
    probs = rng.dirichlet(np.ones(3), 60)
    assert [c[0] for c in roc_curves(labels, probs, ("a", "b", "c"))] == ["a", "b", "c"]
    assert [c[0] for c in roc_curves(labels[:40] % 2, probs[:40, :2], ("x", "y"))] == ["y"]
