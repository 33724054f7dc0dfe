"""The accuracy budget, decided in one place: every builder's fallback decision, the final build check
and ``tlc verify`` judge a Comparison with :func:`judge`.

A budget is two margins (top-1 agreement with PyTorch, balanced-accuracy drop) and a confidence.
On a few hundred images one flipped prediction moves the observed values by a third of a point, so
the observed values alone decide on a single image. The rule is therefore **non-inferiority**: a
candidate passes when the data show, at the stated one-sided confidence (default 95 %), that it is
within the margins:

- agreement: the Clopper-Pearson lower confidence bound of the agreement (exact binomial, on the
  count of flipped predictions) must be at least ``min_agreement``;
- balanced-accuracy drop: the upper confidence bound of the drop must be at most
  ``max_balanced_accuracy_drop``. The bound is Agresti & Min's (2005) interval for matched
  proportions (add 0.5 to each cell of the per-class 2×2 table of reference-right/candidate-right,
  then Wald), one per class, averaged as balanced accuracy averages recalls. It is not degenerate
  when no prediction flipped, unlike a bootstrap of the paired differences.

A margin of zero (``min_agreement = 1``, drop 0, as FP32 budgets are) means "no flipped prediction"
and is judged on the observed values; so is everything when ``confidence = 0``. ``max_abs_prob_delta``
is a numerical limit, always judged on the observed maximum. The rule is written as
``value <= limit`` (not ``not value > limit``) so that NaN and Inf never pass.

A multi-output model's parts (``Comparison.parts``: each extra task's output, each ensemble member's
slice of ``member_logits``) are judged against the same budget, each on its own; their checks carry
the part's ``scope``, so a verdict over budget names the task or member that broke it.

A budget the data cannot decide is refused before anything is built (:func:`undecidable`): when even
a candidate with no flipped prediction could not pass, the evaluation set is too small for the
margin, and the message says how many images per class it would take. Every verdict carries its
resolution: what one image is worth in points of agreement and of balanced accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..targets import Tolerance
from .compare import Comparison

EPS = 1e-12  # a value equal to its limit up to float rounding is within budget


def at_most(value: float, limit: float) -> bool:
    """``value <= limit`` (with EPS), False when either is NaN or infinite."""
    return math.isfinite(value) and math.isfinite(limit) and value <= limit + EPS


def at_least(value: float, limit: float) -> bool:
    """``value >= limit`` (with EPS), False when either is NaN or infinite."""
    return math.isfinite(value) and math.isfinite(limit) and value >= limit - EPS


@dataclass(frozen=True)
class Check:
    """One limit of the budget: ``value`` (the statistic judged) ``rule`` ``limit``."""

    name: str          # top1_agreement | balanced_accuracy_drop | max_abs_prob_delta
    value: float       # the confidence bound, or the observed value where the rule is exact
    limit: float
    passed: bool
    rule: str          # ">=" or "<="
    observed: float
    method: str        # how ``value`` was computed, in words
    scope: str = ""    # "" for the main output, else the part judged: "task view", "member 1 (...)"

    @property
    def case(self) -> str:
        """A name unique within a verdict: the check's name, after its scope."""
        return f"{self.scope}: {self.name}" if self.scope else self.name

    def describe(self) -> str:
        what = {"top1_agreement": "agreement", "balanced_accuracy_drop": "balanced-accuracy drop",
                "max_abs_prob_delta": "max |Δprob|"}[self.name]
        shown = _fmt(self.name, self.value)
        observed = "" if self.method == "observed" else f" (observed {_fmt(self.name, self.observed)})"
        return (f"{self.scope + ': ' if self.scope else ''}{what} {self.method} {shown}{observed} {'≥' if self.rule == '>=' else '≤'} "
                f"{_fmt(self.name, self.limit)}: {'pass' if self.passed else 'FAIL'}")


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...]
    resolution: str    # "one image = 0.16 pts of agreement, 0.21 pts of balanced accuracy (...)"
    confidence: float

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def problems(self) -> list[str]:
        return [c.describe() for c in self.checks if not c.passed]

    def summary(self) -> str:
        head = "within budget" if self.passed else "over budget"
        return f"{head}: " + "; ".join(c.describe() for c in self.checks) + f"; {self.resolution}"

    def to_dict(self) -> dict:
        return {"passed": self.passed, "confidence": self.confidence, "resolution": self.resolution,
                "checks": [asdict(c) for c in self.checks]}


