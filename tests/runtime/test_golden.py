"""The golden self-check compares this device's probabilities with the recorded reference."""

from __future__ import annotations

import numpy as np
import pytest
import tlc_runtime
from tlc_runtime.results import softmax

pytest.importorskip("onnxruntime")


def _rewrite_golden(bundle, **arrays) -> None:
    np.savez(bundle.path / "golden.npz", **arrays)
    bundle.rehash()


def _golden(bundle) -> dict[str, np.ndarray]:
    with np.load(bundle.path / "golden.npz") as data:
        return {k: data[k] for k in data.files}


def test_intact_bundle_passes_with_real_statistics(grey_bundle, grey_clf):
    report = grey_clf.check()
    assert report.passed and report.n == 16 and report.agreement == 1.0
    ref = softmax(grey_bundle.reference_logits(grey_bundle.golden_inputs))
    ours = softmax(grey_clf.predict_logits(grey_bundle.golden_inputs))
    assert report.max_abs_prob_delta == pytest.approx(np.abs(ref - ours).max(), abs=1e-7)
    assert 0 < report.max_abs_prob_delta < 1e-5  # float32 ORT vs float64 numpy: close, not identical
    assert (report.backend, report.device, report.precision) == ("onnxruntime", "cpu", "fp32")
    assert report.summary().startswith("PASS: 16 golden images on onnxruntime/cpu")
    assert report.to_dict()["atol_prob"] == 1e-4


def test_flipped_reference_fails_on_agreement(make_bundle):
    bundle = make_bundle()
    gold = _golden(bundle)
    _rewrite_golden(bundle, inputs=gold["inputs"], logits=gold["logits"][:, ::-1].copy())
    clf = tlc_runtime.load(bundle.path)
    report = clf.check()
    assert not report.passed and report.agreement < 1.0
    with pytest.raises(tlc_runtime.GoldenCheckError, match="FAIL: 16 golden images"):
        tlc_runtime.load(bundle.path, check=True)


def test_small_drift_fails_on_probability_tolerance(make_bundle):
    bundle = make_bundle()
    gold = _golden(bundle)
    drift = gold["logits"].copy()
    drift[:, 0] += 0.01  # moves probabilities by ~2e-3; no golden image is that close to a tie
    _rewrite_golden(bundle, inputs=gold["inputs"], logits=drift)
    report = tlc_runtime.load(bundle.path).check()
    assert not report.passed and report.agreement == 1.0
    assert 1e-4 < report.max_abs_prob_delta < 1e-2


def test_malformed_golden_files_are_bundle_errors(make_bundle):
    bundle = make_bundle()
    gold = _golden(bundle)
    _rewrite_golden(bundle, inputs=gold["inputs"])
    with pytest.raises(tlc_runtime.BundleError, match="lacks logits"):
        tlc_runtime.load(bundle.path, check=True)
    _rewrite_golden(bundle, inputs=gold["inputs"][:5], logits=gold["logits"][:5])
    with pytest.raises(tlc_runtime.BundleError, match="holds 5 inputs, the manifest says 16"):
        tlc_runtime.load(bundle.path).check()
    _rewrite_golden(bundle, inputs=gold["inputs"].astype(np.float32), logits=gold["logits"])
    with pytest.raises(tlc_runtime.BundleError, match="golden inputs are float32"):
        tlc_runtime.load(bundle.path).check()
    (bundle.path / "golden.npz").write_bytes(b"PK\x03\x04 truncated")
    bundle.rehash()
    with pytest.raises(tlc_runtime.BundleError, match="not a readable .npz"):
        tlc_runtime.load(bundle.path).check()


def test_golden_file_changed_after_load_is_caught(make_bundle):
    bundle = make_bundle()
    clf = tlc_runtime.load(bundle.path)
    with open(bundle.path / "golden.npz", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(tlc_runtime.IntegrityError):
        clf.check()
