"""The OOD gate in the runtime: the manifest's ``ood`` rule turns the graph's ood_score into a flag."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from tlc_runtime.errors import SchemaError
from tlc_runtime.manifest import MANIFEST_NAME, ConformalRule, OodRule, read_manifest
from tlc_runtime.results import predictions_from_logits

NAMES = ("normal", "pneumonia")
RULE = OodRule(score="combined", threshold=2.5, acceptance=0.95, n_fit=3882, n_threshold=524)


def test_the_rule_round_trips_and_old_manifests_have_none(make_bundle):
    bundle = make_bundle()
    assert read_manifest(bundle.path).ood is None
    assert '"ood"' not in (bundle.path / MANIFEST_NAME).read_text()
    bundle.write_manifest(dataclasses.replace(bundle.manifest, ood=RULE))
    assert read_manifest(bundle.path).ood == RULE


@pytest.mark.parametrize("change, said", [({"score": "softmax"}, "not one of"),
                                          ({"acceptance": 1.0}, "acceptance"),
                                          ({"threshold": "nan"}, "threshold"),
                                          ({"n_fit": 0}, "n_fit")])
def test_a_broken_rule_is_a_schema_error(make_bundle, change, said):
    bundle = make_bundle()
    bundle.write_manifest(dataclasses.replace(bundle.manifest, ood=RULE))
    doc = json.loads((bundle.path / MANIFEST_NAME).read_text())
    doc["ood"].update(change)
    (bundle.path / MANIFEST_NAME).write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match=said):
        read_manifest(bundle.path)


def test_predictions_are_ood_above_the_threshold_and_then_abstain():
    logits = np.array([[4.0, -4.0], [4.0, -4.0], [-3.0, 3.0]])
    scores = np.array([RULE.threshold - 1, RULE.threshold + 1e-3, RULE.threshold], np.float32)
    preds = predictions_from_logits(logits, NAMES, ood=RULE, ood_scores=scores)
    assert [p.ood for p in preds] == [False, True, False]  # at the threshold: accepted
    assert [p.abstain for p in preds] == [False, True, False]
    assert [p.ood_score for p in preds] == pytest.approx(scores.tolist())
    assert preds[1].to_dict()["ood"] is True and preds[1].to_dict()["ood_score"] == pytest.approx(scores[1])


def test_abstain_keeps_the_set_rule_and_a_bundle_without_gate_says_none():
    logits = np.array([[0.1, 0.0], [5.0, -5.0]])
    sets = ConformalRule(method="lac", coverage=0.9, threshold=0.6, n_calibration=50)
    preds = predictions_from_logits(logits, NAMES, sets, ood=RULE, ood_scores=np.zeros(2))
    assert [p.abstain for p in preds] == [True, False] and [p.ood for p in preds] == [False, False]
    plain = predictions_from_logits(logits, NAMES)
    assert all(p.ood is None and p.ood_score is None for p in plain)
    assert plain[0].to_dict()["ood"] is None
