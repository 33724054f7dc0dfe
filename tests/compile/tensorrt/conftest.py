"""Fixtures for the TensorRT tests: a tiny trained classifier exported like tlc's FP32 ONNX and a
BuildContext whose evaluate runs candidate ONNX artifacts with ONNX Runtime (the CPU proxy)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the shared trt_tiny_cnn helper next to this file
from tlc.bundler.context import BuildContext  # noqa: E402
from tlc.targets import Target, load_target
from tlc.verify.compare import compare_logits
from tlc_runtime.manifest import Artifact
from trt_tiny_cnn import build_tiny_onnx, input_spec, run_info, run_onnx  # noqa: E402


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """(fp32 onnx path, test images, labels, reference logits) of the trained tiny CNN."""
    pytest.importorskip("onnxruntime", reason="the CPU proxy evaluation needs onnxruntime")
    pytest.importorskip("torch", reason="the tiny test model is trained with torch")
    pytest.importorskip("sklearn", reason="the tiny test model uses sklearn digits")
    path, images, labels = build_tiny_onnx(tmp_path_factory.mktemp("tiny") / "model.fp32.onnx")
    return path, images, labels, run_onnx(path, images)


@pytest.fixture
def make_ctx(tiny, tmp_path: Path, small_eval_budget) -> Callable[..., BuildContext]:
    """BuildContext factory: target name or Target, precision; records evaluated artifacts."""
    fp32, images, labels, reference = tiny

    def factory(target: str | Target, precision: str) -> BuildContext:
        staging = tmp_path / "bundle"
        staging.mkdir(exist_ok=True)
        local_fp32 = tmp_path / "model.fp32.onnx"
        shutil.copy(fp32, local_fp32)
        tgt = load_target(target) if isinstance(target, str) else target
        evaluated: list[Artifact] = []

        def evaluate(artifact: Artifact):
            evaluated.append(artifact)
            model = staging / artifact.files["model"].path  # ONNX Runtime proxy: the "model" role
            return compare_logits(reference, run_onnx(model, images), labels, bootstrap=50)

        ctx = BuildContext(target=tgt, precision=precision, run=run_info(), input_spec=input_spec(),
                           fp32_onnx=local_fp32, staging=staging, calibration=None, evaluate=evaluate,
                           tolerance=small_eval_budget(tgt.tolerance(precision)), log=lambda _m: None)
        ctx.options["evaluated"] = evaluated
        return ctx

    return factory
