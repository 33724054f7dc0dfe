"""The one accuracy-budget check: NaN and Inf never pass, normal values are judged against the limits."""

from __future__ import annotations

import math

import pytest
from tlc.targets import Tolerance
from tlc.verify.budget import at_least, at_most, budget_violations
from tlc.verify.compare import Comparison

NAN, INF = math.nan, math.inf
TOL = Tolerance(min_agreement=0.99, max_balanced_accuracy_drop=0.01, max_abs_prob_delta=1e-3)


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
    problems = budget_violations(_cmp(delta=delta), Tolerance(max_abs_prob_delta=None))
    assert problems and "not finite" in problems[0]


def test_every_budget_check_is_this_one():
    """fallback (INT8/OpenVINO), FP16 (ONNX Runtime and TensorRT) and the final build check share it."""
    from tlc.build import builder
    from tlc.quantize import fallback, fp16

    assert fallback.budget_violations is budget_violations
    assert fp16.budget_violations is budget_violations
    assert builder.budget_violations is budget_violations
    assert not fallback.make_step((), _cmp(delta=NAN), TOL).passed


def test_tlc_verify_fails_non_finite_outputs_even_without_a_prob_delta_budget():
    from tlc.verify.runner import _checks

    checks = _checks(_cmp(delta=NAN), {"min_agreement": 0.99, "max_balanced_accuracy_drop": 0.01},
                     None, None, None)
    assert [c.name for c in checks if not c.passed] == ["max_abs_prob_delta"]
    assert all(c.passed for c in _checks(_cmp(), {"min_agreement": 0.99}, None, None, None))
