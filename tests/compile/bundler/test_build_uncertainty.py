"""``tlc build --mc-samples``: which K a build uses, the refusal for runs without MC dropout, and the
per-artifact epistemic threshold."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tlc.bundler.builder import build_bundle
from tlc.bundler.trust import TrustOptions
from tlc.bundler.uncertainty import DEFAULT_SAMPLES, mc_samples, rule_and_report, uncertainty_rule
from tlc.cli.main import run
from tlc.errors import ConfigError
from tlc.runs import McDropout, read_run_info


@pytest.fixture(scope="module")
def plain_info(tiny_run_dir):
    return read_run_info(tiny_run_dir)


def test_k_defaults_to_16_with_mc_dropout_and_to_off_without(plain_info):
    mc_info = dataclasses.replace(plain_info, mc_dropout=McDropout(0.3, "head"))
    assert mc_samples(plain_info, None) is None
    assert mc_samples(mc_info, None) == DEFAULT_SAMPLES == 16
    assert mc_samples(mc_info, 4) == 4
    with pytest.raises(ConfigError, match="at least 2"):
        mc_samples(mc_info, 1)
    assert mc_samples(mc_info, 0) is None  # --mc-samples 0: a plain bundle from an MC run


def test_tensorrt_targets_export_no_mc_samples_and_say_so(plain_info):
    mc_info = dataclasses.replace(plain_info, mc_dropout=McDropout(0.3, "head"))
    said = []
    assert mc_samples(mc_info, None, "tensorrt", said.append) is None
    assert any("single-output" in line for line in said)
    with pytest.raises(ConfigError, match="single-output"):
        mc_samples(mc_info, 8, "tensorrt")


def test_k_for_a_run_without_mc_dropout_is_refused_before_building(tiny_run_dir, tmp_path):
    out = tmp_path / "bundle"
    with pytest.raises(ConfigError, match="--mc-dropout"):
        build_bundle(tiny_run_dir, "x86-cpu", out, trust=TrustOptions(mc_samples=8), log=lambda _m: None)
    assert not out.exists()


def test_cli_mc_samples_without_mc_dropout_exits_2_with_one_line(tiny_run_dir, tmp_path, capsys):
    assert run(["build", str(tiny_run_dir), "-t", "x86-cpu", "-o", str(tmp_path / "b"), "--mc-samples", "8"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "--mc-dropout" in lines[0]


def test_epistemic_threshold_is_the_95th_percentile_of_the_artifacts_validation_values(plain_info):
    info = dataclasses.replace(plain_info, mc_dropout=McDropout(0.25, "head+stage"))
    val = np.random.default_rng(0).gamma(2.0, 0.01, 400).astype(np.float32)
    rule = uncertainty_rule(info, 8, val)
    assert (rule.samples, rule.rate, rule.where, rule.seed) == (8, 0.25, "head+stage", info.seed)
    assert np.mean(val > rule.epistemic_threshold) == pytest.approx(0.05, abs=1 / len(val))
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    test = {"logits": logits, "epistemic": np.array([0.0, rule.epistemic_threshold * 2, 0.01]),
            "aleatoric": np.ones(3), "total": np.ones(3)}
    val_outputs = {"epistemic": val}
    again, report = rule_and_report(info, 8, val_outputs, test, np.array([0, 0, 0]), lambda _m: None)
    assert again == rule
    shown = report["uncertainty"]["test"]
    assert shown["above_threshold"] == pytest.approx(1 / 3) and shown["n"] == 3
    assert shown["mean_epistemic"] == pytest.approx(test["epistemic"].mean())
    assert (shown["accuracy_below"], shown["accuracy_above"]) == (1.0, 0.0)
    assert rule_and_report(plain_info, None, val_outputs, test, np.zeros(3), print) == (None, {})


def test_the_summary_line_names_the_mean_the_share_above_and_the_accuracies():
    from tlc.verify.uncertainty import uncertainty_line

    line = uncertainty_line({"samples": 16, "n": 200, "mean_epistemic": 0.0123, "above_threshold": 0.05,
                             "epistemic_threshold": 0.04, "accuracy_below": 0.9, "accuracy_above": None})
    assert "16 samples" in line and "0.0123" in line and "5.0% above the threshold 0.04" in line
    assert "90.0% below, — above" in line


@pytest.fixture(scope="module")
def mc_run(ten_class_run):
    """ten_class_run's data and recipe, trained with MC dropout 0.3 in the head and on the last stage's input."""
    from tlc.train import TrainConfig, train

    config = TrainConfig(arch="resnet18", img_size=16, epochs=1, batch_size=16, limit_train=160, patience=None,
                         mc_dropout=0.3, mc_dropout_where="head+stage")
    train(ten_class_run.parent / "digits.npz", ten_class_run.parent / "mc-run", config, progress=False)
    return ten_class_run.parent / "mc-run"


def _observed(target: str, precision: str):
    from tlc.targets import load_target

    tol = dataclasses.replace(load_target(target).tolerance(precision), confidence=0.0)
    if precision == "int8":  # a one-epoch model on 30 images a class: an INT8 margin it can meet
        tol = dataclasses.replace(tol, min_agreement=0.8, max_balanced_accuracy_drop=0.2)
    return tol


@pytest.mark.parametrize(("target", "precision"), [("x86-cpu", "fp32"), ("x86-cpu", "int8"), ("intel-cpu", "fp32")])
def test_an_mc_run_builds_a_bundle_with_uncertainty_end_to_end(mc_run, tmp_path, target, precision):
    import tlc_runtime
    from tlc.data import load_dataset

    if target == "intel-cpu":
        pytest.importorskip("openvino")
    result = build_bundle(mc_run, target, tmp_path / "bundle", precision=precision,
                          tolerance=_observed(target, precision), log=lambda _m: None)
    manifest, info = result.manifest, read_run_info(mc_run)
    assert manifest.extra_outputs == ("total", "aleatoric", "epistemic")
    assert set(manifest.golden.atol_outputs) == set(manifest.extra_outputs)
    rule = manifest.uncertainty
    assert (rule.samples, rule.rate, rule.where, rule.seed) == (DEFAULT_SAMPLES, 0.3, "head+stage", info.seed)
    clf = tlc_runtime.load(tmp_path / "bundle", check=True)
    assert clf.check().passed
    # the threshold is the 95th percentile of this artifact's own validation epistemic values
    val_images, _ = load_dataset(info.data.source, seed=info.seed, **info.data_options()).arrays("val", 16)
    val = clf.predict_outputs(val_images)
    assert rule.epistemic_threshold == pytest.approx(float(np.quantile(val["epistemic"], 0.95)), rel=1e-5, abs=1e-9)
    preds = clf.predict_batch(list(val_images[:40]))
    for pred, epistemic in zip(preds, val["epistemic"][:40], strict=True):
        assert pred.uncertainty["epistemic"] == pytest.approx(float(epistemic), rel=1e-5, abs=1e-7)
        above = pred.uncertainty["epistemic"] > rule.epistemic_threshold
        assert pred.abstain == (len(pred.prediction_set or ()) > 1 or above)
    test = result.report["uncertainty"]["test"]
    assert 0 <= test["above_threshold"] <= 1 and test["mean_epistemic"] >= 0


def test_verify_reports_the_bundles_uncertainty(mc_run, tmp_path, capsys):
    from tlc.verify.runner import verify

    out = tmp_path / "bundle"
    build_bundle(mc_run, "x86-cpu", out, tolerance=_observed("x86-cpu", "fp32"), log=lambda _m: None)
    result = verify(out, str(mc_run.parent / "digits.npz"), split="test", confidence=0.0, log=lambda _m: None)
    assert result.comparison.agreement == 1.0, "the reference must be the same MC-dropout graph"
    shown = result.extra["uncertainty"]
    assert shown["samples"] == DEFAULT_SAMPLES and 0 <= shown["above_threshold"] <= 1 and shown["n"] == 300
    assert run(["verify", str(out), "--data", str(mc_run.parent / "digits.npz"), "--confidence", "0"]) == 0
    assert "MC dropout (16 samples" in " ".join(capsys.readouterr().out.split())


def test_a_default_build_of_a_run_without_mc_dropout_has_no_uncertainty(tiny_run_dir, tmp_path):
    result = build_bundle(tiny_run_dir, "x86-cpu", tmp_path / "b", log=lambda _m: None)
    assert result.manifest.uncertainty is None
    assert not {"total", "aleatoric", "epistemic"} & set(result.manifest.extra_outputs)  # the OOD gate's are there
    assert "uncertainty" not in result.report


@pytest.fixture(scope="module")
def mc_head_run(ten_class_run):
    """ten_class_run's recipe with MC dropout 0.3 in the head only (the backbone runs once)."""
    from tlc.train import TrainConfig, train

    config = TrainConfig(arch="resnet18", img_size=16, epochs=1, batch_size=16, limit_train=160, patience=None,
                         mc_dropout=0.3)
    train(ten_class_run.parent / "digits.npz", ten_class_run.parent / "mc-head-run", config, progress=False)
    return ten_class_run.parent / "mc-head-run"


