"""Temperature scaling: the fit recovers a known temperature, and the folded graph divides by it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tlc.bundler.temperature import fit_calibration, fit_temperature
from tlc.verify.trust import ece, nll
from tlc_runtime.results import softmax


def _overconfident(n: int, true_t: float, classes: int = 4, seed: int = 0):
    """Labels drawn from softmax(z) (z calibrated by construction); the model reports z × true_t."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, (n, classes))
    probs = softmax(z)
    labels = (probs.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return z, z * true_t, labels


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_the_fit_recovers_a_known_temperature_within_its_standard_error(true_t):
    z, logits, labels = _overconfident(20_000, true_t)
    fitted = fit_temperature(logits, labels)
    # the MLE of u = log T has Fisher information Σ Var_p(z) per sample, at the truth: 5 standard errors
    probs = softmax(z)
    info = float(np.sum((probs * z ** 2).sum(1) - (probs * z).sum(1) ** 2))
    assert abs(np.log(fitted) - np.log(true_t)) < 5 / np.sqrt(info)


def test_calibration_lowers_nll_and_ece_and_records_them():
    _, logits, labels = _overconfident(5_000, 3.0, seed=1)
    cal = fit_calibration(logits, labels)
    assert cal.temperature == pytest.approx(fit_temperature(logits, labels))
    assert cal.nll_before == pytest.approx(nll(logits, labels))
    assert cal.nll_after == pytest.approx(nll(logits / cal.temperature, labels))
    assert cal.nll_after < cal.nll_before and cal.ece_after < cal.ece_before
    assert cal.ece_before == pytest.approx(ece(softmax(logits), labels))


def test_ece_is_the_weighted_gap_between_confidence_and_accuracy_over_15_bins():
    probs = np.array([[0.9, 0.1]] * 10 + [[0.6, 0.4]] * 10)
    labels = np.array([0] * 9 + [1] + [0] * 3 + [1] * 7)   # bin 0.9: 90 % right; bin 0.6: 30 % right
    assert ece(probs, labels) == pytest.approx(0.5 * 0.0 + 0.5 * 0.3)
    # 0.62 (wrong) and 0.68 (right) fall on either side of 10/15: two bins, not one averaged bin
    assert ece(np.array([[0.62, 0.38], [0.68, 0.32]]), np.array([1, 0])) == pytest.approx(0.5 * 0.62 + 0.5 * 0.32)


def test_the_folded_graph_computes_the_reference_logits_divided_by_t(tmp_path):
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from tlc.export.onnx_export import INPUT_NAME, OUTPUT_NAME, export_onnx, input_spec_for, reference_logits
    from tlc.models.calibrated import TemperatureScaled

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8 * 8, 3))

    class RawPixels(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x.float() / 255.0)

    model = RawPixels().eval()
    inputs = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 1)).astype(np.uint8)
    folded = TemperatureScaled(model, 2.7)
    export_onnx(folded, input_spec_for(8, 8, 1, "uint8"), tmp_path / "m.onnx", inputs)
    got = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(
        [OUTPUT_NAME], {INPUT_NAME: inputs})[0]
    expected = reference_logits(model, inputs) / np.float32(2.7)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, reference_logits(model, inputs), atol=1e-3)


def test_a_temperature_that_raises_the_validation_ece_is_not_shipped(monkeypatch):
    """NLL and ECE can disagree (PneumoniaMNIST: NLL better, ECE 8.4% → 9.1%): calibrate() then keeps T = 1
    and says why, instead of shipping a step that worsens the calibration error it reports."""
    from tlc.bundler import trust
    from tlc.bundler.evaluate import EvalSet
    from tlc_runtime.manifest import Calibration

    worse = Calibration(temperature=1.4, ece_before=0.084, ece_after=0.091, nll_before=0.30, nll_after=0.28)
    monkeypatch.setattr(trust, "fit_calibration", lambda logits, labels: worse)
    logits = np.array([[2.0, 0.0], [0.0, 1.0]], np.float32)
    sets = EvalSet(inputs=np.zeros((2, 4, 4, 1), np.uint8), labels=np.array([0, 1]), reference=logits,
                   num_classes=2)
    said = []
    model, val, test, fitted = trust.calibrate("model", sets, sets, trust.TrustOptions(), said.append)
    assert fitted is None and model == "model" and val is sets
    assert any("raises its ECE" in line and "keeping T = 1" in line for line in said)
    better = Calibration(temperature=1.4, ece_before=0.091, ece_after=0.084, nll_before=0.30, nll_after=0.28)
    monkeypatch.setattr(trust, "fit_calibration", lambda logits, labels: better)
    model, val, _, fitted = trust.calibrate(torch.nn.Identity(), sets, sets, trust.TrustOptions(), said.append)
    assert fitted is better and np.allclose(val.reference, logits / np.float32(1.4))
