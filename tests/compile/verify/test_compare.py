"""Comparison statistics on constructed outputs whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest
from tlc.verify.compare import balanced_accuracy, compare_logits, softmax


def test_identical_outputs_agree_fully():
    logits = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    labels = logits.argmax(1)
    c = compare_logits(logits, logits.copy(), labels)
    assert c.agreement == 1.0 and c.flip_rate == 0.0
    assert c.max_abs_prob_delta == 0.0 and c.balanced_accuracy_drop == 0.0
    assert c.balanced_accuracy_reference == 1.0


def test_flips_and_accuracy_change_are_counted():
    ref = np.array([[2, 0], [2, 0], [0, 2], [0, 2]], dtype=np.float32)
    cand = ref.copy()
    cand[3] = [2, 0]  # one class-1 image flips to class 0
    labels = np.array([0, 0, 1, 1])
    c = compare_logits(ref, cand, labels, bootstrap=200)
    assert c.agreement == 0.75 and c.flip_rate == 0.25
    assert c.balanced_accuracy_reference == 1.0
    assert c.balanced_accuracy_candidate == pytest.approx(0.75)
    assert c.balanced_accuracy_drop == pytest.approx(0.25)
    assert c.recall_candidate == (1.0, 0.5)
    lo, hi = c.balanced_accuracy_drop_ci95
    assert lo <= 0.25 <= hi
    expected_delta = float(np.abs(softmax(ref) - softmax(cand)).max())
    assert c.max_abs_prob_delta == pytest.approx(expected_delta)


def test_balanced_accuracy_weighs_classes_equally():
    labels = np.array([0] * 9 + [1])
    preds = np.zeros(10, dtype=int)  # always the majority class
    assert balanced_accuracy(labels, preds, 2) == pytest.approx(0.5)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError):
        compare_logits(np.zeros((3, 2)), np.zeros((3, 3)))