def judge(cmp: Comparison, tol: Tolerance, class_names: Sequence[str] | None = None) -> Verdict:
    """Decide ``cmp`` and each of its parts against ``tol`` (see the module docstring for the rule)."""
    checks = _checks(cmp, tol)
    for scope, part in cmp.parts.items():
        checks.extend(replace(c, scope=scope) for c in _checks(part, tol))
    return Verdict(tuple(checks), resolution(cmp, class_names), tol.confidence)


def _checks(cmp: Comparison, tol: Tolerance) -> list[Check]:
    checks = [_agreement_check(cmp, tol)]
    if cmp.balanced_accuracy_drop is not None:
        checks.append(_drop_check(cmp, tol))
    delta = cmp.max_abs_prob_delta
    if not math.isfinite(delta):
        checks.append(Check("max_abs_prob_delta", delta, tol.max_abs_prob_delta or 1.0, False, "<=", delta,
                            "observed (outputs not finite: NaN/Inf)"))
    elif tol.max_abs_prob_delta is not None:
        checks.append(Check("max_abs_prob_delta", delta, tol.max_abs_prob_delta,
                            at_most(delta, tol.max_abs_prob_delta), "<=", delta, "observed"))
    return checks


def budget_violations(cmp: Comparison, tol: Tolerance) -> list[str]:
    """Which parts of the budget ``cmp`` breaks (empty list: within budget)."""
    return judge(cmp, tol).problems()


def _agreement_check(cmp: Comparison, tol: Tolerance) -> Check:
    margin = 1.0 - tol.min_agreement
    if tol.confidence == 0 or margin <= EPS or not math.isfinite(cmp.agreement):
        return Check("top1_agreement", cmp.agreement, tol.min_agreement,
                     at_least(cmp.agreement, tol.min_agreement), ">=", cmp.agreement, "observed")
    flips = int(round(cmp.flip_rate * cmp.n))
    lower = 1.0 - flip_rate_upper_bound(flips, cmp.n, tol.confidence)
    return Check("top1_agreement", lower, tol.min_agreement, at_least(lower, tol.min_agreement), ">=",
                 cmp.agreement, f"{_pct(tol.confidence)} lower bound ({flips} of {cmp.n} flipped)")


def _drop_check(cmp: Comparison, tol: Tolerance) -> Check:
    drop, limit = cmp.balanced_accuracy_drop, tol.max_balanced_accuracy_drop
    counted = cmp.class_counts is not None and cmp.harmful_flips is not None and cmp.helpful_flips is not None
    if tol.confidence == 0 or limit <= EPS or not counted or not math.isfinite(drop):
        return Check("balanced_accuracy_drop", drop, limit, at_most(drop, limit), "<=", drop, "observed")
    upper = drop_upper_bound(cmp.class_counts, cmp.harmful_flips, cmp.helpful_flips, tol.confidence)
    return Check("balanced_accuracy_drop", upper, limit, at_most(upper, limit), "<=", drop,
                 f"{_pct(tol.confidence)} upper bound")


def flip_rate_upper_bound(flips: int, n: int, confidence: float) -> float:
    """One-sided Clopper-Pearson upper bound of a flip rate (``flips`` of ``n`` predictions)."""
    from scipy.stats import beta

    if n <= 0:
        return 1.0
    if flips >= n:
        return 1.0
    return float(beta.ppf(confidence, flips + 1, n - flips))


