"""The OOD gate of an artifact on in-distribution data (``Manifest.ood``): the share of images it
accepts (score at or below the threshold; the rest are flagged OOD and abstain). Used by the build
report (test split) and ``tlc verify`` (the split it verifies)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from tlc_runtime.manifest import OodRule
from tlc_runtime.ood import ood_flags


def ood_metrics(outputs: Mapping[str, np.ndarray], rule: OodRule) -> dict[str, Any]:
    """Acceptance of the artifact's ``outputs`` (in-distribution images) under ``rule``, with the
    acceptance the threshold was set for and the median score."""
    n = len(np.asarray(outputs[rule.output]))
    scores, flagged = ood_flags(outputs, rule, n)
    return {"score": rule.score, "threshold": rule.threshold, "target_acceptance": rule.acceptance, "n": n,
            "accepted": float(1.0 - flagged.mean()) if n else None,
            "median_score": float(np.median(scores)) if n else None}


def ood_line(metrics: Mapping[str, Any]) -> str:
    """One line for ``tlc build`` and ``tlc verify`` from :func:`ood_metrics`."""
    accepted = metrics["accepted"]
    shown = "—" if accepted is None else f"{100 * accepted:.1f}%"
    return (f"OOD gate ({metrics['score']} score, threshold {metrics['threshold']:.4g}): accepts {shown} of "
            f"{metrics['n']} in-distribution images (set for {100 * metrics['target_acceptance']:.0f}% of validation)")
