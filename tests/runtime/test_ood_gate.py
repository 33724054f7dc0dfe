"""The OOD gate in the runtime: the manifest's ``ood`` rule turns the graph's ood_score output into
``Prediction.ood`` / ``ood_score`` and abstention (``tlc_runtime.ood``, ``predictions_from_outputs``)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from tlc_runtime.errors import BundleError, SchemaError
from tlc_runtime.manifest import MANIFEST_NAME, ConformalRule, OodRule, OutputSpec, read_manifest
from tlc_runtime.ood import with_ood
from tlc_runtime.results import predictions_from_logits, predictions_from_outputs

NAMES = ("normal", "pneumonia")
RULE = OodRule(score="combined", threshold=2.5, acceptance=0.95, n_fit=3882, n_threshold=524)
SCORES = ("energy", "mahalanobis", "ood_score")


def _with_ood_outputs(manifest, rule=RULE):
    """``manifest`` listing the gate's three score outputs after its logits, with ``rule``."""
    scores = tuple(OutputSpec(name=n, activation=None, kind="score") for n in SCORES)
    golden = dataclasses.replace(manifest.golden, atol_outputs={n.name: 1e-4 for n in scores})
    return dataclasses.replace(manifest, outputs=(manifest.outputs[0], *scores), golden=golden, ood=rule)


def _outputs(scores) -> dict[str, np.ndarray]:
    n = len(scores)
    logits = np.array([[4.0, -4.0], [4.0, -4.0], [-3.0, 3.0], [0.1, 0.0]])[:n]
    return {"logits": logits, "energy": np.zeros(n, np.float32), "mahalanobis": np.zeros(n, np.float32),
            "ood_score": np.asarray(scores, np.float32)}


def test_the_rule_round_trips_and_old_manifests_have_none(make_bundle):
    bundle = make_bundle()
    assert read_manifest(bundle.path).ood is None
    assert '"ood"' not in (bundle.path / MANIFEST_NAME).read_text()
    bundle.write_manifest(_with_ood_outputs(bundle.manifest))
    assert read_manifest(bundle.path).ood == RULE


@pytest.mark.parametrize("change, said", [({"score": "softmax"}, "not one of"),
                                          ({"acceptance": 1.0}, "acceptance"),
                                          ({"threshold": "nan"}, "threshold"),
                                          ({"n_fit": 0}, "n_fit")])
def test_a_broken_rule_is_a_schema_error(make_bundle, change, said):
    bundle = make_bundle()
    bundle.write_manifest(_with_ood_outputs(bundle.manifest))
    doc = json.loads((bundle.path / MANIFEST_NAME).read_text())
    doc["ood"].update(change)
    (bundle.path / MANIFEST_NAME).write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match=said):
        read_manifest(bundle.path)


def test_a_rule_without_its_graph_output_is_refused(make_bundle):
    bundle = make_bundle()
    data = json.loads(bundle.manifest.to_json())
    data["ood"] = dataclasses.asdict(RULE)
    (bundle.path / MANIFEST_NAME).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SchemaError, match="ood section needs graph output ood_score"):
        read_manifest(bundle.path)
    with pytest.raises(BundleError, match="ood_score"):
        with_ood(predictions_from_logits(np.zeros((1, 2)), NAMES), {"logits": np.zeros((1, 2))}, RULE)


def test_predictions_from_outputs_are_ood_above_the_threshold_and_then_abstain(make_bundle):
    manifest = dataclasses.replace(_with_ood_outputs(make_bundle().manifest), class_names=NAMES)
    scores = [RULE.threshold - 1, RULE.threshold + 1e-3, RULE.threshold]
    preds = predictions_from_outputs(_outputs(scores), manifest)
    assert [p.ood for p in preds] == [False, True, False]  # at the threshold: accepted
    assert [p.abstain for p in preds] == [False, True, False]
    assert [p.ood_score for p in preds] == pytest.approx(np.float32(scores).tolist())
    shown = json.loads(json.dumps(preds[1].to_dict()))
    assert shown["ood"] is True and shown["ood_score"] == pytest.approx(np.float32(scores[1]))


def test_abstain_keeps_the_set_rule_and_a_bundle_without_gate_says_none(make_bundle):
    manifest = dataclasses.replace(_with_ood_outputs(make_bundle().manifest), class_names=NAMES,
                                   conformal=ConformalRule(method="lac", coverage=0.9, threshold=0.6,
                                                           n_calibration=50))
    outputs = _outputs([0.0, 0.0, 0.0, 0.0])
    preds = predictions_from_outputs(outputs, manifest)
    assert [p.abstain for p in preds] == [False, False, False, True] and not any(p.ood for p in preds)
    plain = predictions_from_outputs(outputs, dataclasses.replace(manifest, ood=None))
    assert all(p.ood is None and p.ood_score is None for p in plain)
    assert plain[0].to_dict()["ood"] is None and plain[0].to_dict()["ood_score"] is None
