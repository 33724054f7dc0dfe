"""Calibration and conformal prediction sets in ``tlc build``.

Before export: T is fitted on the validation split's PyTorch logits, the model becomes
``TemperatureScaled`` (so the FP32 ONNX, every artifact derived from it and the QAT model divide by T)
and the reference logits of both splits are divided by the same T, so verification compares like with
like. After the artifact is built: the conformal threshold from the artifact's own validation
outputs, the test split's ECE and coverage, and the reliability diagram in the bundle.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tlc_runtime.manifest import Calibration, ConformalRule
from tlc_runtime.results import softmax

from ..errors import ConfigError
from ..verify.reliability import plot_reliability
from ..verify.trust import trust_metrics
from .conformal import DEFAULT_COVERAGE, DEFAULT_METHOD, check_coverage, conformal_rule, require_size
from .evaluate import EvalSet
from .ood import OodOptions
from .temperature import BOUNDS, fit_calibration

RELIABILITY_FILE = "reports/reliability.png"


@dataclass(frozen=True)
class TrustOptions:
    """calibrate: fit and fold a temperature (False keeps T = 1); coverage and conformal: the sets'
    target coverage (1 − α) and method ("lac" or "aps", see ``tlc.bundler.conformal``); required: the
    user asked for these sets (``--coverage``), so a validation split too small for them is an error
    instead of a build without sets. mc_samples: K MC-dropout passes in the graph
    (``tlc.bundler.uncertainty``); None → 16 for a run trained with --mc-dropout, else off.
    ood: the out-of-distribution gate (``tlc.bundler.ood``; on by default)."""

    calibrate: bool = True
    coverage: float = DEFAULT_COVERAGE
    conformal: str = DEFAULT_METHOD
    required: bool = False
    mc_samples: int | None = None
    ood: OodOptions = OodOptions()

    def __post_init__(self) -> None:
        check_coverage(self.coverage, self.conformal)

    def sets_possible(self, n_validation: int, log) -> bool:
        """Whether ``n_validation`` images can calibrate the sets; when they cannot, ConfigError before
        building if the sets were asked for, else a warning and a bundle without sets."""
        try:
            require_size(n_validation, self.coverage)
        except ConfigError as exc:
            if self.required:
                raise
            log(f"warning: {exc}; this bundle has no prediction sets")
            return False
        return True


def calibrate(model, eval_set: EvalSet, test_set: EvalSet, options: TrustOptions,
              log) -> tuple[Any, EvalSet, EvalSet, Calibration | None]:
    """(model to export, validation and test sets with calibrated references, the fit or None)."""
    if not options.calibrate:
        return model, eval_set, test_set, None
    from ..models.calibrated import TemperatureScaled

    cal = fit_calibration(eval_set.reference, eval_set.labels)
    log(f"temperature scaling on the validation split: T = {cal.temperature:.4g}, ECE {100 * cal.ece_before:.2f}% "
        f"→ {100 * cal.ece_after:.2f}%, NLL {cal.nll_before:.4f} → {cal.nll_after:.4f}")
    if not BOUNDS[0] * 1.001 < cal.temperature < BOUNDS[1] * 0.999:
        # no interior optimum (e.g. every validation image right with a margin): the fit would only
        # sharpen (or flatten) the probabilities as far as the bound allows, which no data supports
        log(f"warning: T stopped at its bound {cal.temperature:.3g} (the validation split gives no interior "
            "optimum, e.g. every image right with a margin); keeping T = 1 (uncalibrated)")
        return model, eval_set, test_set, None
    if cal.ece_after > cal.ece_before:
        # NLL and ECE disagree (seen on PneumoniaMNIST: NLL better, ECE 8.4% → 9.1%): a calibration step
        # that makes the calibration error the bundle reports worse on the data it was fitted on is not shipped
        log(f"warning: T = {cal.temperature:.4g} lowers the validation NLL but raises its ECE "
            f"({100 * cal.ece_before:.2f}% → {100 * cal.ece_after:.2f}%); keeping T = 1 (uncalibrated)")
        return model, eval_set, test_set, None
    return (TemperatureScaled(model, cal.temperature), _scaled(eval_set, cal.temperature),
            _scaled(test_set, cal.temperature), cal)


def _scaled(eval_set: EvalSet, temperature: float) -> EvalSet:
    """The same set with its reference logits divided by T, in float32 like the graph's Div."""
    return dataclasses.replace(eval_set, reference=eval_set.reference / np.float32(temperature))


def conformal_and_report(bundle_dir: Path, val_logits: np.ndarray, val_labels: np.ndarray,
                         test_logits: np.ndarray, test_labels: np.ndarray, calibration: Calibration | None,
                         options: TrustOptions, log, sets_possible: bool = True) -> tuple[ConformalRule | None, dict]:
    """The artifact's conformal rule (its own validation outputs; None when ``sets_possible`` is False),
    and the build report's ``calibration`` and ``conformal`` sections measured on the test split;
    writes the reliability PNG."""
    rule = (conformal_rule(softmax(val_logits), val_labels, options.conformal, options.coverage)
            if sets_possible else None)
    test = trust_metrics(test_logits, test_labels, calibration, rule)
    plot_reliability(bundle_dir / RELIABILITY_FILE, test_logits, test_labels,
                     calibration.temperature if calibration else None, "bundle artifact, test split")
    cal_report = {**(dataclasses.asdict(calibration) if calibration else {"temperature": None}),
                  "fitted_on": "val", "test": test["calibration"], "reliability_diagram": RELIABILITY_FILE}
    if rule is None:
        return None, {"calibration": cal_report,
                      "conformal": {"skipped": f"{len(val_labels)} validation images are too few for "
                                               f"{options.coverage:.0%} sets"}}
    sets = test["conformal"]
    log(f"{rule.method.upper()} prediction sets at {rule.coverage:.0%}: threshold {rule.threshold:.4g} from "
        f"{rule.n_calibration} validation images; test coverage {100 * sets['empirical_coverage']:.1f}%, "
        f"mean set size {sets['mean_set_size']:.3f}")
    report = {"calibration": cal_report,
              "conformal": {**dataclasses.asdict(rule), "calibrated_on": "val", "test": sets}}
    return rule, report
