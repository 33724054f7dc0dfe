"""Split conformal prediction sets: the manifest's rule (``ConformalRule``) applied to probabilities.

The score says how unlike the true label a class looks; the build computes the threshold as the
conformal quantile of the true labels' scores on the validation split, on the artifact's own
outputs (``tlc.calibrate.conformal``), and this module is the one place that scores classes, both
there and here.

- LAC (least ambiguous set-valued classifier, Sadinle et al. 2019): score 1 − p_k. The smallest sets
  on average; coverage holds marginally, not per class.
- APS (adaptive prediction sets, Romano et al. 2020), not randomised: the probability mass of the
  classes ranked above k plus p_k. Deterministic, so every backend and ``tlc verify`` get the same
  set for the same probabilities; without the randomisation it over-covers, most of all with few
  classes (with two classes the second label's score is always 1).

The top class always belongs to the set, so a set is never empty (this only adds coverage).
"""

from __future__ import annotations

import numpy as np

from .manifest import ConformalRule

METHODS = ("lac", "aps")


def scores(probs: np.ndarray, method: str) -> np.ndarray:
    """N×K nonconformity scores: the score each class would have were it the true label."""
    probs = np.asarray(probs, dtype=np.float64)
    if method == "lac":
        return 1.0 - probs
    if method == "aps":
        order = np.argsort(-probs, axis=1, kind="stable")
        ranked = np.take_along_axis(probs, order, axis=1).cumsum(axis=1)
        out = np.empty_like(probs)
        np.put_along_axis(out, order, ranked, axis=1)
        return out
    raise ValueError(f"unknown conformal method {method!r}; valid: {', '.join(METHODS)}")


def true_label_scores(probs: np.ndarray, labels: np.ndarray, method: str) -> np.ndarray:
    """The score of each row's true label (what the threshold is the quantile of)."""
    return np.take_along_axis(scores(probs, method), np.asarray(labels)[:, None], axis=1)[:, 0]


def prediction_sets(probs: np.ndarray, rule: ConformalRule) -> np.ndarray:
    """N×K booleans: class k is in row n's set when its score is at most the threshold, or it is the top class."""
    member = scores(probs, rule.method) <= rule.threshold
    member[np.arange(len(member)), np.asarray(probs).argmax(axis=1)] = True
    return member
