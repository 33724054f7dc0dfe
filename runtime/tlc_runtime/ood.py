"""The out-of-distribution gate of a bundle (``Manifest.ood``): the graph computes a per-image score
(higher = less like the training data), this module compares it with the bundle's threshold. An
image whose score is above the threshold is OOD and abstains; at or below it, it is accepted."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .errors import BundleError
from .manifest import OodRule

if TYPE_CHECKING:
    from .results import Prediction


def ood_flags(outputs: Mapping[str, np.ndarray], rule: OodRule, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(per-image scores as float64, per-image OOD flags) for ``n`` images of a graph's ``outputs``."""
    if rule.output not in outputs:
        raise BundleError(f"the bundle's ood section needs graph output {rule.output}; "
                          f"the artifact gives {', '.join(outputs)} (rebuild the bundle)")
    scores = np.asarray(outputs[rule.output], dtype=np.float64).reshape(n)
    return scores, scores > rule.threshold


def with_ood(predictions: Sequence[Prediction], outputs: Mapping[str, np.ndarray],
             rule: OodRule | None) -> list[Prediction]:
    """``predictions`` (one per image of ``outputs``) with ``ood`` and ``ood_score`` set and ``abstain``
    also true when OOD; unchanged when the bundle has no gate."""
    if rule is None:
        return list(predictions)
    scores, flags = ood_flags(outputs, rule, len(predictions))
    return [dataclasses.replace(p, ood=bool(flag), ood_score=float(score), abstain=p.abstain or bool(flag))
            for p, score, flag in zip(predictions, scores.tolist(), flags.tolist(), strict=True)]
