"""The bounded greedy search over float-layer prefixes and the budget check (pure logic)."""

from __future__ import annotations

import pytest
from tlc.quantize.fallback import budget_violations, greedy_fallback
from tlc.targets import Tolerance
from tlc.verify.compare import Comparison

LAYERS = [f"layer{i}" for i in range(20)]


def _cmp(agreement, drop=0.0, delta=0.01):
    return Comparison(n=100, agreement=agreement, flip_rate=1 - agreement, max_abs_prob_delta=delta,
                      mean_abs_prob_delta=delta / 10, max_abs_logit_delta=delta, balanced_accuracy_drop=drop)


def _run(needed, max_steps=8, fraction=1.0):
    """Candidates pass once at least ``needed`` of the ranked layers are float."""
    calls = []

    def try_mix(float_layers):
        calls.append(len(float_layers))
        assert tuple(LAYERS[:len(float_layers)]) == float_layers, "float layers are a prefix of the ranking"
        return _cmp(1.0 if len(float_layers) >= needed else 0.98)

    result = greedy_fallback(lambda: LAYERS, try_mix, Tolerance(min_agreement=0.99, confidence=0), max_steps=max_steps,
                             max_float_fraction=fraction, log=lambda _m: None)
    return result, calls


def test_all_int8_passing_needs_no_ranking():
    ranked = []
    result = greedy_fallback(lambda: ranked.append(1) or LAYERS, lambda f: _cmp(1.0), Tolerance(confidence=0),
                             log=lambda _m: None)
    assert result.chosen.float_layers == () and len(result.steps) == 1 and not ranked


@pytest.mark.parametrize("needed", [1, 2, 3, 5, 6, 11, 13])
def test_finds_the_smallest_passing_prefix(needed):
    result, calls = _run(needed)
    assert result.chosen is not None and len(result.chosen.float_layers) == needed
    assert calls[0] == 0 and len(calls) - 1 <= 8


def test_bounded_work_may_stop_above_the_minimum():
    result, calls = _run(needed=11, max_steps=6)  # 1,2,4,8,16 then one bisection step (12)
    assert len(calls) - 1 == 6 and len(result.chosen.float_layers) == 12


def test_gives_up_at_the_float_fraction_cap():
    result, calls = _run(needed=15, fraction=0.5)
    assert result.chosen is None and max(calls) == 10 and result.max_float == 10
    assert "up to 10 layer(s) in float" in result.summary()


def test_budget_violations_name_each_broken_limit():
    tol = Tolerance(min_agreement=0.995, max_balanced_accuracy_drop=0.003, max_abs_prob_delta=1e-3, confidence=0)
    assert budget_violations(_cmp(1.0, 0.0, 1e-4), tol) == []
    problems = budget_violations(_cmp(0.99, 0.01, 0.2), tol)
    assert len(problems) == 3 and "agreement observed 99.00% ≥ 99.50%: FAIL" in problems[0]
    assert "1.00 pts ≤ 0.30 pts" in problems[1] and "max |Δprob|" in problems[2]
    # without labels there is no balanced-accuracy drop to judge
    assert budget_violations(_cmp(1.0, None, 1e-4), tol) == []
