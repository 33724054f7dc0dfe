"""The out-of-distribution gate at build time: fit the Mahalanobis Gaussian, choose the score, set the threshold.

Fit (before export, PyTorch): class means and one shared (within-class) covariance of the pooled
features of the TRAINING split. Features are standardised per dimension first, then Ledoit-Wolf
shrinkage (scikit-learn's ``LedoitWolf``, closed-form shrinkage intensity) gives a well-conditioned
covariance: 512-1280 feature dimensions from a few thousand images make the sample covariance
near-singular, and Ledoit-Wolf shrinks towards a multiple of the identity, which only makes sense when
the dimensions share one scale (hence the standardisation). The standardisation is folded into the
precision matrix and the means, so the graph computes the distance on the raw pooled features.

Score: ``ood_score = w_e·energy + w_m·mahalanobis``. The default is the combination of both, each
divided by its standard deviation on the validation split (PyTorch), measured with
``benchmarks/ood.py`` on PneumoniaMNIST (ResNet-18, 64 px; AUROC, in-distribution test split vs
other modalities and corruptions, ONNX Runtime FP32; see benchmarks/README.md):

    OOD set (ID: 624 test)  max-softmax  energy  mahalanobis  combined
    dicom-ct-mr-us (240)         0.454    0.501        0.896     0.915
    digits (1797)                0.516    0.539        0.996     0.997
    noise                        0.005    0.000        1.000     1.000
    noisy-xray                   0.007    0.002        1.000     1.000
    blank                        0.598    0.657        0.624     0.698
    saturated                    0.274    0.308        0.998     0.998
    inverted                     0.622    0.653        0.891     0.931

Energy alone fails here (noise makes this model MORE confident: AUROC ≈ 0); Mahalanobis carries the
gate, and adding the standardised energy helps where Mahalanobis is weakest (blank, inverted, other
modalities), so "combined" is the default. OpenVINO FP32 gives the same numbers to 3 decimals; ORT
INT8 loses much of it (combined: 0.78 / 0.87 / 0.98 / 0.99 / 0.61 / 0.95 / 0.72), see the README.

Threshold (after the artifact is built, on its OWN validation outputs, so an INT8/FP16/OpenVINO
artifact whose scores shift gets its own): the ⌈(n+1)·a⌉-th smallest validation ``ood_score``; an
image is accepted when its score is at most the threshold, which accepts at least a fraction ``a``
(``--ood-acceptance``, default 0.95) of exchangeable in-distribution images.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from tlc_runtime.manifest import OodRule

from ..errors import ConfigError
from ..verify.ood import ood_line, ood_metrics
from .evaluate import EvalSet

SCORES = ("energy", "mahalanobis", "combined")
DEFAULT_SCORE = "combined"
DEFAULT_ACCEPTANCE = 0.95
MAX_FIT_IMAGES = 5000
_EPS = 1e-9


@dataclass(frozen=True)
class OodOptions:
    """enabled: compile the gate (``--no-ood`` turns it off); acceptance: the fraction of
    in-distribution validation images the threshold accepts; score: which score the gate uses;
    required: the user asked for the gate (``--ood-acceptance``), so a validation split too small for
    the threshold is an error instead of a build without the gate."""

    enabled: bool = True
    acceptance: float = DEFAULT_ACCEPTANCE
    score: str = DEFAULT_SCORE
    required: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.acceptance < 1:
            raise ConfigError(f"OOD acceptance {self.acceptance:g} must be within 0..1 (exclusive), e.g. 0.95")
        if self.score not in SCORES:
            raise ConfigError(f"OOD score {self.score!r} is not one of {', '.join(SCORES)}")


@dataclass(frozen=True)
class GaussianFit:
    """Class means (K×D) and shared precision (D×D) on raw pooled features; what they were fitted on."""

    means: np.ndarray
    precision: np.ndarray
    n_images: int
    shrinkage: float


def fit_gaussian(features: np.ndarray, labels: np.ndarray, num_classes: int) -> GaussianFit:
    """Class means and the Ledoit-Wolf-shrunk shared covariance's inverse, standardisation folded in."""
    from sklearn.covariance import LedoitWolf

    x = np.asarray(features, np.float64)
    labels = np.asarray(labels)
    missing = sorted(set(range(num_classes)) - set(labels.tolist()))
    if missing:
        raise ConfigError(f"the training split has no images of class index {missing}; "
                          "the OOD gate needs every class (or --no-ood)")
    means = np.stack([x[labels == k].mean(axis=0) for k in range(num_classes)])
    centred = x - means[labels]
    scale = centred.std(axis=0)
    scale = np.maximum(scale, 1e-3 * max(float(np.median(scale)), 1e-12))  # dead (always-zero) features
    lw = LedoitWolf(assume_centered=True).fit(centred / scale)
    precision = lw.precision_ / scale[:, None] / scale[None, :]
    return GaussianFit(means=means, precision=(precision + precision.T) / 2, n_images=len(x),
                       shrinkage=float(lw.shrinkage_))


