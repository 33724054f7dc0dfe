"""build_bundle calibrates and computes prediction sets: the manifest records them, the graph divides by
T, the reliability diagram is in the bundle, predict returns sets and verify reports coverage."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tlc_runtime
from tlc.bundler.builder import build_bundle
from tlc.bundler.trust import RELIABILITY_FILE, TrustOptions
from tlc.cli.main import run
from tlc.errors import ConfigError
from tlc_runtime.manifest import MANIFEST_NAME


def _quiet(_message: str) -> None:
    pass


def _reference(run_dir, split: str):
    """The run's uncalibrated PyTorch logits on ``split`` of its own data, with the labels."""
    from tlc.data import load_dataset
    from tlc.export.onnx_export import reference_logits
    from tlc.models.checkpoint import load_deploy_model

    model, info = load_deploy_model(run_dir)
    inputs, labels = load_dataset(info.data.source, seed=info.seed, **info.data_options()).arrays(split, info.img_size)
    return inputs, labels, reference_logits(model, inputs)


@pytest.fixture(scope="module")
def trusted_bundle(ten_class_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("trust") / "bundle"
    return build_bundle(ten_class_run, "x86-cpu", out, log=_quiet)


def test_a_validation_split_without_an_interior_optimum_keeps_t_1(tiny_run_dir, tmp_path):
    """Digits 0 and 1, every validation image right with a margin: the NLL falls as T → 0, and a fit at
    its bound would sharpen every probability twentyfold on no evidence; the build keeps T = 1."""
    said = []
    result = build_bundle(tiny_run_dir, "x86-cpu", tmp_path / "bundle", log=said.append)
    assert result.manifest.calibration is None
    assert any("keeping T = 1" in line for line in said)


def test_the_manifest_records_the_temperature_and_the_artifacts_own_conformal_rule(trusted_bundle, ten_class_run):
    manifest = trusted_bundle.manifest
    cal, rule = manifest.calibration, manifest.conformal
    assert cal is not None and cal.temperature > 0 and cal.nll_after <= cal.nll_before + 1e-9
    assert (rule.method, rule.coverage) == ("lac", 0.9)
    inputs, labels, _ = _reference(ten_class_run, "val")
    assert rule.n_calibration == len(labels)
    clf = tlc_runtime.load(trusted_bundle.bundle, backend="onnxruntime", device="cpu")
    from tlc.bundler.conformal import conformal_rule
    from tlc_runtime.results import softmax

    assert conformal_rule(softmax(clf.predict_logits(inputs)), labels, "lac", 0.9) == rule
    saved = json.loads((trusted_bundle.bundle / MANIFEST_NAME).read_text())
    assert saved["calibration"]["temperature"] == cal.temperature and saved["conformal"]["method"] == "lac"


def test_the_bundle_graph_divides_the_reference_logits_by_t(trusted_bundle, ten_class_run):
    inputs, _, reference = _reference(ten_class_run, "test")
    clf = tlc_runtime.load(trusted_bundle.bundle, backend="onnxruntime", device="cpu")
    temperature = trusted_bundle.manifest.calibration.temperature
    np.testing.assert_allclose(clf.predict_logits(inputs), reference / np.float32(temperature), rtol=1e-4, atol=1e-4)
    golden = np.load(trusted_bundle.bundle / "golden.npz")
    np.testing.assert_allclose(clf.predict_logits(golden["inputs"]), golden["logits"], rtol=1e-4, atol=1e-4)


def test_the_reliability_diagram_and_the_report_are_in_the_bundle(trusted_bundle):
    entry = trusted_bundle.manifest.files["reliability_diagram"]
    assert entry.path == RELIABILITY_FILE
    assert (trusted_bundle.bundle / RELIABILITY_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((trusted_bundle.bundle / "reports" / "build.json").read_text())
    assert report["calibration"]["temperature"] == trusted_bundle.manifest.calibration.temperature
    assert set(report["calibration"]["test"]) >= {"ece_before", "ece_after"}
    assert set(report["conformal"]["test"]) >= {"empirical_coverage", "mean_set_size"}


def test_predictions_carry_a_set_holding_the_top_class(trusted_bundle, ten_class_run, capsys, tmp_path):
    inputs, _, _ = _reference(ten_class_run, "test")
    clf = tlc_runtime.load(trusted_bundle.bundle, backend="onnxruntime", device="cpu")
    for pred in clf.predict_batch(inputs[..., 0]):
        assert pred.label in pred.prediction_set and pred.abstain == (len(pred.prediction_set) > 1 or pred.ood)
    np.save(tmp_path / "one.npy", inputs[0, ..., 0])
    assert run(["predict", str(trusted_bundle.bundle), str(tmp_path / "one.npy"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)[0]
    assert shown["label"] in shown["prediction_set"] and isinstance(shown["abstain"], bool)


def test_verify_reports_ece_coverage_and_set_size(trusted_bundle, ten_class_run, tmp_path, capsys):
    source = json.loads((ten_class_run / "run.json").read_text())["data"]["source"]
    report = tmp_path / "verify.json"
    code = run(["verify", str(trusted_bundle.bundle), "--data", source, "--json", str(report)])
    out = capsys.readouterr().out
    assert code in (0, 1)
    result = json.loads(report.read_text())
    assert result["calibration"]["temperature"] == trusted_bundle.manifest.calibration.temperature
    assert 0 <= result["conformal"]["empirical_coverage"] <= 1 and result["conformal"]["mean_set_size"] >= 1
    assert result["comparison"]["agreement"] == 1.0  # like with like: the reference is divided by T too
    assert "ECE" in out and "empirical coverage" in out and "mean set size" in out


def test_no_calibrate_keeps_the_models_own_logits(ten_class_run, tmp_path):
    result = build_bundle(ten_class_run, "x86-cpu", tmp_path / "bundle", trust=TrustOptions(calibrate=False),
                          log=_quiet)
    assert result.manifest.calibration is None and result.manifest.conformal is not None
    assert "calibration" not in json.loads((tmp_path / "bundle" / MANIFEST_NAME).read_text())
    inputs, _, reference = _reference(ten_class_run, "test")
    clf = tlc_runtime.load(result.bundle, backend="onnxruntime", device="cpu")
    np.testing.assert_allclose(clf.predict_logits(inputs), reference, rtol=1e-4, atol=1e-4)


def test_a_coverage_outside_0_1_is_a_user_error(ten_class_run, tmp_path, capsys):
    code = run(["build", str(ten_class_run), "--target", "x86-cpu", "--out", str(tmp_path / "b"), "--coverage", "1"])
    assert code == 2 and "coverage 1 must be within 0..1" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="needs at least 999"):
        build_bundle(ten_class_run, "x86-cpu", tmp_path / "b", trust=TrustOptions(coverage=0.999, required=True),
                     log=_quiet)
    assert not (tmp_path / "b").exists()


def test_a_default_build_on_too_few_validation_images_ships_without_sets(ten_class_run, tmp_path):
    """Sets nobody asked for do not block a build: too few validation images for them gives a bundle
    without sets, and the log and the report say why."""
    said = []
    result = build_bundle(ten_class_run, "x86-cpu", tmp_path / "b", trust=TrustOptions(coverage=0.999),
                          log=said.append)
    assert result.manifest.conformal is None and "skipped" in result.report["conformal"]
    assert any("no prediction sets" in line for line in said)
    clf = tlc_runtime.load(result.bundle)
    assert clf.predict(np.zeros((8, 8), np.uint8)).prediction_set is None
