"""The INT8 escalation ladder: try cheap recipes first, stop at the first that meets the budget.

Backend-agnostic. A rung is a name, a one-line description of what it does and a callable that
builds one candidate (or runs a bounded search) and returns a :class:`~.fallback.FallbackStep`
measured with ``ctx.evaluate``, or None when it cannot run here (it is then recorded as skipped).
:func:`climb` runs the rungs in order, times each, records every rung it tried and stops at the
first that passes. ``report["ladder"]`` of an INT8 build is ``LadderResult.to_list()``.

Rungs are decided on the validation split. A rung that passes there is then confirmed on the test
split (``confirm``), which the final build check judges anyway: a rung picked because it looked best
on validation can miss on held-out data (MobileNetV2: 1 of 524 validation predictions flipped, 9 of
624 test ones), and the ladder then climbs on instead of refusing the build. The test split is looked
at once per rung that passed validation, at most once per rung.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .fallback import FallbackStep

RungRun = Callable[[], "FallbackStep | None"]


@dataclass(frozen=True)
class Rung:
    name: str
    does: str         # what the rung does, for the report and the log
    run: RungRun


@dataclass(frozen=True)
class RungRecord:
    name: str
    does: str
    step: FallbackStep | None   # None: the rung could not run here (see ``skipped``)
    seconds: float
    skipped: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    unconfirmed: tuple[str, ...] = ()   # what broke the budget on the test split after passing validation

    @property
    def passed(self) -> bool:
        return self.step is not None and self.step.passed and not self.unconfirmed

    def to_dict(self) -> dict[str, Any]:
        step = self.step
        out: dict[str, Any] = {"rung": self.name, "did": self.does, "passed": self.passed,
                               "seconds": round(self.seconds, 2)}
        if step is None:
            out["skipped"] = self.skipped
        else:
            out.update(agreement=step.agreement, balanced_accuracy_drop=step.balanced_accuracy_drop,
                       max_abs_prob_delta=step.max_abs_prob_delta, n_float=len(step.float_layers),
                       violations=list(step.violations))
            if self.unconfirmed:
                out["test_split_violations"] = list(self.unconfirmed)
        return {**out, **self.details}


@dataclass
class LadderResult:
    records: list[RungRecord] = field(default_factory=list)

    @property
    def winner(self) -> RungRecord | None:
        return next((r for r in self.records if r.passed), None)

    def to_list(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.records]

    def summary(self) -> str:
        """One line: each tried rung with its agreement (or why it was skipped)."""
        parts = []
        for r in self.records:
            if r.step is None:
                parts.append(f"{r.name}: skipped ({r.skipped})")
            else:
                broken = r.step.violations or tuple(f"test split: {v}" for v in r.unconfirmed)
                parts.append(f"{r.name}: agreement {r.step.agreement:.2%}"
                             + (f" ({'; '.join(broken)})" if broken else ""))
        return "; ".join(parts) or "no rung ran"


class RungSkipped(Exception):  # noqa: N818 (a signal, not an error)
    """Raised by a rung that cannot run here (no training data, no model): recorded, not fatal."""


def select_rungs(rungs: Sequence[Rung], wanted: Sequence[str] | None) -> list[Rung]:
    """``rungs`` restricted to the names in ``wanted`` (None: all), in ladder order; ConfigError
    for an unknown name."""
    if wanted is None:
        return list(rungs)
    names = [r.name for r in rungs]
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise ConfigError(f"unknown INT8 ladder rung(s) {', '.join(map(repr, unknown))}; valid: {', '.join(names)}")
    return [r for r in rungs if r.name in set(wanted)]


def climb(rungs: Sequence[Rung], log: Callable[[str], None] = print,
          details: Callable[[str], dict[str, Any]] | None = None,
          confirm: Callable[[str], Sequence[str]] | None = None) -> LadderResult:
    """Run ``rungs`` in order until one passes; every rung tried is recorded, with its time.

    ``details(name)`` adds rung-specific facts to its record (calibration size, float layers...).
    ``confirm(name)`` judges the candidate a rung chose on the test split (budget violations, empty
    when within budget); a rung that passes validation but not this does not stop the climb.
    """
    result = LadderResult()
    for rung in rungs:
        log(f"int8 ladder, rung {rung.name}: {rung.does}")
        started = time.perf_counter()
        skipped, step = "", None
        try:
            step = rung.run()
        except RungSkipped as why:
            skipped = str(why)
        unconfirmed = tuple(confirm(rung.name)) if confirm and step is not None and step.passed else ()
        seconds = time.perf_counter() - started
        record = RungRecord(rung.name, rung.does, step, seconds, skipped, details(rung.name) if details else {},
                            unconfirmed)
        result.records.append(record)
        if step is None:
            log(f"int8 ladder, rung {rung.name}: skipped ({skipped})")
            continue
        log(f"int8 ladder, rung {rung.name} ({seconds:.1f} s): {step.describe()}")
        if unconfirmed:
            log(f"int8 ladder, rung {rung.name}: misses the budget on the test split ({'; '.join(unconfirmed)}); "
                "climbing on")
        if record.passed:
            break
    return result
