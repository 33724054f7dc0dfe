"""Accuracy-aware mixed precision: keep the fewest most-sensitive layers in float until the budget holds.

Backend-agnostic: the caller ranks layers (most sensitive first) and supplies ``try_mix(float_layers)``
that builds and evaluates a candidate with those layers left in float. The search grows the float set
by doubling (1, 2, 4, ... layers), then bisects between the last failing and the first passing size
while rebuild steps remain, so the result is the smallest passing prefix it could find in bounded work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..targets import Tolerance
from ..verify.budget import budget_violations
from ..verify.compare import Comparison


@dataclass(frozen=True)
class FallbackStep:
    """One candidate: which layers stayed in float and how it compared with the reference."""

    float_layers: tuple[str, ...]
    agreement: float
    balanced_accuracy_drop: float | None
    max_abs_prob_delta: float
    violations: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.violations

    def describe(self) -> str:
        """One log line: the measured agreement and drop, and what broke the budget if anything."""
        drop = "" if self.balanced_accuracy_drop is None else f", bal-acc drop {self.balanced_accuracy_drop * 100:+.2f} pts"
        verdict = f"misses budget ({'; '.join(self.violations)})" if self.violations else "within budget"
        return f"agreement {self.agreement:.2%}{drop}, max |Δprob| {self.max_abs_prob_delta:.2g} → {verdict}"

    def to_dict(self) -> dict:
        return {"n_float": len(self.float_layers), "float_layers": list(self.float_layers),
                "agreement": self.agreement, "balanced_accuracy_drop": self.balanced_accuracy_drop,
                "max_abs_prob_delta": self.max_abs_prob_delta, "passed": self.passed,
                "violations": list(self.violations)}


@dataclass
class FallbackResult:
    steps: list[FallbackStep] = field(default_factory=list)
    chosen: FallbackStep | None = None
    ranked: tuple[str, ...] = ()
    max_float: int = 0

    def summary(self) -> str:
        last = self.steps[-1] if self.steps else None
        if last is None:
            return "no candidate was built"
        return (f"{len(self.steps)} candidate(s), up to {len(last.float_layers)} layer(s) in float; "
                f"last: {'; '.join(last.violations) or 'within budget'}")


def make_step(float_layers: Sequence[str], cmp: Comparison, tol: Tolerance) -> FallbackStep:
    return FallbackStep(float_layers=tuple(float_layers), agreement=cmp.agreement,
                        balanced_accuracy_drop=cmp.balanced_accuracy_drop,
                        max_abs_prob_delta=cmp.max_abs_prob_delta,
                        violations=tuple(budget_violations(cmp, tol)))


def greedy_fallback(rank: Callable[[], Sequence[str]], try_mix: Callable[[tuple[str, ...]], Comparison],
                    tol: Tolerance, *, max_float_fraction: float = 1.0, max_steps: int = 8,
                    log: Callable[[str], None] = print) -> FallbackResult:
    """Search the smallest prefix of the ranking whose float mix meets ``tol``.

    The all-quantized candidate (no float layers) is tried first and does not count as a rebuild step;
    only when it fails is ``rank()`` called (layers, most sensitive first). At most ``max_steps``
    further candidates are built, never with more than ``max_float_fraction`` of the ranked layers
    (at least one) in float.
    ``result.chosen`` is None when no tried mix met the budget.
    """
    result = FallbackResult()
    tried: dict[int, FallbackStep] = {}
    ranked: Sequence[str] = ()

    def attempt(k: int) -> FallbackStep:
        step = make_step(ranked[:k], try_mix(tuple(ranked[:k])), tol)
        log(f"int8 with {k} layer(s) in float: {step.describe()}")
        tried[k] = step
        result.steps.append(step)
        return step

    if attempt(0).passed:
        result.chosen = tried[0]
        return result
    ranked = tuple(rank())
    result.ranked = ranked
    limit = min(len(ranked), max(1, int(len(ranked) * max_float_fraction)))
    result.max_float = limit
    fail, ok, k, budget = 0, None, 1, max_steps
    while budget > 0 and k <= limit:  # doubling phase
        budget -= 1
        if attempt(k).passed:
            ok = k
            break
        fail = k
        if k == limit:
            break
        k = min(2 * k, limit)
    if ok is None:
        return result
    while budget > 0 and ok - fail > 1:  # bisection phase: fewer float layers if possible
        budget -= 1
        mid = (fail + ok) // 2
        if attempt(mid).passed:
            ok = mid
        else:
            fail = mid
    result.chosen = tried[ok]
    return result
