"""Per-member verification of an ensemble artifact: each member's slice of ``member_logits`` against
that member's PyTorch logits (``tlc.models.ensemble``), on the build's test split."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..runs import RunInfo
from ..verify.compare import compare_logits


def member_checks(run: RunInfo, reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray],
                  labels: np.ndarray) -> list[dict[str, Any]]:
    """One entry per member (run id, arch, agreement, max |Δprob|, balanced accuracy of both);
    empty for a run that is no ensemble."""
    if not run.is_ensemble:
        return []
    from ..models.ensemble import MEMBER_LOGITS  # torch: only for an ensemble being built

    k = len(run.class_names)
    checks = []
    for i, member in enumerate(run.members):
        part = slice(i * k, (i + 1) * k)
        c = compare_logits(reference[MEMBER_LOGITS][:, part], candidate[MEMBER_LOGITS][:, part], labels, k)
        checks.append({"run_id": member.run_id, "arch": member.arch, "agreement": c.agreement,
                       "max_abs_prob_delta": c.max_abs_prob_delta,
                       "balanced_accuracy_reference": c.balanced_accuracy_reference,
                       "balanced_accuracy_candidate": c.balanced_accuracy_candidate})
    return checks
