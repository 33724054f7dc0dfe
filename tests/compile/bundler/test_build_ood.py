"""build_bundle compiles the OOD gate by default: the graph's energy/mahalanobis/ood_score outputs,
the golden set covering them, the manifest's ``ood`` rule with the artifact's own threshold, the
report's test acceptance; predictions, ``tlc verify`` and ``tlc inspect`` show it; --no-ood leaves it out."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tlc_runtime
from tlc.bundler.builder import build_bundle
from tlc.bundler.ood import OodOptions, ood_threshold
from tlc.cli.main import run
from tlc.verify.ood import ood_metrics

SCORES = ("energy", "mahalanobis", "ood_score")


def _split(run_dir, split: str):
    """Graph inputs and labels of ``split`` of the run's own data."""
    from tlc.data import load_dataset
    from tlc.runs import read_run_info

    info = read_run_info(run_dir)
    return load_dataset(info.data.source, seed=info.seed, **info.data_options()).arrays(split, info.img_size)


@pytest.fixture(scope="module")
def gated(ten_class_run, tmp_path_factory):
    """One default build (temperature folded in: ten_class_run has an interior optimum) and its classifier."""
    said: list[str] = []
    result = build_bundle(ten_class_run, "x86-cpu", tmp_path_factory.mktemp("ood") / "bundle", log=said.append)
    clf = tlc_runtime.load(result.bundle, backend="onnxruntime", device="cpu")
    return result, clf, said


def test_a_default_build_compiles_the_gate_and_its_golden_check_covers_it(gated):
    result, clf, said = gated
    manifest = result.manifest
    assert manifest.calibration is not None  # the gate wraps the TemperatureScaled model
    assert manifest.extra_outputs == SCORES and set(manifest.golden.atol_outputs) == set(SCORES)
    assert manifest.ood is not None and manifest.ood.output == "ood_score" and manifest.ood.acceptance == 0.95
    report = clf.check()
    assert report.passed and set(report.max_abs_output_delta) == set(SCORES)
    assert any(line.startswith("OOD gate") for line in said)


def test_the_threshold_is_set_on_the_artifacts_own_validation_outputs(gated, ten_class_run):
    result, clf, _ = gated
    inputs, _labels = _split(ten_class_run, "val")
    scores = clf.predict_outputs(inputs)["ood_score"]
    rule = result.manifest.ood
    assert rule.n_threshold == len(inputs)
    np.testing.assert_allclose(rule.threshold, ood_threshold(scores, 0.95), rtol=1e-5)
    assert np.mean(scores <= rule.threshold * (1 + 1e-5)) >= 0.95


def test_the_report_and_verify_give_the_artifacts_test_acceptance(gated, ten_class_run):
    result, clf, _ = gated
    inputs, labels = _split(ten_class_run, "test")
    expected = ood_metrics(clf.predict_outputs(inputs), result.manifest.ood)
    saved = json.loads((result.bundle / "reports" / "build.json").read_text())
    assert saved["ood"]["test"]["accepted"] == pytest.approx(expected["accepted"], abs=1.5 / len(labels))
    assert saved["ood"]["threshold"] == result.manifest.ood.threshold and saved["ood"]["n_fit"] > 0
    from tlc.verify.runner import verify

    verified = verify(result.bundle, ten_class_run.parent / "digits.npz", log=lambda _m: None)
    assert verified.extra["ood"]["accepted"] == pytest.approx(expected["accepted"], abs=1.5 / len(labels))
    assert verified.extra["ood"]["n"] == len(labels)


def test_predictions_carry_ood_and_noise_or_blank_frames_are_flagged_more_often(gated, ten_class_run):
    result, clf, _ = gated
    native = np.load(ten_class_run.parent / "digits.npz")["test_images"]
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, native.shape, dtype=np.uint8)
    blank = np.broadcast_to(rng.integers(0, 256, (len(native), 1, 1)), native.shape).astype(np.uint8)
    rates = {}
    for name, images in (("test", native), ("noise", noise), ("blank", blank)):
        preds = clf.predict_batch(images)
        assert all(isinstance(p.ood, bool) and p.abstain >= p.ood for p in preds)
        rates[name] = np.mean([p.ood for p in preds])
    assert rates["noise"] > rates["test"] and rates["blank"] > rates["test"], rates
    shown = clf.predict(native[0]).to_dict()
    assert isinstance(shown["ood"], bool) and isinstance(shown["ood_score"], float)


def test_inspect_and_predict_json_show_the_gate(gated, ten_class_run, tmp_path, capsys):
    from PIL import Image

    result, clf, _ = gated
    assert run(["inspect", str(result.bundle)]) == 0
    out = capsys.readouterr().out
    assert "OOD gate" in out and f"{result.manifest.ood.threshold:.4g}" in out
    image = np.load(ten_class_run.parent / "digits.npz")["test_images"][0]
    Image.fromarray(image).save(tmp_path / "digit.png")
    assert run(["predict", str(result.bundle), str(tmp_path / "digit.png"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)[0]
    assert shown["ood"] is clf.predict(image).ood and shown["ood_score"] == pytest.approx(clf.predict(image).ood_score)


def test_no_ood_builds_without_the_gate_and_a_bad_acceptance_is_a_user_error(tiny_run_dir, tmp_path, capsys):
    assert run(["build", str(tiny_run_dir), "-t", "x86-cpu", "-o", str(tmp_path / "bad"),
                "--ood-acceptance", "1.5"]) == 2
    assert "acceptance" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert run(["build", str(tiny_run_dir), "-t", "x86-cpu", "-o", str(tmp_path / "plain"), "--no-ood"]) == 0
    manifest = tlc_runtime.load(tmp_path / "plain").manifest
    assert manifest.ood is None and manifest.extra_outputs == ()
    assert "--no-ood" in "".join(capsys.readouterr())


def test_options_refuse_a_threshold_the_validation_split_cannot_set(tiny_run_dir, tmp_path):
    from tlc.bundler.trust import TrustOptions
    from tlc.errors import ConfigError

    with pytest.raises(ConfigError, match="validation images cannot set an OOD threshold"):
        build_bundle(tiny_run_dir, "x86-cpu", tmp_path / "b", log=lambda _m: None,
                     trust=TrustOptions(ood=OodOptions(acceptance=0.999, required=True)))
    assert not (tmp_path / "b").exists()


@pytest.mark.openvino
def test_an_openvino_int8_build_keeps_the_score_path_float_and_the_gate(ten_class_run, tmp_path):
    """NNCF quantized the Mahalanobis/energy path until its ops were put in the IgnoredScope; the scores
    then no longer ranked images as PyTorch's (Spearman about 0.6 here) and the build dropped the gate."""
    import dataclasses

    pytest.importorskip("openvino")
    pytest.importorskip("nncf")

    from tlc.targets import load_target

    tol = dataclasses.replace(load_target("intel-cpu").tolerance("int8"), confidence=0.0,
                              max_balanced_accuracy_drop=0.2, min_agreement=0.5)  # a one-epoch model
    result = build_bundle(ten_class_run, "intel-cpu", tmp_path / "ov", precision="int8", tolerance=tol,
                          log=lambda _m: None)
    assert result.report["artifact"]["score_ops_in_float"] > 0
    assert result.report["ood"]["rank_correlation"] >= 0.9
    assert result.manifest.ood is not None and result.manifest.ood.output == "ood_score"
