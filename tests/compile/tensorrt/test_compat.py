"""check_tensorrt_compat on small onnx.helper graphs: each planted problem is reported, clean graphs pass."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from tlc.targets import load_target
from tlc.tensorrt.compat import check_tensorrt_compat

ORIN, NANO, XAVIER = load_target("jetson-orin-nano"), load_target("jetson-nano"), load_target("jetson-xavier-nx")


def classifier(input_type: int = TensorProto.UINT8, dims: tuple = ("batch", 8, 8, 1), extra: list | None = None,
               opset: int = 17, extra_inits: list | None = None, domains: tuple = ()) -> onnx.ModelProto:
    """pixels NHWC → Cast → Transpose → Conv → GlobalAveragePool → Flatten → Gemm → logits (+ extra nodes)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 1, 3, 3)).astype(np.float32), "conv_w"),
             numpy_helper.from_array(rng.normal(size=(3, 4)).astype(np.float32), "fc_w"),
             numpy_helper.from_array(np.zeros(3, np.float32), "fc_b")] + (extra_inits or [])
    nodes = [helper.make_node("Cast", ["pixels"], ["x"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Transpose", ["x"], ["x_nchw"], name="to_nchw", perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["x_nchw", "conv_w"], ["conv"], name="conv", pads=[1, 1, 1, 1]),
             *(extra or [helper.make_node("Relu", ["conv"], ["feat"], name="relu")]),
             helper.make_node("GlobalAveragePool", ["feat"], ["pooled"], name="gap"),
             helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("pixels", input_type, list(dims))],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])], inits)
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=imports)


def check(model: onnx.ModelProto, tmp_path: Path, target=ORIN, precision: str | None = None) -> list:
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return check_tensorrt_compat(path, target, precision)


def ops_of(violations: list) -> list[str]:
    return [v.op for v in violations]


def test_clean_graph_passes_on_every_tensorrt_target(tmp_path: Path) -> None:
    float_input = classifier(TensorProto.FLOAT, opset=13)
    for target in (ORIN, XAVIER, NANO, load_target("nvidia-gpu"), load_target("jetson-agx-orin")):
        assert check(float_input, tmp_path, target) == [], target.name
    assert check(classifier(), tmp_path, ORIN) == []


def test_unsupported_op_is_reported_with_a_fix(tmp_path: Path) -> None:
    unique = [helper.make_node("Unique", ["conv"], ["feat"], name="planted_unique", sorted=1)]
    found = check(classifier(extra=unique), tmp_path)
    assert [(v.node, v.op) for v in found] == [("planted_unique", "Unique")]
    assert "not supported" in found[0].reason and found[0].fix


def test_custom_domain_op_is_reported(tmp_path: Path) -> None:
    custom = [helper.make_node("FancyAct", ["conv"], ["feat"], name="custom", domain="com.example")]
    found = check(classifier(extra=custom, domains=("com.example",)), tmp_path)
    assert ops_of(found) == ["com.example::FancyAct"] and "plugin" in found[0].reason


def test_op_newer_than_the_targets_tensorrt_is_reported(tmp_path: Path) -> None:
    hardswish = [helper.make_node("HardSwish", ["conv"], ["feat"], name="hswish")]
    model = classifier(TensorProto.FLOAT, extra=hardswish, opset=14)
    assert check(model, tmp_path, ORIN) == []
    found = check(model, tmp_path, dataclasses.replace(NANO, tensorrt=dataclasses.replace(NANO.tensorrt, max_opset=14)))
    assert ops_of(found) == ["HardSwish"] and "8.5" in found[0].reason


def test_wrong_opset_is_reported(tmp_path: Path) -> None:
    found = check(classifier(TensorProto.FLOAT, opset=18), tmp_path, XAVIER)
    assert ops_of(found) == ["opset"] and "18 > 17" in found[0].reason
    assert ops_of(check(classifier(TensorProto.FLOAT, opset=17), tmp_path, NANO)) == ["opset"]


@pytest.mark.parametrize(("dtype", "target", "bad"), [
    (TensorProto.UINT16, ORIN, True), (TensorProto.DOUBLE, ORIN, True),
    (TensorProto.UINT8, NANO, True), (TensorProto.UINT8, XAVIER, False), (TensorProto.FLOAT, NANO, False)])
def test_graph_input_types(tmp_path: Path, dtype: int, target, bad: bool) -> None:
    found = check(classifier(dtype, opset=13), tmp_path, target)
    assert ops_of(found) == (["graph input"] if bad else [])


def test_uint16_input_message_names_the_input_and_fix(tmp_path: Path) -> None:
    (found,) = check(classifier(TensorProto.UINT16), tmp_path)
    assert found.node == "pixels" and "uint16" in found.reason and "float32" in found.fix


def test_only_the_batch_may_be_dynamic(tmp_path: Path) -> None:
    found = check(classifier(dims=("batch", "height", 8, 1)), tmp_path)
    assert ops_of(found) == ["graph input"] and "dimension 1 is dynamic" in found[0].reason


