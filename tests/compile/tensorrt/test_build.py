"""build_tensorrt on this CPU machine: TensorRT-ready ONNX + settings + trtexec line, no engine (and why)."""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from tlc.bundler.context import BuildContext, BuiltArtifact
from tlc.bundler.evaluate import EvalSet, backend_for, make_evaluator
from tlc.errors import BudgetError, BuildError
from tlc.targets import Tolerance
from tlc.tensorrt.build import build_tensorrt
from tlc.tensorrt.engine import probe_environment
from tlc_runtime.backends import trt_cuda
from tlc_runtime.backends.trt_builder import BuildSettings
from tlc_runtime.integrity import file_entry, sha256_file
from tlc_runtime.manifest import Artifact
from trt_tiny_cnn import digits_uint8, run_onnx


@pytest.fixture(autouse=True)
def _no_engine_here() -> None:
    from tlc.targets import load_target
    if probe_environment(load_target("nvidia-gpu")).can_build:
        pytest.skip("this machine can build TensorRT engines; the CPU-path tests do not apply")


def elem_types(path: Path) -> tuple[int, int, set[int], int]:
    model = onnx.load(str(path))
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return (model.graph.input[0].type.tensor_type.elem_type, model.graph.output[0].type.tensor_type.elem_type,
            {t.data_type for t in model.graph.initializer}, opset)


def test_fp16_for_orin_ships_onnx_settings_and_trtexec_without_engine(make_ctx) -> None:
    ctx = make_ctx("jetson", "fp16")
    built = build_tensorrt(ctx)
    art = built.artifact
    assert (art.name, art.format, art.backend, art.precision) == ("tensorrt-fp16", "onnx", "tensorrt", "fp16")
    assert list(art.files) == ["model"] and art.files["model"].path == "tensorrt/model.fp16.onnx"
    model_path = ctx.staging / art.files["model"].path
    assert sha256_file(model_path) == art.files["model"].sha256
    assert elem_types(model_path)[:3] == (TensorProto.UINT8, TensorProto.FLOAT, {TensorProto.FLOAT16})
    settings = BuildSettings.from_options(art.options)
    assert settings.strongly_typed and settings.precision == "fp16" and settings.precision_flags == ()
    assert settings.opt_shape == (1, 16, 16, 1) and settings.max_shape == (8, 16, 16, 1)
    assert settings.compute_capability == "8.7"
    assert art.options["trtexec"].startswith("trtexec --onnx=tensorrt/model.fp16.onnx ")
    assert art.options["engine_built"] is False
    assert art.options["engine_reason"] == probe_environment(ctx.target).reason != ""  # why, e.g. no tensorrt/GPU
    assert built.report["engine_built"] is False and built.report["proxy"]["agreement"] >= ctx.tolerance.min_agreement
    assert ctx.options["evaluated"] == [art]  # measured through the proxy before shipping
    assert sorted(p.name for p in (ctx.staging / "tensorrt").iterdir()) == ["model.fp16.onnx"]


def test_fp32_artifact_computes_exactly_like_the_export(make_ctx, tiny) -> None:
    built = build_tensorrt(make_ctx("jetson-orin-nx", "fp32"))
    assert built.report["proxy"]["max_abs_prob_delta"] == 0.0
    assert "--noTF32" in built.artifact.options["trtexec"]


def test_nano_gets_opset_13_and_a_float32_input_copy(make_ctx, tiny) -> None:
    _, images, _, _ = tiny
    ctx = make_ctx("jetson-nano", "fp16")
    art = build_tensorrt(ctx).artifact
    assert set(art.files) == {"model", "tensorrt_onnx"} and art.options["tensorrt_input_dtype"] == "float32"
    model, trt_copy = (ctx.staging / art.files[r].path for r in ("model", "tensorrt_onnx"))
    assert elem_types(model)[0] == TensorProto.UINT8 and elem_types(model)[3] == 13
    assert elem_types(trt_copy)[0] == TensorProto.FLOAT and elem_types(trt_copy)[3] == 13
    np.testing.assert_array_equal(run_onnx(trt_copy, images.astype(np.float32)), run_onnx(model, images))
    line = art.options["trtexec"]
    assert "--onnx=tensorrt/model.fp16.trt.onnx" in line and "--fp16" in line and "--workspace=512" in line


@pytest.fixture
def trt_installed_without_gpu(tmp_path: Path, monkeypatch) -> None:
    """``tlc[tensorrt]`` on a CPU host: a stub tensorrt package imports, CUDA reports no device."""
    (tmp_path / "stub" / "tensorrt").mkdir(parents=True)
    (tmp_path / "stub" / "tensorrt" / "__init__.py").write_text('__version__ = "10.3.0.30"\n')
    monkeypatch.syspath_prepend(str(tmp_path / "stub"))
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # restores the real entry (or none) afterwards
    monkeypatch.delitem(sys.modules, "tensorrt")
    monkeypatch.setattr(trt_cuda, "cudart", lambda: types.SimpleNamespace(cudaGetDeviceCount=lambda: (100, 0)))
    if hasattr(trt_cuda, "gpu_probe"):
        trt_cuda.gpu_probe.cache_clear()
    yield
    if hasattr(trt_cuda, "gpu_probe"):
        trt_cuda.gpu_probe.cache_clear()


