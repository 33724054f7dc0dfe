"""The shared bootstrap loop: seeded, draws with replacement, one statistic value per round."""

from __future__ import annotations

import numpy as np
import pytest
from tlc.verify.bootstrap import bootstrap_draws


def test_draws_are_seeded_and_resample_with_replacement():
    seen = []

    def statistic(idx):
        seen.append(idx)
        return [len(np.unique(idx)), idx.max()]

    first = bootstrap_draws(50, statistic, rounds=200, seed=3)
    assert first.shape == (200, 2)
    assert np.array_equal(first, bootstrap_draws(50, statistic, rounds=200, seed=3))
    assert not np.array_equal(first, bootstrap_draws(50, statistic, rounds=200, seed=4))
    assert all(len(idx) == 50 and idx.min() >= 0 and idx.max() < 50 for idx in seen)
    # with replacement: about 1 − 1/e of the items appear in a draw (31.6 expected of 50)
    assert 25 < first[:, 0].mean() < 38 and first[:, 0].max() < 50


def test_the_mean_of_a_sample_has_the_textbook_standard_error():
    values = np.random.default_rng(0).normal(size=400)
    means = bootstrap_draws(len(values), lambda idx: values[idx].mean(), rounds=2000, seed=0)
    assert means.std() == pytest.approx(values.std() / np.sqrt(len(values)), rel=0.1)


def test_an_empty_sample_is_refused():
    with pytest.raises(ValueError, match="at least one item"):
        bootstrap_draws(0, lambda idx: 0.0, rounds=10, seed=0)
