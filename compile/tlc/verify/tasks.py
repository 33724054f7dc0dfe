"""Per-task comparison of a multi-task artifact with its reference: each task's output, by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tlc_runtime.manifest import TaskSpec

from .compare import compare_logits


def task_agreement(tasks: Sequence[TaskSpec] | None, reference: dict[str, np.ndarray],
                   candidate: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """For every task (its output in both dicts): top-1 agreement and the largest |Δprob| of the
    candidate against the reference, on the same images; {} for a single-task model."""
    out = {}
    for task in tasks or ():
        c = compare_logits(reference[task.output], candidate[task.output])
        out[task.name] = {"output": task.output, "n": c.n, "agreement": c.agreement,
                          "max_abs_prob_delta": c.max_abs_prob_delta}
    return out


def task_lines(per_task: dict[str, dict[str, Any]]) -> str:
    """One line for logs: each task's agreement."""
    return "per-task agreement: " + ", ".join(f"{name} {m['agreement']:.2%}" for name, m in per_task.items())