def score_weights(score: str, energy: np.ndarray, mahalanobis: np.ndarray) -> tuple[float, float]:
    """(w_energy, w_mahalanobis) of ``ood_score``; "combined" divides each by its spread on the given
    (validation) scores so neither dominates by its units."""
    if score == "energy":
        return 1.0, 0.0
    if score == "mahalanobis":
        return 0.0, 1.0
    return 1.0 / _spread(energy), 1.0 / _spread(mahalanobis)


def _spread(values: np.ndarray) -> float:
    """The standard deviation; infinite (weight 0) for a score that does not vary on validation beyond
    float rounding: dividing by its spread would turn rounding noise into the gate's decision."""
    values = np.asarray(values, np.float64)
    sd = float(np.std(values))
    if not math.isfinite(sd) or sd <= 1e-6 * max(1.0, float(np.abs(values).mean())):
        return math.inf
    return sd


def min_threshold_size(acceptance: float) -> int:
    """The fewest validation images for which ⌈(n+1)·acceptance⌉ ≤ n (a finite threshold)."""
    return max(1, math.ceil(acceptance / (1 - acceptance) - _EPS))


def ood_threshold(scores: np.ndarray, acceptance: float) -> float:
    """The ⌈(n+1)·acceptance⌉-th smallest in-distribution score (accepted: score ≤ threshold)."""
    n = len(scores)
    if n < min_threshold_size(acceptance):
        raise ConfigError(f"{n} validation images cannot set an OOD threshold accepting {acceptance:.0%}; "
                          f"it needs at least {min_threshold_size(acceptance)} (or a lower --ood-acceptance, or --no-ood)")
    k = math.ceil((n + 1) * acceptance - _EPS)
    return float(np.sort(np.asarray(scores, np.float64))[k - 1])


def scored_model(model, train_inputs: np.ndarray, train_labels: np.ndarray, val_inputs: np.ndarray,
                 num_classes: int, options: OodOptions, log):
    """(the model with OOD outputs, its Gaussian fit): fitted on (at most MAX_FIT_IMAGES) training
    images, the score's weights on the validation images."""
    import torch

    from ..models.ood import OodScored

    if len(train_inputs) > MAX_FIT_IMAGES:
        keep = np.random.default_rng(0).choice(len(train_inputs), MAX_FIT_IMAGES, replace=False)
        train_inputs, train_labels = train_inputs[np.sort(keep)], train_labels[np.sort(keep)]
    from ..models.ood import features_of

    fit = fit_gaussian(features_of(model, train_inputs), train_labels, num_classes)
    probe = OodScored(model, fit.means, fit.precision, weights=(1.0, 1.0)).eval()
    with torch.inference_mode():
        out = probe(torch.from_numpy(np.ascontiguousarray(val_inputs)))
    weights = score_weights(options.score, out["energy"].numpy(), out["mahalanobis"].numpy())
    log(f"OOD gate: class means and shared covariance on {fit.n_images} training images "
        f"(Ledoit-Wolf shrinkage {fit.shrinkage:.3f}); score {options.score}")
    return OodScored(model, fit.means, fit.precision, weights=weights).eval(), fit