def test_a_head_mc_run_carries_uncertainty_and_the_ood_gate_together(mc_head_run, tmp_path):
    """The issue's done-when: calibrated probabilities, a prediction set, an OOD flag and aleatoric /
    epistemic uncertainty from one bundle; abstain is any of the three reasons."""
    import tlc_runtime
    from tlc.data import load_dataset

    result = build_bundle(mc_head_run, "x86-cpu", tmp_path / "bundle", tolerance=_observed("x86-cpu", "fp32"),
                          log=lambda _m: None)
    manifest = result.manifest
    assert manifest.extra_outputs == ("total", "aleatoric", "epistemic", "energy", "mahalanobis", "ood_score")
    assert manifest.uncertainty is not None and manifest.ood is not None and manifest.conformal is not None
    clf = tlc_runtime.load(tmp_path / "bundle", check=True)
    info = read_run_info(mc_head_run)
    images, _ = load_dataset(info.data.source, seed=info.seed, **info.data_options()).arrays("test", 16)
    outputs = clf.predict_outputs(images[:60])
    for pred, score, epistemic in zip(clf.predict_batch(list(images[:60])), outputs["ood_score"],
                                      outputs["epistemic"], strict=True):
        assert pred.ood == (score > manifest.ood.threshold)
        assert pred.uncertainty["epistemic"] == pytest.approx(float(epistemic), rel=1e-5, abs=1e-7)
        reasons = (len(pred.prediction_set) > 1, pred.ood, epistemic > manifest.uncertainty.epistemic_threshold)
        assert pred.abstain == any(reasons)
        assert set(pred.to_dict()) >= {"prediction_set", "ood", "ood_score", "uncertainty", "abstain"}
