"""Builder for ("tensorrt", fp32 | fp16 | int8): TensorRT-ready ONNX, and an engine where possible.

Precision lives in the ONNX (strongly typed networks; TensorRT 10 deprecates and 11 removes
implicit INT8 calibration and the precision builder flags): fp32 → the FP32 export, fp16 →
``tlc.quantize.fp16`` (with its ladder: then the head in float32), int8 → the explicit QDQ model of
``tlc.quantize.ort_int8`` (its accuracy measured on the CPU with ONNX Runtime). Then:

1. prepare the ONNX for the target's TensorRT (opset, uint8 input; see prepare.py) and run the
   compatibility check — any violation is a BuildError listing them all, before anything ships;
2. where TensorRT and a GPU with the target's compute capability are present, build the engine
   (timing cache kept in the bundle), measure it with ``ctx.evaluate`` against the budget and
   return a "tensorrt-engine" artifact (which also carries the ONNX, for rebuilds on other devices);
3. otherwise measure the TensorRT-ready ONNX with ``ctx.evaluate`` (without TensorRT, tlc's
   evaluate runs it through ONNX Runtime: the proxy) and return it as an "onnx" artifact with
   backend "tensorrt", the exact build settings, the equivalent trtexec line and
   ``engine_built: false`` with the reason.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tlc_runtime.backends.trt_builder import OPTIONS_KEY
from tlc_runtime.integrity import file_entry
from tlc_runtime.manifest import Artifact

from ..bundler.context import BuildContext, BuiltArtifact
from ..errors import BudgetError, BuildError
from ..quantize.fp16 import convert_to_fp16, fp16_steps
from ..verify.budget import budget_violations
from .compat import check_tensorrt_compat
from .engine import EngineEnvironment, build_engine_files, probe_environment
from .prepare import PreparedOnnx, prepare_for_tensorrt
from .settings import build_settings, tensorrt_options
from .trtexec import trtexec_line
from .violation import summarize

SUBDIR = "tensorrt"


def build_tensorrt(ctx: BuildContext) -> BuiltArtifact:
    """The TensorRT artifact for ``ctx.target`` at ``ctx.precision`` (see the module docstring)."""
    out_dir = ctx.staging / SUBDIR
    out_dir.mkdir(parents=True, exist_ok=True)
    env = probe_environment(ctx.target)
    steps: list[tuple[str, list[str] | None]] = (
        list(fp16_steps(ctx.fp32_onnx)) if ctx.precision == "fp16" else [("default", None)])
    tried = []
    for index, (label, keep) in enumerate(steps):
        source, report, extra_files = _precision_onnx(ctx, out_dir, keep)
        prepared = prepare_for_tensorrt(source, out_dir / f"model.{ctx.precision}.onnx", ctx.target)
        if ctx.precision != "fp32" and source != prepared.model:
            source.unlink(missing_ok=True)  # this build's intermediate, superseded by the prepared file
        report.update(prepare=prepared.steps, engine_built=env.can_build)
        _refuse_violations(ctx, prepared)
        try:
            artifact, measured = _artifact_for(ctx, prepared, env, out_dir)
        except BudgetError as exc:
            tried.append(f"{label}: {exc}")
            if index == len(steps) - 1:
                raise BudgetError("; ".join(tried)) from None
            ctx.log(f"{ctx.precision} ({label}) breaks the budget; trying {steps[index + 1][0]}")
            continue
        report.update(measured, step=label, tried=tried, trtexec=artifact.options["trtexec"])
        if not env.can_build:
            report["engine_reason"] = env.reason
        return BuiltArtifact(artifact=artifact, report=report, extra_files=extra_files)
    raise BuildError("no TensorRT build step ran")  # unreachable: steps is never empty


def _refuse_violations(ctx: BuildContext, prepared: PreparedOnnx) -> None:
    violations = check_tensorrt_compat(prepared.for_tensorrt, ctx.target, ctx.precision)
    if violations:
        raise BuildError(f"{prepared.for_tensorrt.name} will not build on {ctx.target.name} (TensorRT "
                         f"{tensorrt_options(ctx.target).version_min}): " + summarize(violations))


def _artifact_for(ctx: BuildContext, prepared: PreparedOnnx, env: EngineEnvironment,
                  out_dir: Path) -> tuple[Artifact, dict[str, Any]]:
    """The engine artifact (where it can be built here) or the ONNX artifact, measured."""
    settings = build_settings(ctx.target, ctx.input_spec, ctx.precision)
    files = {"model": _entry(ctx, prepared.model)}
    if prepared.tensorrt_onnx is not None:
        files["tensorrt_onnx"] = _entry(ctx, prepared.tensorrt_onnx)
    trt_onnx = files.get("tensorrt_onnx", files["model"]).path
    trt = tensorrt_options(ctx.target)
    options: dict[str, Any] = {
        OPTIONS_KEY: settings.to_dict(),
        "trtexec": trtexec_line(settings, trt_onnx, f"{SUBDIR}/model.engine", f"{SUBDIR}/timing.cache"),
        "jetpack": trt.jetpack, "target_compute_capability": trt.compute_capability,
    }
    if prepared.tensorrt_onnx is not None:
        options["tensorrt_input_dtype"] = "float32"
    if not env.can_build:
        ctx.log(f"no TensorRT engine built here: {env.reason}; the bundle carries the ONNX, settings and trtexec line")
        artifact = _artifact(ctx, "onnx", files, {**options, "engine_built": False, "engine_reason": env.reason})
        return artifact, {"proxy": _measure(ctx, artifact, "TensorRT-ready ONNX (ONNX Runtime proxy without TensorRT)")}
    engine_path, cache_path = out_dir / "model.engine", out_dir / "timing.cache"
    build_engine_files(ctx.staging / trt_onnx, settings, engine_path, cache_path, log=ctx.log)
    files.update(engine=_entry(ctx, engine_path), timing_cache=_entry(ctx, cache_path))
    options.update(engine_built=True, tensorrt_version=env.tensorrt_version,
                   compute_capability=env.compute_capability, gpu=env.gpu_name)
    artifact = _artifact(ctx, "tensorrt-engine", files, options)
    measured = {"engine": _measure(ctx, artifact, "TensorRT engine"), "tensorrt_version": env.tensorrt_version,
                "compute_capability": env.compute_capability}
    return artifact, measured


def _precision_onnx(ctx: BuildContext, out_dir: Path,
                    keep_float32: list[str] | None) -> tuple[Path, dict[str, Any], dict[str, str]]:
    """The ONNX that carries the precision (FP32 export, FP16 conversion or INT8 QDQ), the report
    so far and the extra files the INT8 builder left in the bundle."""
    if ctx.precision == "fp32":
        return Path(ctx.fp32_onnx), {"source": "fp32 export"}, {}
    if ctx.precision == "fp16":
        result = convert_to_fp16(ctx.fp32_onnx, out_dir / "fp16.tmp.onnx", keep_float32_nodes=keep_float32)
        return result.path, {"source": "tlc fp16 conversion", "float32_nodes": result.float32_nodes}, {}
    from ..quantize.ort_int8 import build_ort_int8  # explicit QDQ, accuracy-checked on the CPU

    int8_ctx = dataclasses.replace(ctx, options={**ctx.options, "quant_for": "tensorrt"})
    built = build_ort_int8(int8_ctx)
    model = built.artifact.files.get("model")
    if model is None:
        raise BuildError("the INT8 builder returned no ONNX model file")
    return ctx.staging / model.path, {"source": "onnxruntime QDQ int8", "int8": built.report}, built.extra_files


def _entry(ctx: BuildContext, path: Path) -> Any:
    return file_entry(ctx.staging, path.relative_to(ctx.staging).as_posix())


def _artifact(ctx: BuildContext, fmt: str, files: dict[str, Any], options: dict[str, Any]) -> Artifact:
    return Artifact(name=f"tensorrt-{ctx.precision}", format=fmt, backend="tensorrt",  # type: ignore[arg-type]
                    precision=ctx.precision, files=files, options=options)  # type: ignore[arg-type]


def _measure(ctx: BuildContext, artifact: Artifact, what: str) -> dict[str, Any]:
    comparison = ctx.evaluate(artifact)
    failures = budget_violations(comparison, ctx.tolerance)
    ctx.log(f"{what}: agreement {comparison.agreement:.4f}, max |Δprob| {comparison.max_abs_prob_delta:.2e}")
    if failures:
        raise BudgetError(f"{what} for {ctx.target.name} at {ctx.precision} breaks the budget: "
                          + "; ".join(failures))
    return comparison.to_dict()