def drop_upper_bound(counts: Sequence[int], harmful: Sequence[int], helpful: Sequence[int],
                     confidence: float) -> float:
    """One-sided upper bound of the balanced-accuracy drop from per-class paired counts.

    counts: images per class; harmful: reference right and candidate wrong; helpful: the reverse.
    Agresti-Min: 0.5 added to each of the four cells of every class's 2×2 table, then Wald.
    """
    from scipy.stats import norm

    present = [(n, b, g) for n, b, g in zip(counts, harmful, helpful, strict=True) if n > 0]
    if not present:
        return math.nan
    k = len(present)
    n = np.array([p[0] for p in present], float) + 2.0
    p_b = (np.array([p[1] for p in present], float) + 0.5) / n
    p_g = (np.array([p[2] for p in present], float) + 0.5) / n
    diff = p_b - p_g
    var = (p_b + p_g - diff ** 2) / n
    return float(diff.sum() / k + norm.ppf(confidence) * math.sqrt(var.sum()) / k)


def undecidable(labels: np.ndarray, num_classes: int, tol: Tolerance,
                class_names: Sequence[str] | None = None) -> str | None:
    """Why ``labels`` are too few to decide ``tol`` (None: they can).

    Too few means that a candidate with no flipped prediction at all would still fail: the margin is
    finer than what this many images can show at the budget's confidence.
    """
    if tol.confidence == 0:
        return None
    counts = np.bincount(np.asarray(labels, np.int64).reshape(-1), minlength=num_classes)
    present = counts[counts > 0]
    n, k = int(counts.sum()), len(present)
    reasons = []
    margin = 1.0 - tol.min_agreement
    if margin > EPS and flip_rate_upper_bound(0, n, tol.confidence) > margin + EPS:
        needed = math.ceil(math.log(1.0 - tol.confidence) / math.log(tol.min_agreement))
        reasons.append(f"agreement ≥ {_pct(tol.min_agreement)} needs ≥ {needed} images (has {n})")
    limit = tol.max_balanced_accuracy_drop
    zeros = [0] * k
    if limit > EPS and k and drop_upper_bound(present.tolist(), zeros, zeros, tol.confidence) > limit + EPS:
        from scipy.stats import norm

        per_class = math.ceil(norm.ppf(tol.confidence) / (math.sqrt(k) * limit) - 2)
        smallest = int(np.argmin(np.where(counts > 0, counts, np.iinfo(np.int64).max)))
        name = class_names[smallest] if class_names else str(smallest)
        reasons.append(f"a balanced-accuracy drop ≤ {limit * 100:.2f} pts needs about ≥ {per_class} images "
                       f"per class (class '{name}' has {int(counts[smallest])})")
    if not reasons:
        return None
    return (f"{n} labelled images cannot decide this budget at {_pct(tol.confidence)} confidence: even with no "
            f"flipped prediction it could not pass ({'; '.join(reasons)}). Give more labelled data for "
            f"evaluation, or widen the budget (--min-agreement / --max-drop)")


def resolution(cmp: Comparison, class_names: Sequence[str] | None = None) -> str:
    """What one image is worth: points of agreement, and of balanced accuracy in the smallest class."""
    text = f"one image = {100.0 / max(cmp.n, 1):.2f} pts of agreement"
    counts = cmp.class_counts
    if counts and any(counts):
        present = [(c, i) for i, c in enumerate(counts) if c > 0]
        smallest, idx = min(present)
        name = class_names[idx] if class_names else str(idx)
        text += (f", {100.0 / (len(present) * smallest):.2f} pts of balanced accuracy "
                 f"(class '{name}', {smallest} images)")
    return text


def _pct(x: float) -> str:
    return f"{x * 100:.4g}%"


def _fmt(name: str, x: float) -> str:
    if name == "max_abs_prob_delta":
        return f"{x:.2g}"
    if name == "balanced_accuracy_drop":
        return f"{x * 100:.2f} pts"
    return f"{x * 100:.2f}%"
