"""Split conformal calibration at build time: the threshold of the bundle's prediction sets.

The scores are ``tlc_runtime.conformal``'s (the runtime applies the very same rule), computed on the
built artifact's own validation outputs, so an INT8 or FP16 artifact gets its own threshold and keeps
its coverage. The threshold is the ⌈(n+1)(1−α)⌉-th smallest true-label score (quantile level
⌈(n+1)(1−α)⌉/n), which guarantees coverage ≥ 1−α on exchangeable data.

The default method is LAC: it gives the smallest sets on average, and with two classes (the common
medical case: normal / pneumonia) it still separates the images that need a second opinion, while
non-randomised APS gives the second class a score of exactly 1 and so puts either every image or
none in a two-label set. APS (non-randomised, deterministic on every backend) is there for many
classes, where its sets adapt to how hard an image is.

MAPIE is not installed here and would bring scikit-learn estimator wrappers for a quantile; the
fit is a sort.
"""

from __future__ import annotations

import math

import numpy as np
from tlc_runtime.conformal import METHODS, true_label_scores
from tlc_runtime.manifest import ConformalRule

from ..errors import ConfigError

DEFAULT_METHOD = "lac"
DEFAULT_COVERAGE = 0.9
_EPS = 1e-9  # (n+1)·coverage computed in floats: 10 × 0.9 must stay 9, not become 10


def check_coverage(coverage: float, method: str = DEFAULT_METHOD) -> None:
    if not 0 < coverage < 1:
        raise ConfigError(f"coverage {coverage:g} must be within 0..1 (exclusive), e.g. 0.9")
    if method not in METHODS:
        raise ConfigError(f"conformal method {method!r} is not one of {', '.join(METHODS)}")


def min_calibration_size(coverage: float) -> int:
    """The fewest calibration images for which ⌈(n+1)·coverage⌉ ≤ n (a finite threshold)."""
    return max(1, math.ceil(coverage / (1 - coverage) - _EPS))


def require_size(n: int, coverage: float) -> None:
    """ConfigError when ``n`` calibration images cannot give a finite threshold at ``coverage``."""
    need = min_calibration_size(coverage)
    if n < need:
        raise ConfigError(f"{n} validation images cannot calibrate {coverage:.0%} prediction sets; "
                          f"it needs at least {need} (or a lower --coverage)")


def conformal_rule(probs: np.ndarray, labels: np.ndarray, method: str, coverage: float) -> ConformalRule:
    """The rule whose sets hold the true label with probability ≥ ``coverage``."""
    check_coverage(coverage, method)
    n = len(labels)
    require_size(n, coverage)
    k = math.ceil((n + 1) * coverage - _EPS)
    scores = np.sort(true_label_scores(probs, labels, method))
    return ConformalRule(method=method, coverage=float(coverage), threshold=float(scores[k - 1]),
                         n_calibration=int(n))
