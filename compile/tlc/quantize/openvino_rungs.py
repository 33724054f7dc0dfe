"""The rungs of the INT8 ladder for OpenVINO IR through NNCF (intel-* targets).

In order (``ladder.climb`` stops at the first within budget; every candidate is saved to the
staging directory and measured with ``ctx.evaluate``):
- ``ptq``: ``nncf.quantize`` with fast bias correction;
- ``ptq-bias-correction``: the same with full bias correction;
- ``ptq-calibration``: full bias correction on a larger stratified calibration set from the
  training split (skipped when that is not larger);
- ``fallback``: NNCF accuracy control (``quantize_with_accuracy_control``) reverts the most harmful
  quantizers to float, first with the budget's agreement as max_drop, then with 0 (skipped when
  the target turns ``openvino.accuracy_control`` off);
- ``qat``: quantization-aware fine-tuning (``qat.fine_tune``), exported to ONNX like the run,
  converted by OpenVINO and quantized by NNCF like the PTQ rungs.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bundler.context import BuildContext
from ..targets import OpenVinoOptions
from ..verify.budget import budget_violations
from . import openvino_build as ovb
from .fallback import FallbackStep
from .ladder import Rung, RungSkipped, select_rungs
from .ort_rungs import LARGE_CALIBRATION, large_calibration, qat_model

RUNG_NAMES = ("ptq", "ptq-bias-correction", "ptq-calibration", "fallback", "qat")


@dataclass
class OvLadder:
    """State shared by the OpenVINO rungs (openvino_build's NNCF helpers do the work)."""

    ov: Any
    nncf: Any
    ctx: BuildContext
    model: Any                 # the FP32 ov.Model
    options: dict[str, Any]    # artifact options (device, hints)
    report: dict[str, Any]
    common: dict[str, Any]     # nncf.quantize keyword arguments shared by every rung
    ranges: Any
    calibration: np.ndarray
    artifacts: dict[str, Any] = field(default_factory=dict)   # rung → (Artifact, FallbackStep, ov.Model)
    first_quantized: list[str] = field(default_factory=list)
    qat_report: dict[str, Any] = field(default_factory=dict)

    def rungs(self) -> list[Rung]:
        all_rungs = [
            Rung("ptq", "nncf.quantize, fast bias correction", lambda: self._ptq("ptq", "quantize", True)),
            Rung("ptq-bias-correction", "nncf.quantize, full bias correction",
                 lambda: self._ptq("ptq-bias-correction", "quantize(bias_correction)", False)),
            Rung("ptq-calibration", f"full bias correction calibrated on up to {LARGE_CALIBRATION} training images",
                 self.ptq_calibration),
            Rung("fallback", "NNCF accuracy control: the most harmful quantizers back to float", self.fallback),
            Rung("qat", "quantization-aware fine-tuning (distillation from the FP32 model), then NNCF", self.qat),
        ]
        return select_rungs(all_rungs, self.ctx.options.get("int8_rungs"))

    def _quantize(self, model, calibration: np.ndarray, stage: str, name: str, fast: bool = False,
                  float_layers: tuple[str, ...] = ()) -> FallbackStep:
        dataset = self.nncf.Dataset([calibration[i:i + 1] for i in range(len(calibration))])
        common = {**self.common, "subset_size": len(calibration)}
        with ovb.quiet_nncf():
            quantized = ovb.nncf_call(self.nncf.quantize, model, dataset, fast_bias_correction=fast,
                                              advanced_parameters=self.ranges, **common)
        self.first_quantized = self.first_quantized or ovb.quantized_layers(quantized)
        return self._keep(name, stage, quantized, float_layers)

    def _keep(self, name: str, stage: str, quantized, float_layers: tuple[str, ...]) -> FallbackStep:
        artifact, step = ovb.check_candidate(self.ov, self.ctx, quantized, self.options, stage, self.report,
                                           float_layers)
        self.artifacts[name] = (artifact, step, quantized)
        return step

    def _ptq(self, name: str, stage: str, fast: bool) -> FallbackStep:
        return self._quantize(self.model, self.calibration, stage, name, fast)

    def ptq_calibration(self) -> FallbackStep:
        large = large_calibration(self.ctx)
        self.report["large_calibration_samples"] = len(large)
        return self._quantize(self.model, large, "quantize(bias_correction, large calibration)", "ptq-calibration")

    def fallback(self) -> FallbackStep:
        if not (self.ctx.target.openvino or OpenVinoOptions()).accuracy_control:
            raise RungSkipped("accuracy control is off; enable openvino.accuracy_control in the target to try it")
        nncf, ctx = self.nncf, self.ctx
        dataset = nncf.Dataset([self.calibration[i:i + 1] for i in range(len(self.calibration))])
        items = ovb.validation_items(self.ov, nncf, ctx, self.model, self.calibration, self.report)
        step = None
        for max_drop in (max(0.0, 1.0 - ctx.tolerance.min_agreement), 0.0):
            restorer = nncf.quantization.advanced_parameters.AdvancedAccuracyRestorerParameters(
                max_num_iterations=ovb.MAX_RESTORE_ITERATIONS,
                ranking_subset_size=min(ovb.RANKING_SUBSET, items.get_length()), num_ranking_workers=1)
            with ovb.quiet_nncf():
                quantized = ovb.nncf_call(
                    nncf.quantize_with_accuracy_control, self.model, dataset, items, ovb.agreement_on,
                    max_drop=max_drop, fast_bias_correction=False, advanced_quantization_parameters=self.ranges,
                    advanced_accuracy_restorer_parameters=restorer, **self.common)
            float_layers = tuple(sorted(set(self.first_quantized) - set(ovb.quantized_layers(quantized))))
            step = self._keep("fallback", f"accuracy_control(max_drop={max_drop:g})", quantized, float_layers)
            if step.passed:
                break
        return step

    def qat(self) -> FallbackStep:
        from .ort_int8 import scheme_for

        symmetric = scheme_for(self.ctx.target).activation_symmetric
        with tempfile.TemporaryDirectory(prefix="tlc-qat-", dir=self.ctx.work) as tmp:
            onnx_path, self.qat_report = qat_model(self.ctx, self.calibration, symmetric, Path(tmp) / "qat.onnx")
            model = ovb.convert_path(self.ov, onnx_path)
        return self._quantize(model, self.calibration, "qat+quantize(bias_correction)", "qat")

    def confirm(self, name: str) -> list[str]:
        """Budget violations of rung ``name``'s candidate on the test split; called right after the rung
        passed, so the IR in the staging directory is still that candidate's."""
        artifact, _, _ = self.artifacts[name]
        return budget_violations(self.ctx.confirm(artifact), self.ctx.tolerance)

    def details(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if name in self.artifacts:
            _, step, _ = self.artifacts[name]
            if step.float_layers:
                out["float_layers"] = list(step.float_layers)
        if name == "ptq-calibration" and "large_calibration_samples" in self.report:
            out["calibration_samples"] = self.report["large_calibration_samples"]
        if name == "qat" and self.qat_report:
            out["qat"] = self.qat_report
        return out
