"""MC-dropout uncertainty of a bundle (``Manifest.uncertainty``): the graph computes it, this module
reads it out. The graph's extra outputs ``total`` (predictive entropy of the mean probabilities),
``aleatoric`` (mean entropy of the samples) and ``epistemic`` (their difference, the mutual
information) are per-image values in nats; an image abstains when its epistemic value is above the
rule's threshold."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .errors import BundleError
from .manifest import UncertaintyRule

if TYPE_CHECKING:
    from .results import Prediction

PARTS = ("aleatoric", "epistemic", "total")


def uncertainty(outputs: Mapping[str, np.ndarray], rule: UncertaintyRule | None,
                n: int) -> tuple[list[dict[str, float] | None], np.ndarray]:
    """(per-image {"aleatoric", "epistemic", "total"} or None, per-image abstain flags) for ``n`` images;
    all None and no abstention when the bundle has no rule."""
    if rule is None:
        return [None] * n, np.zeros(n, dtype=bool)
    missing = [p for p in PARTS if p not in outputs]
    if missing:
        raise BundleError(f"the bundle's uncertainty section needs graph outputs {', '.join(missing)}; "
                          f"the artifact gives {', '.join(outputs)} (rebuild the bundle)")
    values = {p: np.asarray(outputs[p], dtype=np.float64).reshape(n) for p in PARTS}
    rows = [{p: float(values[p][i]) for p in PARTS} for i in range(n)]
    return rows, values["epistemic"] > rule.epistemic_threshold


def with_uncertainty(predictions: Sequence[Prediction], outputs: Mapping[str, np.ndarray],
                     rule: UncertaintyRule | None) -> list[Prediction]:
    """``predictions`` (one per image of ``outputs``) with their uncertainty set and ``abstain`` also
    true above the epistemic threshold; unchanged when the bundle has no rule."""
    if rule is None:
        return list(predictions)
    rows, above = uncertainty(outputs, rule, len(predictions))
    return [dataclasses.replace(p, uncertainty=row, abstain=p.abstain or bool(flag))
            for p, row, flag in zip(predictions, rows, above.tolist(), strict=True)]
