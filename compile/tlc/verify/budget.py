"""The accuracy budget check, in one place: every builder's fallback decision, the final build check
and ``tlc verify`` judge a Comparison with these functions.

Written as ``value <= limit`` (not ``not value > limit``) so that NaN and Inf never pass: a model
whose outputs are NaN (a NaN in the preprocessing, an FP16 overflow) breaks every budget.
"""

from __future__ import annotations

import math

from ..targets import Tolerance
from .compare import Comparison

EPS = 1e-12  # a drop equal to its limit up to float rounding is within budget


def at_most(value: float, limit: float) -> bool:
    """``value <= limit`` (with EPS), False when either is NaN or infinite."""
    return math.isfinite(value) and math.isfinite(limit) and value <= limit + EPS


def at_least(value: float, limit: float) -> bool:
    """``value >= limit`` (with EPS), False when either is NaN or infinite."""
    return math.isfinite(value) and math.isfinite(limit) and value >= limit - EPS


def budget_violations(cmp: Comparison, tol: Tolerance) -> list[str]:
    """Which parts of the budget ``cmp`` breaks (empty list: within budget)."""
    problems = []
    if not at_least(cmp.agreement, tol.min_agreement):
        problems.append(f"agreement {cmp.agreement:.2%} < {tol.min_agreement:.2%}")
    drop = cmp.balanced_accuracy_drop
    if drop is not None and not at_most(drop, tol.max_balanced_accuracy_drop):
        problems.append(f"balanced-accuracy drop {drop * 100:.2f} pts "
                        f"> {tol.max_balanced_accuracy_drop * 100:.2f} pts")
    delta = cmp.max_abs_prob_delta
    if not math.isfinite(delta):
        problems.append(f"max |Δprob| is {delta}: the outputs are not finite (NaN/Inf)")
    elif tol.max_abs_prob_delta is not None and not at_most(delta, tol.max_abs_prob_delta):
        problems.append(f"max |Δprob| {delta:.2g} > {tol.max_abs_prob_delta:.2g}")
    return problems