def qdq_model(q_zp: np.ndarray, dq_zp: np.ndarray | None = None, act_scale: float | np.ndarray = 0.05,
              w_scale=None, w_axis: int = 0) -> onnx.ModelProto:
    """Conv input and weight quantized with QDQ (activation Q/DQ pair, weight DQ)."""
    w_scale = np.full(4, 0.02, np.float32) if w_scale is None else w_scale
    inits = [numpy_helper.from_array(np.asarray(act_scale, np.float32), "a_scale"),
             numpy_helper.from_array(q_zp, "a_zp"),
             numpy_helper.from_array(q_zp if dq_zp is None else dq_zp, "a_zp_dq"),
             numpy_helper.from_array(np.ones((4, 1, 3, 3), np.int8), "w_q"),
             numpy_helper.from_array(w_scale, "w_scale"),
             numpy_helper.from_array(np.zeros(w_scale.shape, np.int8), "w_zp")]
    extra = [helper.make_node("QuantizeLinear", ["conv", "a_scale", "a_zp"], ["conv_q"], name="q_act"),
             helper.make_node("DequantizeLinear", ["conv_q", "a_scale", "a_zp_dq"], ["conv_dq"], name="dq_act"),
             helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w2"], name="dq_w", axis=w_axis),
             helper.make_node("Conv", ["conv_dq", "w2"], ["feat"], name="conv2", pads=[1, 1, 1, 1], group=4)]
    return classifier(TensorProto.FLOAT, extra=extra, extra_inits=inits, opset=13)


def test_symmetric_int8_qdq_passes(tmp_path: Path) -> None:
    assert check(qdq_model(np.int8(0)), tmp_path) == []


def test_asymmetric_qdq_is_reported(tmp_path: Path) -> None:
    uint8 = check(qdq_model(np.uint8(128)), tmp_path)
    assert {v.node for v in uint8} == {"q_act", "dq_act"} and all("uint8 zero point" in v.reason for v in uint8)
    nonzero = check(qdq_model(np.int8(3)), tmp_path)
    assert {v.node for v in nonzero} == {"q_act", "dq_act"} and all("not 0" in v.reason for v in nonzero)


def test_per_channel_activation_scale_is_reported(tmp_path: Path) -> None:
    found = check(qdq_model(np.zeros(4, np.int8), act_scale=np.full(4, 0.05, np.float32)), tmp_path)
    assert {v.node for v in found} >= {"q_act"} and any("per tensor" in v.reason for v in found)


def test_per_channel_weights_must_use_the_output_channel_axis(tmp_path: Path) -> None:
    w_scale = np.full((1,), 0.02, np.float32)  # size-1 axis 1 of a depthwise weight: per-tensor, fine
    assert check(qdq_model(np.int8(0), w_scale=w_scale, w_axis=1), tmp_path) == []
    found = check(qdq_model(np.int8(0), w_scale=np.full(3, 0.02, np.float32), w_axis=2), tmp_path)
    assert [v.node for v in found] == ["dq_w"] and "axis 2" in found[0].reason


def test_qdq_pair_with_different_zero_points_is_reported(tmp_path: Path) -> None:
    found = check(qdq_model(np.int8(0), dq_zp=np.int8(0)), tmp_path)
    assert found == []  # same values under different names are one pair
    mismatched = qdq_model(np.int8(0))
    for init in mismatched.graph.initializer:
        if init.name == "a_scale":
            init.CopyFrom(numpy_helper.from_array(np.float32(0.05), "a_scale"))
    mismatched.graph.initializer.append(numpy_helper.from_array(np.float32(0.07), "b_scale"))
    mismatched.graph.node[4].input[1] = "b_scale"  # dq_act reads another scale
    assert [v.node for v in check(mismatched, tmp_path)] == ["dq_act"]


def test_dla_cannot_build_fp32(tmp_path: Path) -> None:
    agx = load_target("jetson-agx-orin")
    dla = dataclasses.replace(agx, tensorrt=dataclasses.replace(agx.tensorrt, use_dla=True))
    assert ops_of(check(classifier(), tmp_path, dla, "fp32")) == ["DLA"]
    assert check(classifier(), tmp_path, dla, "fp16") == []


def test_many_identical_violations_summarize_to_one_short_line() -> None:
    from tlc.tensorrt.violation import Violation, summarize

    many = [Violation(f"bias_{i}", "DequantizeLinear", "int32 bias", "keep biases float") for i in range(21)]
    line = summarize(many + [Violation("pixels", "graph input", "uint16 input", "cast to float32")])
    assert line == ("bias_0, bias_1, bias_2 (+18 more) (DequantizeLinear): int32 bias; fix: keep biases float; "
                    "pixels (graph input): uint16 input; fix: cast to float32")


def test_int32_bias_dequantize_is_reported(tmp_path: Path) -> None:
    bias = [numpy_helper.from_array(np.arange(4, dtype=np.int32), "b_q"),
            numpy_helper.from_array(np.float32(0.001), "b_scale"),
            numpy_helper.from_array(np.int32(0), "b_zp")]
    extra = [helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zp"], ["b"], name="dq_bias"),
             helper.make_node("Conv", ["conv", "w4", "b"], ["feat"], name="conv2", group=4)]
    inits = bias + [numpy_helper.from_array(np.ones((4, 1, 1, 1), np.float32), "w4")]
    found = check(classifier(TensorProto.FLOAT, extra=extra, extra_inits=inits, opset=13), tmp_path)
    assert [(v.node, v.op) for v in found] == [("dq_bias", "DequantizeLinear")] and "int32" in found[0].reason
