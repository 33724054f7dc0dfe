"""The bundle's golden set: a few inputs and the reference PyTorch outputs, so a device with no
PyTorch can check that it reproduces the model (``python -m tlc_runtime check BUNDLE``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

GOLDEN_FILE = "golden.npz"


def pick_golden(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Stratified, seeded indices: classes take turns so every class is represented."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)).tolist() for c in np.unique(labels)]
    picked: list[int] = []
    while len(picked) < min(count, len(labels)):
        for pool in per_class:
            if pool and len(picked) < count:
                picked.append(pool.pop())
    return np.array(sorted(picked), dtype=np.int64)


def write_golden(path: Path, inputs: np.ndarray, logits: np.ndarray, labels: np.ndarray) -> None:
    """Store inputs (graph dtype), reference logits (float32) and labels."""
    with open(path, "wb") as fh:
        np.savez_compressed(fh, inputs=inputs, logits=logits.astype(np.float32), labels=labels)
