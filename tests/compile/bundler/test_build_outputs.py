"""A deploy model with more outputs than the logits builds into a bundle that carries all of them:
exported by name, listed in the manifest, covered by the golden set, returned by the runtime."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tlc_runtime
import torch
from tlc.bundler.builder import build_bundle
from tlc.export.onnx_export import export_onnx, input_spec_for, output_specs
from tlc.targets import load_target
from torch import nn


class WithPeak(nn.Module):
    """The model's logits, and each image's largest logit as a second output."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.model(x)
        return {"logits": logits, "peak": logits.amax(dim=1)}


@pytest.fixture
def peaked(monkeypatch):
    """Builds load the run's model with the extra output (the way a trust wrapper adds one)."""
    import tlc.models.checkpoint as checkpoint

    load = checkpoint.load_deploy_model
    monkeypatch.setattr(checkpoint, "load_deploy_model", lambda run_dir: (lambda m, i: (WithPeak(m), i))(
        *load(run_dir)))


def test_export_names_every_output_and_checks_each(tmp_path):
    model = WithPeak(nn.Sequential(nn.Flatten(), nn.Linear(16, 3))).eval()
    inputs = np.random.default_rng(0).random((6, 4, 4, 1), dtype=np.float32)
    report = export_onnx(model, input_spec_for(4, 4, 1, "float32"), tmp_path / "m.onnx", inputs)
    assert [o.name for o in output_specs(tmp_path / "m.onnx")] == ["logits", "peak"]
    assert [o.kind for o in output_specs(tmp_path / "m.onnx")] == ["logits", "score"]
    assert set(report.max_abs_output_delta) == {"peak"} and report.max_abs_output_delta["peak"] < 1e-4


def test_export_refuses_a_dict_without_logits_first(tmp_path):
    from tlc.errors import BuildError

    class Wrong(nn.Module):
        def forward(self, x):
            return {"peak": x.sum(dim=(1, 2, 3)), "logits": x.flatten(1)}

    inputs = np.zeros((2, 2, 2, 1), np.float32)
    with pytest.raises(BuildError, match="starting with 'logits'"):
        export_onnx(Wrong(), input_spec_for(2, 2, 1, "float32"), tmp_path / "m.onnx", inputs)


@pytest.mark.parametrize(("target", "precision"), [("x86-cpu", "fp32"), ("intel-cpu", "fp32"), ("x86-cpu", "int8")])
def test_a_bundle_carries_the_extra_output_end_to_end(ten_class_run, tmp_path, peaked, target, precision):
    if target == "intel-cpu":
        pytest.importorskip("openvino")
    # 30 images a class decide nothing at 95%: observed values, and an INT8 margin a one-epoch model meets
    observed = dataclasses.replace(load_target(target).tolerance(precision), confidence=0.0)
    if precision == "int8":
        observed = dataclasses.replace(observed, min_agreement=0.8, max_balanced_accuracy_drop=0.2)
    result = build_bundle(ten_class_run, target, tmp_path / "bundle", precision=precision, tolerance=observed,
                          log=lambda _: None)
    manifest = result.manifest
    assert manifest.extra_outputs == ("peak",) and set(manifest.golden.atol_outputs) == {"peak"}
    clf = tlc_runtime.load(tmp_path / "bundle", check=True)
    with np.load(tmp_path / "bundle" / "golden.npz") as data:
        inputs = data["inputs"]
    outputs = clf.predict_outputs(inputs)
    # temperature scaling divides the logits only: the peak is the model's own largest logit
    temperature = manifest.calibration.temperature if manifest.calibration else 1.0
    np.testing.assert_allclose(outputs["peak"], (outputs["logits"] * temperature).max(axis=1), rtol=1e-3, atol=1e-3)
    assert clf.check().max_abs_output_delta["peak"] <= manifest.golden.atol_outputs["peak"]
