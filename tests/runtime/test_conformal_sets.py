"""Conformal prediction sets in the runtime: the manifest's rule applied to the probabilities."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tlc_runtime
from tlc_runtime.conformal import prediction_sets, scores
from tlc_runtime.errors import SchemaError
from tlc_runtime.manifest import MANIFEST_NAME, Calibration, ConformalRule, read_manifest
from tlc_runtime.results import predictions_from_logits, softmax

NAMES = ("a", "b", "c", "d")


@pytest.mark.parametrize("method", ["lac", "aps"])
@pytest.mark.parametrize("threshold", [0.0, 0.05, 0.5, 0.9, 1.0])
def test_sets_always_hold_the_top_class_and_only_the_classes_within_the_threshold(method, threshold):
    logits = np.random.default_rng(1).normal(0, 3, (500, len(NAMES)))
    probs = softmax(logits)
    rule = ConformalRule(method=method, coverage=0.9, threshold=threshold, n_calibration=100)
    member = prediction_sets(probs, rule)
    top = probs.argmax(axis=1)
    assert member[np.arange(len(probs)), top].all()
    every = scores(probs, method)  # N×K: the score each class would have were it the true one
    assert (member == ((every <= threshold) | (np.arange(len(NAMES)) == top[:, None]))).all()


def test_lac_and_aps_scores_follow_their_definitions():
    probs = np.array([[0.6, 0.3, 0.1]])
    np.testing.assert_allclose(scores(probs, "lac"), [[0.4, 0.7, 0.9]])
    np.testing.assert_allclose(scores(probs, "aps"), [[0.6, 0.9, 1.0]])  # mass up to and including the class


def test_predictions_carry_the_set_and_abstain_when_it_holds_more_than_one_label():
    logits = np.log(np.array([[0.7, 0.2, 0.06, 0.04], [0.97, 0.01, 0.01, 0.01]]))
    rule = ConformalRule(method="lac", coverage=0.9, threshold=0.85, n_calibration=50)
    first, second = predictions_from_logits(logits, NAMES, rule)
    assert first.prediction_set == ["a", "b"] and first.abstain
    assert second.prediction_set == ["a"] and not second.abstain
    assert first.to_dict()["prediction_set"] == ["a", "b"] and first.to_dict()["abstain"] is True


def test_without_a_rule_there_is_no_set_and_no_abstention():
    pred = predictions_from_logits(np.array([[0.0, 1.0, 0.5, 0.2]]), NAMES)[0]
    assert pred.prediction_set is None and pred.abstain is False
    assert pred.to_dict()["prediction_set"] is None


def test_an_old_manifest_stays_byte_identical_and_predicts_without_a_set(grey_bundle, grey_clf):
    text = (grey_bundle.path / MANIFEST_NAME).read_text()
    assert "conformal" not in text and "calibration" not in text
    manifest = read_manifest(grey_bundle.path)
    assert manifest.conformal is None and manifest.calibration is None
    assert manifest.to_json() == text
    pred = grey_clf.predict(np.zeros((8, 8), np.uint8))
    assert pred.prediction_set is None and pred.abstain is False


def test_a_bundle_with_a_rule_returns_sets_from_predict_and_predict_batch(make_bundle):
    bundle = make_bundle()
    rule = ConformalRule(method="aps", coverage=0.9, threshold=0.8, n_calibration=200)
    calibration = Calibration(temperature=1.5, ece_before=0.1, ece_after=0.02, nll_before=0.5, nll_after=0.4)
    bundle.write_manifest(dataclasses.replace(bundle.manifest, conformal=rule, calibration=calibration))
    assert read_manifest(bundle.path).conformal == rule
    clf = tlc_runtime.load(bundle.path, backend="onnxruntime", device="cpu")
    images = np.random.default_rng(3).integers(0, 256, (20, 8, 8)).astype(np.uint8)
    preds = clf.predict_batch(images)
    probs = softmax(bundle.reference_logits(images[..., None]))
    expected = prediction_sets(probs, rule)
    for pred, row in zip(preds, expected, strict=True):
        assert pred.prediction_set == [n for n, keep in zip(clf.class_names, row, strict=True) if keep]
        assert pred.label in pred.prediction_set and pred.abstain == (len(pred.prediction_set) > 1)
    assert clf.predict(images[0]).prediction_set == preds[0].prediction_set


@pytest.mark.parametrize("change, said", [({"method": "raps"}, "not one of"),
                                          ({"coverage": 1.0}, "coverage"),
                                          ({"threshold": 1.5}, "threshold"),
                                          ({"n_calibration": 0}, "n_calibration")])
def test_a_broken_rule_is_a_schema_error(make_bundle, change, said):
    bundle = make_bundle()
    rule = ConformalRule(method="lac", coverage=0.9, threshold=0.5, n_calibration=10)
    bundle.write_manifest(dataclasses.replace(bundle.manifest, conformal=rule))
    doc = json.loads((bundle.path / MANIFEST_NAME).read_text())
    doc["conformal"].update(change)
    (bundle.path / MANIFEST_NAME).write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match=said):
        read_manifest(bundle.path)


def test_a_temperature_must_be_positive():
    with pytest.raises(ValueError, match="temperature"):
        Calibration(temperature=0.0, ece_before=0, ece_after=0, nll_before=0, nll_after=0)
