"""MC-dropout uncertainty of an artifact on labelled data (``Manifest.uncertainty``): the mean of each
part, the share of images above the epistemic threshold (those ``abstain`` refers to a human) and the
accuracy of the images kept and of those referred. Used by the build report and ``tlc verify``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from tlc_runtime.manifest import UncertaintyRule


def uncertainty_metrics(outputs: Mapping[str, np.ndarray], rule: UncertaintyRule,
                        labels: np.ndarray | None = None) -> dict[str, Any]:
    """Summary of an artifact's ``total``/``aleatoric``/``epistemic`` outputs under ``rule``; with
    ``labels``, the accuracy (argmax of ``logits``) below and above the threshold (None when empty)."""
    epistemic = np.asarray(outputs["epistemic"], dtype=np.float64)
    above = epistemic > rule.epistemic_threshold
    out: dict[str, Any] = {
        "samples": rule.samples, "epistemic_threshold": rule.epistemic_threshold, "n": int(len(epistemic)),
        "mean_epistemic": float(epistemic.mean()),
        "mean_aleatoric": float(np.mean(outputs["aleatoric"])), "mean_total": float(np.mean(outputs["total"])),
        "above_threshold": float(above.mean())}
    if labels is not None:
        correct = np.asarray(outputs["logits"]).argmax(axis=1) == np.asarray(labels)
        out["accuracy_below"] = float(correct[~above].mean()) if (~above).any() else None
        out["accuracy_above"] = float(correct[above].mean()) if above.any() else None
    return out


def uncertainty_line(metrics: Mapping[str, Any]) -> str:
    """One line for ``tlc build`` and ``tlc verify`` from :func:`uncertainty_metrics`."""
    line = (f"MC dropout ({metrics['samples']} samples, {metrics['n']} images): mean epistemic "
            f"{metrics['mean_epistemic']:.4g} nats, {100 * metrics['above_threshold']:.1f}% above the threshold "
            f"{metrics['epistemic_threshold']:.4g} (abstain)")
    below, above = metrics.get("accuracy_below"), metrics.get("accuracy_above")
    if below is not None or above is not None:
        shown = lambda v: "—" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        line += f"; accuracy {shown(below)} below, {shown(above)} above"
    return line
