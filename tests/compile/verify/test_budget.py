"""The one accuracy-budget check: NaN and Inf never pass, normal values are judged against the limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tlc.targets import Tolerance
from tlc.verify.budget import at_least, at_most, budget_violations, flip_rate_upper_bound, judge, undecidable
from tlc.verify.compare import Comparison, compare_logits

NAN, INF = math.nan, math.inf
TOL = Tolerance(min_agreement=0.99, max_balanced_accuracy_drop=0.01, max_abs_prob_delta=1e-3, confidence=0)


def _cmp(agreement=1.0, drop=0.0, delta=1e-4):
    return Comparison(n=10, agreement=agreement, flip_rate=1 - agreement, max_abs_prob_delta=delta,
                      mean_abs_prob_delta=delta, max_abs_logit_delta=delta, balanced_accuracy_drop=drop)


@pytest.mark.parametrize("value, limit, expected", [
    (0.5, 1.0, True), (1.0, 1.0, True), (1.0 + 1e-13, 1.0, True), (1.1, 1.0, False),
    (NAN, 1.0, False), (INF, 1.0, False), (-INF, 1.0, False), (0.5, NAN, False), (0.5, INF, False),
])
def test_at_most(value, limit, expected):
    assert at_most(value, limit) is expected


@pytest.mark.parametrize("value, limit, expected", [
    (1.0, 0.99, True), (0.99, 0.99, True), (0.98, 0.99, False),
    (NAN, 0.99, False), (INF, 0.99, False), (-INF, 0.99, False), (1.0, NAN, False),
])
def test_at_least(value, limit, expected):
    assert at_least(value, limit) is expected


def test_within_budget_has_no_violations():
    assert budget_violations(_cmp(), TOL) == []
    assert budget_violations(_cmp(drop=None), TOL) == []  # no labels: no drop to judge


@pytest.mark.parametrize("field, value", [
    ("agreement", NAN), ("drop", NAN), ("drop", INF), ("drop", -INF), ("delta", NAN), ("delta", INF),
    ("agreement", 0.5), ("drop", 0.2), ("delta", 0.5),
])
def test_each_broken_or_non_finite_value_is_a_violation(field, value):
    problems = budget_violations(_cmp(**{field: value}), TOL)
    assert len(problems) == 1, problems


@pytest.mark.parametrize("delta", [NAN, INF])
def test_non_finite_outputs_fail_even_without_a_prob_delta_limit(delta):
    problems = budget_violations(_cmp(delta=delta), Tolerance(max_abs_prob_delta=None, confidence=0))
    assert problems and "not finite" in problems[0]


def test_every_budget_check_is_this_one():
    """fallback (INT8/OpenVINO), FP16 (ONNX Runtime and TensorRT), the final build check and verify share it."""
    from tlc.bundler import builder
    from tlc.quantize import fallback, fp16
    from tlc.tensorrt import build as trt_build
    from tlc.verify import budget, runner

    assert fallback.budget_violations is budget_violations
    assert fp16.budget_violations is budget_violations
    assert trt_build.budget_violations is budget_violations
    assert builder.judge is budget.judge and runner.judge is budget.judge
    assert not fallback.make_step((), _cmp(delta=NAN), TOL).passed


def test_tlc_verify_fails_non_finite_outputs_even_without_a_prob_delta_budget():
    from tlc.verify.runner import _tolerance

    tol = _tolerance({"min_agreement": 0.99, "max_balanced_accuracy_drop": 0.01}, None, None, None, None)
    assert tol.confidence == 0  # a bundle that records no confidence was built to the observed values
    verdict = judge(_cmp(delta=NAN), tol)
    assert [c.name for c in verdict.checks if not c.passed] == ["max_abs_prob_delta"]
    assert judge(_cmp(), _tolerance({"min_agreement": 0.99}, None, None, None, None)).passed


# --- the statistical rule, on real computations ---------------------------------------------------

def _paired(labels, flips_in_class, helpful_in_class=None, reference_wrong=0):
    """Reference logits right on every image but ``reference_wrong`` per class; the candidate
    flips ``flips_in_class[c]`` right predictions of class c to wrong, and ``helpful_in_class[c]``
    wrong ones to right."""
    labels = np.asarray(labels)
    k = int(labels.max()) + 1
    ref_pred = labels.copy()
    for c in range(k):
        idx = np.flatnonzero(labels == c)[:reference_wrong]
        ref_pred[idx] = (c + 1) % k
    cand_pred = ref_pred.copy()
    for c, count in enumerate(flips_in_class):
        right = np.flatnonzero((labels == c) & (ref_pred == labels))[-count:] if count else []
        cand_pred[right] = (c + 1) % k
    for c, count in enumerate(helpful_in_class or []):
        wrong = np.flatnonzero((labels == c) & (ref_pred != labels))[:count]
        cand_pred[wrong] = c
    return np.eye(k)[ref_pred] * 5, np.eye(k)[cand_pred] * 5, labels


def _labels(*per_class):
    return np.concatenate([np.full(n, c) for c, n in enumerate(per_class)])


def test_clopper_pearson_matches_the_exact_binomial_tail():
    from scipy.stats import binom

    for flips, n in [(0, 300), (2, 624), (7, 1000)]:
        upper = flip_rate_upper_bound(flips, n, 0.95)
        assert binom.cdf(flips, n, upper) == pytest.approx(0.05, abs=1e-6)
    assert flip_rate_upper_bound(0, 300, 0.95) == pytest.approx(1 - 0.05 ** (1 / 300))


def test_one_flip_no_longer_decides_the_verdict():
    """The issue's case: observed-value budgets flip on a single image; the confidence bound moves
    smoothly with the number of flips and passes or fails on a margin the data can show."""
    labels = _labels(234, 390)                          # PneumoniaMNIST's test split
    tol = Tolerance(min_agreement=0.99, max_balanced_accuracy_drop=0.01)
    verdicts = [judge(compare_logits(*_paired(labels, [f, 0]), bootstrap=0), tol) for f in range(6)]
    bounds = [v.checks[1].value for v in verdicts]
    assert all(a < b for a, b in zip(bounds, bounds[1:], strict=False))
    assert verdicts[0].passed and not verdicts[5].passed
    assert "one image = 0.16 pts of agreement, 0.21 pts of balanced accuracy (class '0', 234 images)" \
        in verdicts[0].resolution


def test_no_flips_is_not_proof_on_a_handful_of_images():
    labels = _labels(10, 10)
    cmp = compare_logits(*_paired(labels, [0, 0]), bootstrap=0)
    assert cmp.agreement == 1.0 and cmp.balanced_accuracy_drop == 0.0
    verdict = judge(cmp, Tolerance(min_agreement=0.99, max_balanced_accuracy_drop=0.01))
    assert not verdict.passed and all(not c.passed for c in verdict.checks)
    # the same numbers judged on their observed values pass: that is what the rule guards against
    assert judge(cmp, Tolerance(min_agreement=0.99, max_balanced_accuracy_drop=0.01, confidence=0)).passed


def test_helpful_flips_offset_harmful_ones():
    labels = _labels(200, 200)
    tol = Tolerance(min_agreement=0.0, max_balanced_accuracy_drop=0.02)
    harmful = compare_logits(*_paired(labels, [3, 3], reference_wrong=20), bootstrap=0)
    offset = compare_logits(*_paired(labels, [3, 3], [3, 3], reference_wrong=20), bootstrap=0)
    assert harmful.harmful_flips == (3, 3) and offset.helpful_flips == (3, 3)
    assert offset.balanced_accuracy_drop == pytest.approx(0.0)
    assert judge(offset, tol).checks[1].value < judge(harmful, tol).checks[1].value


def test_exact_margins_mean_no_flipped_prediction():
    labels = _labels(300, 300)
    fp32 = Tolerance(min_agreement=1.0, max_balanced_accuracy_drop=0.0, max_abs_prob_delta=1e-4)
    assert judge(compare_logits(*_paired(labels, [0, 0]), bootstrap=0), fp32).passed
    one = judge(compare_logits(*_paired(labels, [1, 0]), bootstrap=0), fp32)
    assert [c.method for c in one.checks[:2]] == ["observed", "observed"] and not one.passed
    assert undecidable(labels[:4], 2, fp32) is None      # an exact budget is decidable on any set


@pytest.mark.parametrize("per_class, decidable", [((60, 60), False), ((150, 150), True), ((30,) * 10, False),
                                                   ((60,) * 10, True)])
def test_too_few_images_to_decide_is_said_before_building(per_class, decidable):
    tol = Tolerance(min_agreement=0.99, max_balanced_accuracy_drop=0.01)
    labels = _labels(*per_class)
    why = undecidable(labels, len(per_class), tol)
    assert (why is None) is decidable
    # the rule behind it: a candidate with no flipped prediction passes exactly when decidable
    clean = judge(compare_logits(*_paired(labels, [0] * len(per_class)), bootstrap=0), tol)
    assert clean.passed is decidable
    if why:
        assert "cannot decide this budget" in why and "images per class" in why


def test_the_per_class_size_it_asks_for_is_enough():
    tol = Tolerance(min_agreement=0.0, max_balanced_accuracy_drop=0.01)
    why = undecidable(_labels(40, 400), 2, tol, ["normal", "pneumonia"])
    assert "class 'normal' has 40" in why
    needed = int(why.split("about ≥ ")[1].split()[0])
    assert undecidable(_labels(needed, needed), 2, tol) is None
    assert undecidable(_labels(needed - 5, needed - 5), 2, tol) is not None
