"""The bundle's golden set: a few inputs and the reference PyTorch outputs, so a device with no
PyTorch can check that it reproduces the model (``python -m tlc_runtime check BUNDLE``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tlc_runtime.golden import OUTPUT_PREFIX

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


def write_golden(path: Path, inputs: np.ndarray, logits: np.ndarray, labels: np.ndarray,
                 extras: dict[str, np.ndarray] | None = None) -> None:
    """Store inputs (graph dtype), reference logits (float32), labels and the reference values of the
    other outputs (``out_<name>``, float32)."""
    arrays = {f"{OUTPUT_PREFIX}{name}": values.astype(np.float32) for name, values in (extras or {}).items()}
    with open(path, "wb") as fh:
        np.savez_compressed(fh, inputs=inputs, logits=logits.astype(np.float32), labels=labels, **arrays)


def output_tolerance(reference: np.ndarray, built: np.ndarray) -> float:
    """The golden tolerance of one extra output: twice the difference this build measured between the
    artifact and PyTorch, and at least 1% of the reference's range on the golden set (a device with
    other kernels must not fail on rounding that moves no decision by more than that)."""
    spread = float(np.ptp(reference)) if reference.size else 0.0
    return float(max(2 * float(np.abs(built - reference).max(initial=0.0)), 0.01 * (spread or 1.0)))
