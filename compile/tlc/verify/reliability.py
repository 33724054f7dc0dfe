"""The reliability diagram: accuracy against confidence per bin, before and after temperature scaling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tlc_runtime.results import softmax

from .trust import ECE_BINS, ece, reliability_bins


def plot_reliability(path: str | Path, logits: np.ndarray, labels: np.ndarray, temperature: float | None,
                     title: str) -> None:
    """PNG of ``softmax(logits)`` (calibrated) and, given ``temperature``, ``softmax(logits · T)`` (before)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [("after" if temperature else "model", softmax(logits))]
    if temperature:
        curves.insert(0, (f"before (T = {temperature:.3g} undone)", softmax(np.asarray(logits, np.float64) * temperature)))
    centres = (np.arange(ECE_BINS) + 0.5) / ECE_BINS
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    for i, (name, probs) in enumerate(curves):
        count, _conf, acc = reliability_bins(probs, labels)
        shown = count > 0
        width = 1 / ECE_BINS / len(curves)
        ax.bar(centres[shown] + (i - (len(curves) - 1) / 2) * width, acc[shown], width,
               label=f"{name}: ECE {100 * ece(probs, labels):.2f}%", alpha=0.8)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top probability)", ylabel="accuracy",
           title=f"{title} ({len(labels)} images, {ECE_BINS} bins)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
