"""OpenVINO IR builds (fp32, fp16, int8 via NNCF) of the trained digits model, run through tlc_runtime."""

from __future__ import annotations

import numpy as np
import pytest
from tlc.errors import BudgetError
from tlc.quantize.openvino_build import XML, build_openvino
from tlc.targets import Tolerance
from tlc.verify.compare import softmax

pytestmark = pytest.mark.openvino
ov = pytest.importorskip("openvino", reason="the openvino package is not installed")


def test_fp32_ir_matches_onnxruntime_and_runs_f32(make_ctx, digits_model):
    import onnxruntime as ort

    seen = []
    ctx = make_ctx(target="intel-cpu", precision="fp32", seen=seen)
    built = build_openvino(ctx)
    art = built.artifact
    assert art.format == "openvino-ir" and art.precision == "fp32" and (ctx.staging / XML).is_file()
    assert art.options["INFERENCE_PRECISION_HINT"] == "f32" and art.options["device"] == "CPU"
    _, info = seen[-1]
    assert info.backend == "openvino" and info.precision == "f32", "the f32 hint must be honoured (no bf16)"
    session = ort.InferenceSession(str(digits_model["onnx"]), providers=["CPUExecutionProvider"])
    ref = session.run(None, {"pixels": digits_model["x_eval"]})[0]
    from tlc_runtime.backends import get_backend
    from tlc_runtime.integrity import read_artifact

    got = get_backend("openvino").open(art, read_artifact(ctx.staging, art), ctx.input_spec).infer(digits_model["x_eval"])
    assert np.abs(softmax(ref) - softmax(got)).max() <= 1e-4
    assert built.report["result"]["passed"]



@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_ir_carries_its_hints_and_layout_for_plain_openvino(make_ctx, digits_model, precision):
    """Issue #10 item 4: a user's plain ``compile_model(xml, "CPU")`` gets the artifact's f32 precision
    and performance hints and the NHWC layout from the IR itself, and tlc_runtime's outputs."""
    from tlc_runtime.backends import get_backend
    from tlc_runtime.integrity import read_artifact

    ctx = make_ctx(target="intel-cpu", precision=precision)
    art = build_openvino(ctx).artifact
    core = ov.Core()
    model = core.read_model(str(ctx.staging / XML))
    for key in ("INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT"):
        assert model.get_rt_info(["runtime_options", key]).astype(str) == art.options[key]
    assert model.inputs[0].get_node().get_layout() == ov.Layout("NHWC")
    compiled = core.compile_model(str(ctx.staging / XML), "CPU")
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    x = digits_model["x_eval"][:64]
    plain = np.concatenate([np.asarray(compiled(x[i:i + 1])[0]) for i in range(len(x))])
    ours = get_backend("openvino").open(art, read_artifact(ctx.staging, art), ctx.input_spec).infer(x)
    assert np.abs(softmax(plain) - softmax(ours)).max() <= 1e-5


def test_fp16_ir_records_f16_hint_and_halves_weights(make_ctx):
    fp32 = build_openvino(make_ctx(target="intel-gpu", precision="fp32"))
    ctx = make_ctx(target="intel-gpu", precision="fp16")
    built = build_openvino(ctx)
    assert built.artifact.options["INFERENCE_PRECISION_HINT"] == "f16"
    assert fp32.artifact.options["INFERENCE_PRECISION_HINT"] == "f32"
    assert built.artifact.options["device"] == "GPU"  # recorded; this machine runs it on its CPU
    assert built.artifact.files["bin"].bytes < 0.6 * fp32.artifact.files["bin"].bytes
    assert built.report["result"]["passed"]


def test_int8_nncf_builds_within_budget(make_ctx):
    ctx = make_ctx(target="intel-cpu", precision="int8")
    built = build_openvino(ctx)
    report = built.report
    assert built.artifact.precision == "int8" and report["method"] == "nncf"
    assert report["quantized_layers"] >= 5 and report["preprocessing_ops_in_float"] > 0
    assert report["result"]["passed"] and report["steps"][0]["stage"] == "quantize"
    assert built.artifact.options["INFERENCE_PRECISION_HINT"] == "f32"
    xml = (ctx.staging / XML).read_text()
    assert "FakeQuantize" in xml


def test_int8_without_accuracy_control_stops_at_budget_error(make_ctx):
    import dataclasses

    ctx = make_ctx(target="intel-cpu", precision="int8",
                   tolerance=Tolerance(min_agreement=1.0, max_balanced_accuracy_drop=0.0, max_abs_prob_delta=1e-9))
    ctx.target = dataclasses.replace(ctx.target, openvino=dataclasses.replace(ctx.target.openvino,
                                                                              accuracy_control=False))
    lines = []
    ctx.log = lines.append
    with pytest.raises(BudgetError, match="enable openvino.accuracy_control"):
        build_openvino(ctx)
    assert any("(quantize(bias_correction))" in line for line in lines)
    assert not any("(accuracy_control" in line for line in lines), "accuracy control must not run"
    assert not (ctx.staging / XML).exists()


@pytest.mark.slow
def test_int8_accuracy_control_runs_on_evaluation_images_then_budget_error(make_ctx, digits_model):
    ctx = make_ctx(target="intel-cpu", precision="int8",
                   tolerance=Tolerance(min_agreement=1.0, max_balanced_accuracy_drop=0.0, max_abs_prob_delta=1e-9))
    ctx.evaluation_inputs = digits_model["x_eval"]
    lines = []
    ctx.log = lines.append
    with pytest.raises(BudgetError, match="every rung of the ladder.*fallback: agreement"):
        build_openvino(ctx)
    assert sum("accuracy_control" in line for line in lines) == 2
    assert not (ctx.staging / XML).exists()
