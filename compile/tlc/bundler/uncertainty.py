"""MC-dropout uncertainty in ``tlc build`` (``--mc-samples K``).

Before export: a run trained with ``--mc-dropout`` becomes ``tlc.models.mc_dropout.McDropoutModel``
(K fixed-mask passes, masks seeded by the run's seed), so every artifact derived from the FP32 ONNX
carries the ``total``, ``aleatoric`` and ``epistemic`` outputs. After the artifact is built: the
epistemic threshold is the 95th percentile of the artifact's own validation epistemic values (per
artifact, like the conformal threshold), and the report gives the test split's mean epistemic value
and the fraction of test images above the threshold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from tlc_runtime.manifest import UncertaintyRule

from ..errors import ConfigError
from ..runs import RunInfo
from ..verify.uncertainty import uncertainty_metrics

DEFAULT_SAMPLES = 16
EPISTEMIC_QUANTILE = 0.95


def mc_samples(run: RunInfo, requested: int | None, backend: str = "onnxruntime",
               log: Callable[[str], None] = lambda _m: None) -> int | None:
    """K for this build: ``requested``, or DEFAULT_SAMPLES for a run trained with --mc-dropout; None (off)
    for a run without it, for ``--mc-samples 0``, and by default on TensorRT targets (their sessions bind
    one output; said in the log). ConfigError for K given to a run without dropout or to a TensorRT
    target, or K = 1."""
    if run.mc_dropout is None:
        if requested is not None:
            raise ConfigError(f"--mc-samples needs a run trained with --mc-dropout; run {run.run_id} was not "
                              "(retrain with tlc train --mc-dropout RATE)")
        return None
    if requested == 0:
        return None
    if backend == "tensorrt":
        if requested is not None:
            raise ConfigError("TensorRT targets run single-output graphs: MC-dropout samples cannot be exported "
                              "for them (leave out --mc-samples, or give --mc-samples 0)")
        log("MC dropout: not exported (TensorRT targets run single-output graphs); predictions carry no "
            "uncertainty")
        return None
    samples = DEFAULT_SAMPLES if requested is None else requested
    if samples < 2:
        raise ConfigError(f"--mc-samples must be at least 2 (or 0: off), got {samples}")
    return samples


def wrap(model, run: RunInfo, samples: int | None):
    """The model to export: ``model`` itself when ``samples`` is None, else its MC-dropout wrapper."""
    if samples is None:
        return model
    from ..models.mc_dropout import McDropoutModel

    return McDropoutModel.for_run(model, run, samples, run.seed)


def uncertainty_rule(run: RunInfo, samples: int, val_epistemic: np.ndarray) -> UncertaintyRule:
    """The manifest section, its threshold from the artifact's own validation epistemic values."""
    if run.mc_dropout is None:
        raise ConfigError(f"run {run.run_id} was not trained with --mc-dropout")
    threshold = float(np.quantile(np.asarray(val_epistemic, dtype=np.float64), EPISTEMIC_QUANTILE))
    return UncertaintyRule(samples=samples, rate=run.mc_dropout.rate, where=run.mc_dropout.where, seed=run.seed,
                           epistemic_threshold=max(threshold, 0.0))


def rule_and_report(run: RunInfo, samples: int | None, val_outputs: Mapping[str, np.ndarray],
                    test_outputs: Mapping[str, np.ndarray], test_labels: np.ndarray,
                    log) -> tuple[UncertaintyRule | None, dict[str, Any]]:
    """The manifest's ``uncertainty`` section from the artifact's own validation outputs and the build
    report's ``uncertainty`` section measured on the test split; (None, {}) when ``samples`` is None."""
    if samples is None:
        return None, {}
    rule = uncertainty_rule(run, samples, val_outputs["epistemic"])
    test = uncertainty_metrics(test_outputs, rule, test_labels)
    log(f"MC dropout, {samples} samples: epistemic threshold {rule.epistemic_threshold:.4g} (95th percentile of "
        f"validation); test mean epistemic {test['mean_epistemic']:.4g}, {100 * test['above_threshold']:.1f}% above")
    return rule, {"uncertainty": {**dataclasses.asdict(rule), "threshold_from": "val", "test": test}}
