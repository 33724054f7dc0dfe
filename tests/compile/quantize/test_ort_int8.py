"""INT8 QDQ with ONNX Runtime: real quantization of a trained digits model, budget and fallback."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from tlc.errors import BudgetError, ConfigError
from tlc.quantize.ort_int8 import MODEL_FILE, build_ort_int8, scheme_for
from tlc.targets import Tolerance, load_target
from tlc_runtime.integrity import sha256_file


def _qdq_nodes(path):
    model = onnx.load(str(path))
    return model, [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]


def test_int8_builds_and_agrees_with_fp32(make_ctx):
    ctx = make_ctx()
    built = build_ort_int8(ctx)
    art = built.artifact
    path = ctx.staging / MODEL_FILE
    assert art.precision == "int8" and art.format == "onnx" and art.files["model"].sha256 == sha256_file(path)
    model, qdq = _qdq_nodes(path)
    assert qdq, "no Q/DQ nodes were inserted"
    # preprocessing stays float: nothing before the first Conv is quantized; logits leave in float
    first_conv = next(i for i, n in enumerate(model.graph.node) if n.op_type == "Conv")
    prep = [n for n in model.graph.node[:first_conv] if n.op_type in ("Cast", "Div", "Clip", "Sub", "Transpose")]
    assert prep and all(n.op_type != "QuantizeLinear" or n.input[0].startswith("/Div_1") for n in prep)
    assert model.graph.output[0].name == "logits"
    assert next(n for n in model.graph.node if "logits" in n.output).op_type == "Gemm"
    # x86 → U8S8: uint8 activation zero points, int8 weights
    zp_types = {init.data_type for init in model.graph.initializer if init.name.endswith("zero_point")}
    assert onnx.TensorProto.UINT8 in zp_types and onnx.TensorProto.INT8 in zp_types
    report = built.report
    assert report["calibration_samples"] == 128 and report["calibration_method"] == "minmax"
    step = report["result"]
    assert step["passed"] and step["agreement"] >= ctx.tolerance.min_agreement
    assert step["balanced_accuracy_drop"] <= ctx.tolerance.max_balanced_accuracy_drop
    assert report["steps"][0]["n_float"] == 0


def _fallback_deltas(make_ctx) -> list[float]:
    """max |Δprob| of every candidate the fallback builds under an impossible budget (all-INT8 first)."""
    probe = make_ctx(tolerance=Tolerance(min_agreement=0.0, max_balanced_accuracy_drop=1.0, max_abs_prob_delta=0.0))
    deltas: list[float] = []

    def recording(artifact):
        comparison = probe_evaluate(artifact)
        deltas.append(comparison.max_abs_prob_delta)
        return comparison

    probe_evaluate, probe.evaluate = probe.evaluate, recording
    with pytest.raises(BudgetError):
        build_ort_int8(probe)
    return deltas


def test_tight_budget_forces_fallback_and_names_float_layers(make_ctx):
    # The real deviations, measured first: all-INT8, then each float mix the search tries. A budget
    # halfway between the all-INT8 deviation and the best mix's is met only by falling back, on any CPU.
    deltas = _fallback_deltas(make_ctx)
    delta, best = deltas[0], min(deltas[1:])
    assert delta > 1e-3, "INT8 should move probabilities measurably"
    assert best < delta, f"keeping the most sensitive layers in float should reduce the deviation: {deltas}"
    tight = Tolerance(min_agreement=0.0, max_balanced_accuracy_drop=1.0, max_abs_prob_delta=(delta + best) / 2)
    ctx = make_ctx(tolerance=tight)
    built = build_ort_int8(ctx)
    report = built.report
    steps = report["steps"]
    assert len(steps) >= 2 and not steps[0]["passed"] and steps[0]["n_float"] == 0
    assert report["float_layers"], "the report must name the layers kept in float"
    assert report["result"]["passed"] and report["result"]["max_abs_prob_delta"] <= tight.max_abs_prob_delta
    assert report["result"]["n_float"] == len(report["float_layers"]) <= report["max_float_nodes"]
    ranked = [r["name"] for r in report["sensitivity"]]
    assert report["float_layers"] == ranked[:len(report["float_layers"])], "most sensitive layers go first"
    # the float layers really compute in float: none of their inputs is dequantized
    model = onnx.load(str(ctx.staging / MODEL_FILE))
    nodes = {n.name: n for n in model.graph.node}
    made_by = {o: n for n in model.graph.node for o in n.output}
    for name in report["float_layers"]:
        assert all(made_by.get(t) is None or made_by[t].op_type != "DequantizeLinear" for t in nodes[name].input)
    assert built.artifact.options["quantization"]["float_layers"] == report["float_layers"]
    assert built.artifact.files["model"].sha256 == sha256_file(ctx.staging / MODEL_FILE)


def test_impossible_budget_raises_budget_error(make_ctx):
    ctx = make_ctx(tolerance=Tolerance(min_agreement=1.0, max_balanced_accuracy_drop=0.0, max_abs_prob_delta=1e-9),
                   options={"max_fallback_steps": 3})
    with pytest.raises(BudgetError, match="INT8 misses the accuracy budget.*--precision fp32"):
        build_ort_int8(ctx)
    assert not (ctx.staging / MODEL_FILE).exists()


@pytest.mark.parametrize("calibration, message", [
    (np.zeros((0, 16, 16, 1), np.uint8), "calibration set is empty"),
    (np.zeros((3, 16, 16, 1), np.uint8), "has 3 images; INT8 quantization needs at least 16"),
    (None, "calibration set is empty"),
])
def test_empty_or_small_calibration_is_config_error(make_ctx, calibration, message):
    ctx = make_ctx(calibration=calibration)
    if calibration is None:
        ctx.calibration = None
    with pytest.raises(ConfigError, match=message):
        build_ort_int8(ctx)


def test_tensorrt_and_arm_targets_get_symmetric_int8():
    x86 = load_target("x86-cpu")
    assert scheme_for(x86).activation_type == "uint8"
    assert scheme_for(load_target("arm64-cpu")).activation_symmetric
    trt = dataclasses.replace(x86, backend="tensorrt")
    scheme = scheme_for(trt)
    assert scheme.activation_type == "int8" and scheme.activation_symmetric
    with pytest.raises(ConfigError, match="symmetric int8"):
        scheme_for(trt, {"activation_type": "uint8"})


def test_symmetric_scheme_has_zero_points_zero(make_ctx):
    ctx = make_ctx(options={"activation_type": "int8", "calibration_method": "percentile"})
    built = build_ort_int8(ctx)
    model = onnx.load(str(ctx.staging / MODEL_FILE))
    zero_points = [onnx.numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith("zero_point")]
    assert any(zp.dtype == np.int8 for zp in zero_points)
    assert all(zp.dtype in (np.int8, np.int32) and not zp.any() for zp in zero_points)  # int32: biases
    assert built.report["calibration_method"] == "percentile" and built.report["scheme"]["activation_type"] == "int8"


def _used_domains(model) -> set[str]:
    return {"" if n.domain == "ai.onnx" else n.domain for n in model.graph.node}


@pytest.fixture
def fp32_with_metadata(digits_model, tmp_path):
    """The digits FP32 ONNX with the metadata_props tlc's exporter writes."""
    from tlc.export.onnx_export import onnx_metadata, set_metadata

    from .conftest import INPUT_SPEC, run_info

    run = run_info()
    metadata = onnx_metadata(run.class_names, INPUT_SPEC, run.preprocessing)
    model = onnx.load(str(digits_model["onnx"]))
    set_metadata(model, metadata)
    path = tmp_path / "fp32-with-metadata.onnx"
    onnx.save(model, str(path))
    return path, metadata