def test_jetson_build_with_tensorrt_but_no_gpu_is_measured_through_the_proxy(make_ctx, tiny,
                                                                            trt_installed_without_gpu) -> None:
    _, images, labels, reference = tiny
    ctx = make_ctx("jetson", "fp16")  # evaluated the way tlc build does: through tlc_runtime's backend choice
    ctx.evaluate = make_evaluator(ctx.staging, ctx.input_spec, EvalSet(images, labels, reference, reference.shape[1]))
    built = build_tensorrt(ctx)
    art = built.artifact
    assert art.format == "onnx" and art.options["engine_built"] is False
    assert "no CUDA GPU" in art.options["engine_reason"]
    assert backend_for(art) == ("onnxruntime", True)
    assert built.report["proxy"]["agreement"] >= ctx.tolerance.min_agreement


def plant(ctx: BuildContext) -> None:
    """Make the FP32 export TensorRT-incompatible twice over: uint16 input and an unsupported op."""
    model = onnx.load(str(ctx.fp32_onnx))
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.UINT16
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    relu.op_type, relu.domain = "Swish", "com.example"
    model.opset_import.append(onnx.helper.make_opsetid("com.example", 1))
    onnx.save(model, str(ctx.fp32_onnx))


def test_violations_stop_the_build_before_anything_is_measured(make_ctx) -> None:
    ctx = make_ctx("jetson", "fp32")
    plant(ctx)
    with pytest.raises(BuildError, match=r"uint16.*com\.example::Swish|com\.example::Swish.*uint16") as info:
        build_tensorrt(ctx)
    assert "will not build on jetson-orin-nano" in str(info.value)
    assert ctx.options["evaluated"] == []


def test_fp16_budget_breach_tries_the_head_in_float32_then_fails(make_ctx) -> None:
    ctx = make_ctx("jetson", "fp16")
    ctx.tolerance = Tolerance(min_agreement=1.0, max_balanced_accuracy_drop=0.0, max_abs_prob_delta=1e-9)
    with pytest.raises(BudgetError, match=r"default: .*max \|Δprob\|.*head in float32: ") as info:
        build_tensorrt(ctx)
    assert "jetson-orin-nano at fp16" in str(info.value)
    assert len(ctx.options["evaluated"]) == 2


def fake_ort_int8(symmetric: bool, quantize_bias: bool = False) -> types.ModuleType:
    """Stand-in for tlc.quantize.ort_int8 (written elsewhere): real QDQ from onnxruntime.quantization."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"pixels": b} for b in np.array_split(digits_uint8()[0][:64], 4)])

        def get_next(self):
            return next(self.batches, None)

    def build_ort_int8(ctx: BuildContext) -> BuiltArtifact:
        assert ctx.options["quant_for"] == "tensorrt"
        out = ctx.staging / "model.int8.onnx"
        quantize_static(str(ctx.fp32_onnx), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                        weight_type=QuantType.QInt8, op_types_to_quantize=["Conv", "Gemm"],
                        extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True,
                                       "QuantizeBias": quantize_bias})
        art = Artifact(name="onnxruntime-int8", format="onnx", backend="onnxruntime", precision="int8",
                       files={"model": file_entry(ctx.staging, "model.int8.onnx")})
        return BuiltArtifact(artifact=art, report={"activations": "int8" if symmetric else "uint8"})

    return types.SimpleNamespace(build_ort_int8=build_ort_int8)


@pytest.mark.slow
def test_int8_uses_the_symmetric_qdq_model_and_refuses_others(make_ctx, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tlc.quantize.ort_int8", fake_ort_int8(symmetric=True))
    ctx = make_ctx("jetson-agx-orin", "int8")
    ctx.tolerance = dataclasses.replace(ctx.tolerance, min_agreement=0.95, max_balanced_accuracy_drop=0.05)
    built = build_tensorrt(ctx)
    assert built.artifact.files["model"].path == "tensorrt/model.int8.onnx"
    assert not (ctx.staging / "model.int8.onnx").exists()  # the intermediate was superseded
    assert built.report["int8"] == {"activations": "int8"} and "--int8" not in built.artifact.options["trtexec"]
    ops = {n.op_type for n in onnx.load(str(ctx.staging / "tensorrt/model.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops

    monkeypatch.setitem(sys.modules, "tlc.quantize.ort_int8", fake_ort_int8(symmetric=False))
    with pytest.raises(BuildError, match="uint8 zero point"):
        build_tensorrt(make_ctx("jetson-agx-orin", "int8"))
    # onnxruntime's default int32 biases: folded to float32 constants, computing exactly the same
    monkeypatch.setitem(sys.modules, "tlc.quantize.ort_int8", fake_ort_int8(symmetric=True, quantize_bias=True))
    ctx3 = make_ctx("jetson-agx-orin", "int8")
    ctx3.tolerance = ctx.tolerance
    original = run_onnx_before_prepare(ctx3, monkeypatch)
    built3 = build_tensorrt(ctx3)
    assert built3.report["prepare"] == ["3 int32 bias DequantizeLinear folded to float32 constants"]
    prepared = ctx3.staging / built3.artifact.files["model"].path
    images = digits_uint8()[0][:32]
    np.testing.assert_array_equal(run_onnx(prepared, images), run_onnx(original, images))


def run_onnx_before_prepare(ctx: BuildContext, monkeypatch) -> Path:
    """Keep a copy of the INT8 builder's model (the build deletes it once prepared)."""
    import shutil

    import tlc.tensorrt.build as build_module

    copy = ctx.staging.parent / "int8.original.onnx"
    real = build_module.prepare_for_tensorrt

    def spy(source, out, target):
        shutil.copy(source, copy)
        return real(source, out, target)

    monkeypatch.setattr(build_module, "prepare_for_tensorrt", spy)
    return copy
