"""Acquisition rules on numbers already computed (numpy only): uncertainty scores and k-center greedy.

- entropy: −Σ p log p of the predicted probabilities (natural log).
- margin: 1 − (p1 − p2), the two largest probabilities.
- mc-dropout: the mutual information of K dropout passes (computed in ``scoring``), ranked as is.
- coreset: k-center greedy (Sener & Savarese, 2018) on pooled features: each pick is the pool image
  farthest from its nearest centre (the labelled images', when given, and the picks so far).
- hybrid: the 5·N most uncertain by entropy, then N of them by k-center greedy: uncertain images
  that are not near-copies of each other (nor of the labelled ones).
"""

from __future__ import annotations

import numpy as np

HYBRID_FACTOR = 5


def entropy(probs: np.ndarray) -> np.ndarray:
    """Predictive entropy of each row of N×C probabilities (0·log 0 counted as 0)."""
    p = np.clip(probs.astype(np.float64), 0.0, 1.0)
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1)


def margin(probs: np.ndarray) -> np.ndarray:
    """1 − (p1 − p2) per row: 1 for a tie between the two likeliest classes, 0 for certainty."""
    top = np.sort(probs.astype(np.float64), axis=1)[:, ::-1]
    second = top[:, 1] if top.shape[1] > 1 else np.zeros(len(top))
    return 1.0 - (top[:, 0] - second)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, largest first (ties: the lower index first)."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    return order[:k]


def k_center_greedy(features: np.ndarray, k: int, centres: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(indices of ``k`` rows of ``features`` picked greedily, each pick's distance to its nearest centre
    when picked). Without ``centres`` the first pick is the row farthest from the features' mean."""
    x = features.astype(np.float64)
    if centres is not None and len(centres):
        nearest = _min_distances(x, centres.astype(np.float64))
    else:
        nearest = np.linalg.norm(x - x.mean(axis=0), axis=1)
    picks, distances = [], []
    for _ in range(min(k, len(x))):
        i = int(np.argmax(nearest))
        picks.append(i)
        distances.append(float(nearest[i]))
        nearest = np.minimum(nearest, np.linalg.norm(x - x[i], axis=1))
        nearest[i] = -1.0  # never picked twice, even when every remaining row is a copy
    return np.asarray(picks, dtype=np.int64), np.asarray(distances)


def _min_distances(x: np.ndarray, centres: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Each row's Euclidean distance to its nearest centre (centres in chunks to bound memory)."""
    best = np.full(len(x), np.inf)
    sq = (x * x).sum(axis=1)
    for start in range(0, len(centres), chunk):
        c = centres[start:start + chunk]
        d2 = sq[:, None] - 2.0 * x @ c.T + (c * c).sum(axis=1)[None, :]
        best = np.minimum(best, np.sqrt(np.clip(d2, 0.0, None)).min(axis=1))
    return best


def hybrid(probs: np.ndarray, features: np.ndarray, k: int,
           centres: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(k indices, their entropies): k-center greedy among the ``HYBRID_FACTOR``·k highest entropies."""
    scores = entropy(probs)
    shortlist = top_k(scores, HYBRID_FACTOR * k)
    picks, _ = k_center_greedy(features[shortlist], k, centres)
    chosen = shortlist[picks]
    return chosen, scores[chosen]