def gate(model, eval_set: EvalSet, test_set: EvalSet, train_split: Callable[[], tuple[np.ndarray, np.ndarray]],
         backend: str, options: OodOptions, log) -> tuple[Any, EvalSet, EvalSet, GaussianFit | None]:
    """(model to export, validation and test sets whose references are that model's outputs, the fit):
    ``model`` wrapped by :class:`~tlc.models.ood.OodScored` (after calibration: it folds the temperature
    in), or unchanged with fit None when the gate is off or cannot be compiled (said in the log)."""
    from ..models.ood import scorable

    why_not = ("--no-ood" if not options.enabled else
               "TensorRT targets run single-output graphs" if backend == "tensorrt" else
               "ensembles, multi-task and head+stage MC-dropout models have no single feature space to score"
               if not scorable(model) else None)
    if why_not is not None:
        log(f"OOD gate: not compiled ({why_not}); predictions carry no ood flag")
        return model, eval_set, test_set, None
    if not _threshold_possible(len(eval_set.labels), options, log):
        return model, eval_set, test_set, None
    train_inputs, train_labels = train_split()
    scored, fit = scored_model(model, train_inputs, train_labels, eval_set.inputs, eval_set.num_classes,
                               options, log)
    return scored, _referenced(scored, eval_set), _referenced(scored, test_set), fit


def _threshold_possible(n_validation: int, options: OodOptions, log) -> bool:
    """Whether ``n_validation`` images can set the threshold; ConfigError when not and the gate was asked
    for, else a warning and a bundle without it."""
    try:
        ood_threshold(np.zeros(n_validation), options.acceptance)
    except ConfigError as exc:
        if options.required:
            raise
        log(f"warning: {exc}; this bundle has no OOD gate")
        return False
    return True


def _referenced(model, eval_set: EvalSet) -> EvalSet:
    """``eval_set`` with the reference logits and extra outputs of ``model`` (the graph to export)."""
    from ..export.onnx_export import reference_outputs

    outputs = reference_outputs(model, eval_set.inputs)
    logits = outputs.pop("logits")
    return dataclasses.replace(eval_set, reference=logits, extras=outputs)


MIN_SCORE_RANK_CORRELATION = 0.9


def rule_and_report(fit: GaussianFit | None, options: OodOptions, val_outputs: Mapping[str, np.ndarray],
                    test_outputs: Mapping[str, np.ndarray], log,
                    reference: np.ndarray | None = None) -> tuple[OodRule | None, dict[str, Any]]:
    """The manifest's ``ood`` section, its threshold from the artifact's OWN validation ``ood_score``,
    and the build report's ``ood`` section (acceptance on the test split); (None, {}) without a fit.

    ``reference``: PyTorch's validation ``ood_score``. An artifact whose scores do not rank the
    validation images as PyTorch's do (Spearman ρ < MIN_SCORE_RANK_CORRELATION; measured on a
    PneumoniaMNIST MC-dropout bundle's golden images: 1.000 for FP32, 0.98 for ORT INT8 with the score
    path in float, 0.86 for OpenVINO INT8 while NNCF still quantized that path, whose gate then ranked noise
    as in-distribution, AUROC 0.00; both ladders now keep it float, ``score_only_nodes``/``score_only_ops``)
    ships without the gate: a flag from quantization noise is worse than none.
    """
    if fit is None:
        return None, {}
    val_scores = np.asarray(val_outputs["ood_score"])
    if reference is not None:
        from scipy.stats import spearmanr

        rho = float(spearmanr(reference, val_scores).statistic)
        if not rho >= MIN_SCORE_RANK_CORRELATION:
            log(f"warning: this artifact's OOD scores do not follow PyTorch's (Spearman ρ = {rho:.3f} on "
                f"{len(val_scores)} validation images, needs ≥ {MIN_SCORE_RANK_CORRELATION}); no OOD gate in "
                "this bundle (predictions carry no ood flag)")
            return None, {"ood": {"skipped": f"artifact scores follow PyTorch's with Spearman ρ = {rho:.3f} "
                                             f"< {MIN_SCORE_RANK_CORRELATION}", "rank_correlation": rho}}
    rule = OodRule(score=options.score, threshold=ood_threshold(val_scores, options.acceptance),
                   acceptance=options.acceptance, n_fit=fit.n_images, n_threshold=len(val_scores))
    test = ood_metrics(test_outputs, rule)
    log(f"{ood_line(test)} [test split]")
    return rule, {"ood": {**dataclasses.asdict(rule), "threshold_from": "val", "shrinkage": fit.shrinkage,
                          "test": test, **({} if reference is None else {"rank_correlation": rho})}}
