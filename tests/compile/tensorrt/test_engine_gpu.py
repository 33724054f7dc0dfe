"""build_tensorrt where TensorRT and a GPU exist: a real engine, measured, with its timing cache.

Skipped on machines without the tensorrt package or a CUDA GPU (no GPU was lent to this task)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tlc.targets import load_target
from tlc.tensorrt.build import build_tensorrt
from tlc.tensorrt.engine import probe_environment
from tlc.verify.compare import compare_logits
from tlc_runtime.backends.tensorrt import TensorRtBackend, check_engine_compat
from tlc_runtime.integrity import read_artifact
from trt_tiny_cnn import run_onnx

ENV = probe_environment(load_target("nvidia-gpu"))  # never raises; imports tensorrt only where a GPU is
pytestmark = [pytest.mark.tensorrt, pytest.mark.gpu,
              pytest.mark.skipif(not ENV.can_build, reason=f"cannot build engines here: {ENV.reason}")]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_is_built_measured_and_loadable(make_ctx, tiny, precision: str) -> None:
    _, images, labels, reference = tiny
    ctx = make_ctx("nvidia-gpu", precision)
    staging: Path = ctx.staging

    def evaluate(artifact):  # engines run through the runtime's TensorRT backend, ONNX through ORT
        if artifact.format == "tensorrt-engine":
            session = TensorRtBackend.open(artifact, read_artifact(staging, artifact), ctx.input_spec)
            logits = session.infer(images)
        else:
            logits = run_onnx(staging / artifact.files["model"].path, images)
        return compare_logits(reference, logits, labels, bootstrap=50)

    ctx.evaluate = evaluate
    built = build_tensorrt(ctx)
    art = built.artifact
    assert art.format == "tensorrt-engine" and {"engine", "timing_cache", "model"} <= set(art.files)
    assert art.options["engine_built"] and art.options["compute_capability"] == ENV.compute_capability
    check_engine_compat(art.options, ENV.tensorrt_version, ENV.compute_capability)
    assert built.report["engine"]["agreement"] >= ctx.tolerance.min_agreement
    assert (staging / art.files["timing_cache"].path).stat().st_size > 0
    assert np.isfinite(built.report["engine"]["max_abs_prob_delta"])
