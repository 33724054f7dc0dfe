"""MC-dropout uncertainty in the runtime: the manifest's section, the graph's extra outputs read into
``Prediction.uncertainty``, and abstention above the epistemic threshold."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from tlc_runtime.errors import BundleError, SchemaError
from tlc_runtime.manifest import MANIFEST_NAME, ConformalRule, OutputSpec, UncertaintyRule, read_manifest
from tlc_runtime.results import predictions_from_logits, predictions_from_outputs
from tlc_runtime.uncertainty import uncertainty, with_uncertainty

NAMES = ("a", "b", "c")
RULE = UncertaintyRule(samples=16, rate=0.3, where="head", seed=0, epistemic_threshold=0.1)


def _outputs() -> dict[str, np.ndarray]:
    return {"logits": np.log(np.array([[0.9, 0.05, 0.05], [0.5, 0.3, 0.2], [0.4, 0.35, 0.25]])),
            "total": np.array([0.39, 1.03, 1.08], np.float32),
            "aleatoric": np.array([0.35, 0.98, 0.70], np.float32),
            "epistemic": np.array([0.04, 0.05, 0.38], np.float32)}


def test_predictions_carry_uncertainty_and_abstain_above_the_epistemic_threshold():
    outputs = _outputs()
    preds = with_uncertainty(predictions_from_logits(outputs["logits"], NAMES), outputs, RULE)
    assert [p.abstain for p in preds] == [False, False, True]
    for pred, i in zip(preds, range(3), strict=True):
        assert pred.uncertainty == pytest.approx({k: float(outputs[k][i]) for k in ("aleatoric", "epistemic", "total")})
    shown = json.loads(json.dumps(preds[2].to_dict()))
    assert shown["abstain"] is True and set(shown["uncertainty"]) == {"aleatoric", "epistemic", "total"}


def test_a_set_with_several_labels_still_abstains_below_the_threshold():
    outputs = _outputs()
    sets = ConformalRule(method="lac", coverage=0.9, threshold=0.75, n_calibration=50)
    preds = with_uncertainty(predictions_from_logits(outputs["logits"], NAMES, sets), outputs, RULE)
    assert preds[1].prediction_set == ["a", "b"] and preds[1].abstain  # epistemic 0.05 < 0.1


def test_without_a_rule_there_is_no_uncertainty_and_no_extra_abstention():
    outputs = _outputs()
    preds = with_uncertainty(predictions_from_logits(outputs["logits"], NAMES), outputs, None)
    assert all(p.uncertainty is None and not p.abstain for p in preds)
    assert preds[0].to_dict()["uncertainty"] is None
    assert uncertainty({"logits": outputs["logits"]}, None, 3)[0] == [None] * 3


def test_a_rule_without_its_graph_outputs_is_a_bundle_error():
    with pytest.raises(BundleError, match="epistemic"):
        uncertainty({"logits": np.zeros((2, 3)), "total": np.zeros(2), "aleatoric": np.zeros(2)}, RULE, 2)


def _with_uncertainty_outputs(manifest, rule=RULE):
    """``manifest`` listing the three uncertainty outputs after its logits, with ``rule``."""
    scores = tuple(OutputSpec(name=n, activation=None, kind="score") for n in ("total", "aleatoric", "epistemic"))
    golden = dataclasses.replace(manifest.golden, atol_outputs={n.name: 1e-4 for n in scores})
    return dataclasses.replace(manifest, outputs=(manifest.outputs[0], *scores), golden=golden, uncertainty=rule)


def test_the_section_round_trips_and_old_manifests_have_none(make_bundle, grey_bundle):
    assert "uncertainty" not in (grey_bundle.path / MANIFEST_NAME).read_text()
    assert read_manifest(grey_bundle.path).uncertainty is None
    bundle = make_bundle()
    bundle.write_manifest(_with_uncertainty_outputs(bundle.manifest))
    assert read_manifest(bundle.path).uncertainty == RULE


def test_predictions_from_outputs_apply_the_manifests_rule(make_bundle):
    manifest = _with_uncertainty_outputs(make_bundle().manifest)
    outputs = _outputs()
    preds = predictions_from_outputs(outputs, dataclasses.replace(manifest, class_names=NAMES))
    assert [p.abstain for p in preds] == [False, False, True]
    assert preds[2].uncertainty["epistemic"] == pytest.approx(0.38)


def test_a_section_without_its_graph_outputs_is_refused(make_bundle):
    bundle = make_bundle()
    data = json.loads(bundle.manifest.to_json())
    data["uncertainty"] = dataclasses.asdict(RULE)
    (bundle.path / MANIFEST_NAME).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SchemaError, match="total, aleatoric and epistemic"):
        read_manifest(bundle.path)


@pytest.mark.parametrize("change, said", [({"samples": 1}, "samples"), ({"rate": 1.0}, "rate"),
                                          ({"where": "stem"}, "not one of"),
                                          ({"epistemic_threshold": -0.1}, "epistemic_threshold")])
def test_a_bad_section_is_a_schema_error(make_bundle, change, said):
    bundle = make_bundle()
    data = json.loads(_with_uncertainty_outputs(bundle.manifest).to_json())
    data["uncertainty"] = {**dataclasses.asdict(RULE), **change}
    (bundle.path / MANIFEST_NAME).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SchemaError, match=said):
        read_manifest(bundle.path)