@pytest.mark.parametrize("budget", ["default", "fallback"])
def test_int8_onnx_keeps_metadata_and_declares_only_used_opsets(make_ctx, fp32_with_metadata, budget):
    """Issue #10 item 4: class names and preprocessing survive quantization (also a fallback mix);
    no opset domain is declared that no node uses (e.g. com.microsoft without contrib ops)."""
    path, metadata = fp32_with_metadata
    tolerance = None
    if budget == "fallback":  # an unreachable budget: every candidate, fallback mixes included, is written
        tolerance = Tolerance(min_agreement=0.0, max_balanced_accuracy_drop=1.0, max_abs_prob_delta=0.0)
    ctx = make_ctx(tolerance=tolerance, options={"max_fallback_steps": 1})
    ctx.fp32_onnx = path
    written = []
    evaluate = ctx.evaluate

    def recording(artifact):
        written.append(onnx.load(str(ctx.staging / MODEL_FILE)))
        return evaluate(artifact)

    ctx.evaluate = recording
    if budget == "fallback":
        with pytest.raises(BudgetError):
            build_ort_int8(ctx)
        assert len(written) >= 2, "the fallback should have tried a float mix"
    else:
        build_ort_int8(ctx)
    for model in written:
        props = {p.key: p.value for p in model.metadata_props}
        assert metadata.items() <= props.items(), f"metadata lost: {props}"
        declared = {"" if o.domain == "ai.onnx" else o.domain for o in model.opset_import}
        assert declared - {""} <= _used_domains(model), f"unused opset domains {declared - _used_domains(model)}"
