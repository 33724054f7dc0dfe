"""What a report is computed from: one evaluation set with the reference's and the artifact's logits
(the test split at build time, or the bundle's golden set afterwards), and the artifact's latency."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tlc_runtime.integrity import read_verified
from tlc_runtime.manifest import Manifest

from ..bench.latency import Latency

LATENCY_BATCHES = (1, 8)
LATENCY_RUNS = 30


@dataclass(frozen=True)
class Evidence:
    """``inputs`` (N×H×W×C graph dtype), ``labels`` (N, or None), the reference (PyTorch) and artifact
    logits (N×K) on them, and where they came from (shown in the report)."""

    source: str
    inputs: np.ndarray
    labels: np.ndarray | None
    reference: np.ndarray
    artifact: np.ndarray

    @property
    def flipped(self) -> np.ndarray:
        """Indices where the artifact's top-1 class differs from the reference's."""
        return np.flatnonzero(self.reference.argmax(1) != self.artifact.argmax(1))


def golden_arrays(bundle_dir: str | Path, manifest: Manifest) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The golden set's hash-checked inputs, reference logits and labels (None when it has none)."""
    from tlc_runtime.golden import read_golden

    inputs, logits = read_golden(bundle_dir, manifest)
    with np.load(io.BytesIO(read_verified(bundle_dir, manifest.golden.file)), allow_pickle=False) as data:
        labels = data["labels"].astype(np.int64).reshape(-1) if "labels" in data.files else None
    return inputs, logits, labels if labels is not None and len(labels) == len(inputs) else None


def run_batches(infer: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, batch: int = 64) -> np.ndarray:
    return np.concatenate([infer(inputs[i:i + batch]) for i in range(0, len(inputs), batch)])


def measure_latency(infer: Callable[[np.ndarray], Any], inputs: np.ndarray,
                    batch_sizes: tuple[int, ...] = LATENCY_BATCHES, runs: int = LATENCY_RUNS,
                    warmup: int = 3) -> dict[str, dict[str, float]]:
    """Latency of ``infer`` (the artifact through tlc_runtime) per batch size on real inputs: a few
    dozen timed calls after a warm-up; ``{batch: Latency fields}``."""
    out = {}
    for b in batch_sizes:
        batch = inputs[np.arange(b) % len(inputs)]
        for _ in range(warmup):
            infer(batch)
        seconds = []
        for _ in range(runs):
            t0 = time.perf_counter()
            infer(batch)
            seconds.append(time.perf_counter() - t0)
        out[str(b)] = asdict(Latency.of(seconds))
    return out
