"""The one resampling loop behind every bootstrap CI in tlc (verify's drop CI, the report's paired
deltas, compare's score CIs): images drawn with replacement, a seeded generator, a statistic per draw."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap_draws(n: int, statistic: Callable[[np.ndarray], np.ndarray | float], rounds: int,
                    seed: int) -> np.ndarray:
    """``statistic(idx)`` for ``rounds`` index arrays of ``n`` items drawn with replacement, stacked
    (rounds, …). The same ``seed`` gives the same draws, so paired statistics resample images together."""
    if n < 1 or rounds < 1:
        raise ValueError(f"a bootstrap needs at least one item and one round, got n={n}, rounds={rounds}")
    rng = np.random.default_rng(seed)
    return np.array([statistic(rng.integers(0, n, n)) for _ in range(rounds)], dtype=np.float64)
