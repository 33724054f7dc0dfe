"""Graphs with more than one output: the logits first, then scores the manifest lists by name."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tlc_runtime
from tlc_runtime.manifest import OutputSpec

pytest.importorskip("onnxruntime")


def _load(bundle, backend="onnxruntime", **kwargs):
    return tlc_runtime.load(bundle.path, backend=backend, device="cpu", **kwargs)


def test_every_output_comes_back_by_name_with_the_logits_first(make_bundle):
    bundle = make_bundle(score_output=True)  # the graph lists "score" before "logits"
    clf = _load(bundle)
    batch = bundle.golden_inputs[:5]
    outputs = clf.predict_outputs(batch)
    assert list(outputs) == ["logits", "score"]
    expected = bundle.reference_logits(batch)
    np.testing.assert_allclose(outputs["logits"], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(outputs["score"], expected.max(axis=1), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(clf.predict_logits(batch), outputs["logits"])
    assert clf.predict_batch(list(batch))[0].label == bundle.manifest.class_names[int(expected[0].argmax())]


def test_max_batch_chunks_keep_every_output(make_bundle):
    bundle = make_bundle(score_output=True)
    whole = _load(bundle).predict_outputs(bundle.golden_inputs)
    chunked = _load(bundle, options={"max_batch": 3}).predict_outputs(bundle.golden_inputs)
    for name in whole:
        np.testing.assert_array_equal(chunked[name], whole[name])


def test_golden_check_covers_the_extra_outputs(make_bundle):
    bundle = make_bundle(score_output=True)
    report = _load(bundle).check()
    assert report.passed and set(report.max_abs_output_delta) == {"score"}
    assert report.max_abs_output_delta["score"] <= 1e-4
    # the recorded score drifts by more than its tolerance: the check fails on that output alone
    with np.load(bundle.path / "golden.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["out_score"] = arrays["out_score"] + np.float32(1e-2)
    np.savez(bundle.path / "golden.npz", **arrays)
    bundle.rehash()
    report = _load(bundle).check()
    assert not report.passed and report.max_abs_prob_delta <= report.atol_prob
    assert "max |dscore|" in report.summary()


def test_a_backend_that_misses_a_listed_output_is_refused(make_bundle):
    bundle = make_bundle()  # one-output graph
    with np.load(bundle.path / "golden.npz") as data:
        arrays = {k: data[k] for k in data.files}
    np.savez(bundle.path / "golden.npz", **arrays, out_score=arrays["logits"].max(axis=1))
    bundle.rehash()
    manifest = bundle.manifest
    bundle.write_manifest(dataclasses.replace(
        manifest, outputs=(*manifest.outputs, OutputSpec(name="score", activation=None, kind="score")),
        golden=dataclasses.replace(manifest.golden, atol_outputs={"score": 1.0})))
    clf = _load(bundle)
    with pytest.raises(tlc_runtime.InferenceError, match="no 'score' output"):
        clf.predict_outputs(bundle.golden_inputs[:2])


def test_version_1_manifests_still_load(make_bundle):
    bundle = make_bundle()
    path = bundle.path / "manifest.json"
    data = json.loads(path.read_text())
    data["schema_version"] = 1
    data["output"] = data.pop("outputs")[0]
    path.write_text(json.dumps(data))
    clf = _load(bundle)
    assert clf.manifest.schema_version == 2 and clf.manifest.extra_outputs == ()
    assert clf.check().passed


def test_a_newer_schema_is_refused_with_its_version(make_bundle):
    bundle = make_bundle()
    path = bundle.path / "manifest.json"
    data = json.loads(path.read_text())
    data["schema_version"] = 3
    path.write_text(json.dumps(data))
    with pytest.raises(tlc_runtime.SchemaError, match="schema_version 3 is not supported.*upgrade tlc-runtime"):
        _load(bundle)


@pytest.mark.parametrize(("outputs", "atol", "message"), [
    ([{"name": "score", "activation": None, "kind": "score"}], {}, "first output must be the logits"),
    ([{"name": "logits"}, {"name": "logits", "activation": None, "kind": "score"}], {"logits": 1.0}, "not unique"),
    ([{"name": "logits"}, {"name": "s"}], {"s": 1.0}, "only the first output"),
    ([{"name": "logits"}, {"name": "s", "activation": None, "kind": "score"}], {}, "atol_outputs covers"),
    ([{"name": "logits"}, {"name": "bad name", "activation": None, "kind": "score"}], {"bad name": 1.0},
     "letters, digits and underscores"),
])
def test_inconsistent_outputs_are_refused(make_bundle, outputs, atol, message):
    bundle = make_bundle()
    path = bundle.path / "manifest.json"
    data = json.loads(path.read_text())
    data["outputs"] = outputs
    data["golden"]["atol_outputs"] = atol
    path.write_text(json.dumps(data))
    with pytest.raises(tlc_runtime.TlcRuntimeError, match=message):
        _load(bundle)


def test_openvino_returns_the_same_outputs(make_bundle):
    pytest.importorskip("openvino")
    bundle = make_bundle(score_output=True)
    ort = _load(bundle).predict_outputs(bundle.golden_inputs)
    ov = _load(bundle, backend="openvino", options={"INFERENCE_PRECISION_HINT": "f32"}).predict_outputs(
        bundle.golden_inputs)
    assert list(ov) == ["logits", "score"]
    for name in ort:
        np.testing.assert_allclose(ov[name], ort[name], rtol=1e-4, atol=1e-4)
