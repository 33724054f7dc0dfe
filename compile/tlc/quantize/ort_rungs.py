"""The rungs of the INT8 ladder for QDQ ONNX (ONNX Runtime, and TensorRT through the same QDQ).

In order (``climb`` stops at the first within budget):
- ``ptq``: static QDQ quantization as configured (per-channel weights, the build's calibration set);
- ``ptq-calibration``: the same on a larger stratified calibration set from the training split
  (up to ``LARGE_CALIBRATION`` images; skipped when that is not larger);
- ``ptq-first-last-float``: the better of the two above with the first and the last compute
  layer computing in float (the layers that see raw-ish inputs and write the logits);
- ``fallback``: the accuracy-aware float fallback (``fallback.greedy_fallback``) on that base;
- ``qat``: quantization-aware fine-tuning (``qat.fine_tune``), exported like the run and quantized
  with the same quantizer and calibration, evaluated against the ORIGINAL model's reference outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bundler.context import BuildContext
from ..verify.budget import budget_violations
from ..verify.compare import Comparison
from .calibration import select_calibration
from .fallback import FallbackResult, FallbackStep, greedy_fallback, make_step
from .ladder import Rung, RungSkipped, select_rungs

LARGE_CALIBRATION = 1000   # images for the ptq-calibration rung (all training images when fewer)
SENSITIVITY_SAMPLES = 64   # calibration images used to rank layers for the fallback
MAX_FLOAT_FRACTION = 0.5   # beyond this the "INT8" model is mostly float: fall back to fp32 instead
RUNG_NAMES = ("ptq", "ptq-calibration", "ptq-first-last-float", "fallback", "qat")


@dataclass
class Candidate:
    path: Path
    step: FallbackStep
    quantizer: Any                       # the QdqQuantizer that built it (its calibration, layers)
    float_layers: tuple[str, ...] = ()


@dataclass
class OrtLadder:
    """Builds and measures the candidates of each rung; ``make_quantizer(onnx, calibration, dir)``
    returns a QdqQuantizer and ``evaluate_file(path)`` measures a QDQ file with ``ctx.evaluate``."""

    ctx: BuildContext
    make_quantizer: Callable[[Path, np.ndarray, Path], Any]
    evaluate_file: Callable[..., Comparison]   # (path[, evaluate]) → Comparison, default ctx.evaluate
    work: Path
    activation_symmetric: bool
    candidates: dict[str, Candidate] = field(default_factory=dict)
    fallback: FallbackResult | None = None
    ranking: list = field(default_factory=list)
    qat_report: dict[str, Any] = field(default_factory=dict)

    def rungs(self) -> list[Rung]:
        all_rungs = [
            Rung("ptq", "static QDQ, per-channel weights, the build's calibration set", self.ptq),
            Rung("ptq-calibration", f"static QDQ calibrated on up to {LARGE_CALIBRATION} training images",
                 self.ptq_calibration),
            Rung("ptq-first-last-float", "the better PTQ with the first and last compute layers in float",
                 self.first_last_float),
            Rung("fallback", "accuracy-aware float fallback of the most sensitive layers", self.float_fallback),
            Rung("qat", "quantization-aware fine-tuning (distillation from the FP32 model), then QDQ", self.qat),
        ]
        return select_rungs(all_rungs, self.ctx.options.get("int8_rungs"))

    # --- rungs -------------------------------------------------------------------------------------
    def ptq(self) -> FallbackStep:
        quantizer = self.make_quantizer(Path(self.ctx.fp32_onnx), self.ctx.calibration, self.work / "ptq")
        return self._measure("ptq", quantizer.build(self.work / "ptq.onnx"), quantizer)

    def ptq_calibration(self) -> FallbackStep:
        large = large_calibration(self.ctx)
        quantizer = self.make_quantizer(Path(self.ctx.fp32_onnx), large, self.work / "ptq-calibration")
        return self._measure("ptq-calibration", quantizer.build(self.work / "ptq-calibration.onnx"), quantizer)

    def first_last_float(self) -> FallbackStep:
        base = self.base()
        layers = base.quantizer.layers
        ends = tuple(dict.fromkeys((layers[0], layers[-1])))
        path = base.quantizer.mix(base.path, self.work / "first-last.onnx", ends)
        return self._measure("ptq-first-last-float", path, base.quantizer, ends)

    def float_fallback(self) -> FallbackStep:
        import onnx

        from .sensitivity import quantized_nodes, rank_by_exclusion

        base = self.base()
        quantizer, built = base.quantizer, {(): base.path}

        def try_mix(float_layers: tuple[str, ...]) -> Comparison:
            if not float_layers:
                return self.evaluate_file(base.path)
            path = quantizer.mix(base.path, self.work / f"fallback{len(built)}.onnx", float_layers)
            built[float_layers] = path
            return self.evaluate_file(path)

        def ranked() -> list[str]:
            candidates = quantized_nodes(onnx.load(str(base.path)), skip=quantizer.preprocessing)
            self.ranking = rank_by_exclusion(quantizer.prepared, base.path, candidates,
                                             quantizer.calibration[:SENSITIVITY_SAMPLES], quantizer.input_name)
            return [r.name for r in self.ranking]

        self.fallback = greedy_fallback(ranked, try_mix, self.ctx.tolerance, max_float_fraction=MAX_FLOAT_FRACTION,
                                        max_steps=int(self.ctx.options.get("max_fallback_steps", 8)),
                                        log=self.ctx.log)
        chosen = self.fallback.chosen or self.fallback.steps[-1]
        path = built.get(chosen.float_layers, base.path)
        self.candidates["fallback"] = Candidate(path, chosen, quantizer, chosen.float_layers)
        return chosen

    def qat(self) -> FallbackStep:
        onnx_path, self.qat_report = qat_model(self.ctx, self._best_calibration(), self.activation_symmetric,
                                               self.work / "qat.fp32.onnx")
        quantizer = self.make_quantizer(onnx_path, self._best_calibration(), self.work / "qat")
        return self._measure("qat", quantizer.build(self.work / "qat.onnx"), quantizer)

    # --- helpers -----------------------------------------------------------------------------------
    def base(self) -> Candidate:
        """The better of the PTQ candidates built so far (higher agreement, then smaller max |Δprob|);
        the plain PTQ candidate is built first when no rung has built one."""
        ptqs = [self.candidates[n] for n in ("ptq", "ptq-calibration") if n in self.candidates]
        if not ptqs:
            self.ptq()
            ptqs = [self.candidates["ptq"]]
        return max(ptqs, key=lambda c: (c.step.agreement, -c.step.max_abs_prob_delta))

    def _best_calibration(self) -> np.ndarray:
        """The calibration set of the best PTQ candidate so far (the build's set when none was built)."""
        ptqs = [n for n in ("ptq", "ptq-calibration") if n in self.candidates]
        return self.base().quantizer.calibration if ptqs else self.ctx.calibration

    def _measure(self, name: str, path: Path, quantizer, float_layers: tuple[str, ...] = ()) -> FallbackStep:
        step = make_step(float_layers, self.evaluate_file(path), self.ctx.tolerance)
        self.candidates[name] = Candidate(path, step, quantizer, float_layers)
        return step

    def confirm(self, name: str) -> list[str]:
        """Budget violations of rung ``name``'s chosen candidate on the test split (``ctx.confirm``)."""
        return budget_violations(self.evaluate_file(self.candidates[name].path, self.ctx.confirm), self.ctx.tolerance)

    def details(self, name: str) -> dict[str, Any]:
        """Facts recorded with rung ``name`` in ``report["ladder"]``."""
        candidate = self.candidates.get(name)
        out: dict[str, Any] = {}
        if candidate is not None:
            out["calibration_samples"] = len(candidate.quantizer.calibration)
            if candidate.float_layers:
                out["float_layers"] = list(candidate.float_layers)
        if name == "fallback" and self.fallback is not None:
            out["candidates"] = len(self.fallback.steps)
        if name == "qat" and self.qat_report:
            out["qat"] = self.qat_report
        return out


def large_calibration(ctx: BuildContext) -> np.ndarray:
    """A stratified sample of up to LARGE_CALIBRATION training images; RungSkipped when there is no
    training split or it would not be larger than the build's calibration set."""
    if ctx.train_split is None:
        raise RungSkipped("no training split in this build")
    images, labels = ctx.train_split()
    n = min(len(images), LARGE_CALIBRATION)
    if n <= len(ctx.calibration):
        raise RungSkipped(f"the calibration set already has {len(ctx.calibration)} of {len(images)} training images")
    return select_calibration(images, labels, n=n, seed=ctx.run.seed, min_samples=1)


def qat_model(ctx: BuildContext, calibration: np.ndarray, symmetric_activations: bool,
              onnx_path: Path) -> tuple[Path, dict[str, Any]]:
    """Fine-tune ``ctx.model`` with fake quantization (qat.fine_tune) and export it, float, to
    ``onnx_path`` like the run (preprocessing in the graph); returns the path and the QAT report."""
    from ..export.onnx_export import export_onnx
    from .qat import QatSettings, fine_tune

    if ctx.model is None or ctx.train_split is None:
        raise RungSkipped("no PyTorch model or training split in this build")
    if _output_count(ctx.model, calibration) > 1:
        raise RungSkipped("QAT distils the logits alone: a graph with several outputs (tasks, ensemble members, "
                          "uncertainty or OOD scores) stops at the rungs before it")
    settings = QatSettings.from_options(ctx.options, ctx.run.seed)
    images, labels = ctx.train_split()
    sample = select_calibration(images, labels, n=settings.images, seed=ctx.run.seed, min_samples=1)
    result = fine_tune(ctx.model, sample, calibration, symmetric_activations, settings, log=ctx.log)
    export = export_onnx(result.model, ctx.input_spec, onnx_path, calibration[:16])
    return onnx_path, {**result.to_dict(), "export_max_abs_logit_delta": export.max_abs_logit_delta}


def _output_count(model, calibration: np.ndarray) -> int:
    """How many named outputs ``model`` returns (one forward pass on one calibration image)."""
    import torch

    from ..models.outputs import as_outputs

    with torch.no_grad():
        return len(as_outputs(model(torch.from_numpy(calibration[:1]))))
