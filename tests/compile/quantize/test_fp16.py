"""FP16 ONNX conversion: runs in ONNX Runtime with float32/uint8 I/O and stays close to FP32."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from tlc.bundler.context import BuildContext
from tlc.errors import BudgetError
from tlc.quantize.fp16 import build_onnx_fp16, convert_to_fp16
from tlc.verify.compare import compare_logits

ort = pytest.importorskip("onnxruntime", reason="the FP16 model is checked by running it in onnxruntime")


def _tiny_module():
    """The tiny trained CNN shared with tests/compile/tensorrt (loaded by path: test dirs are no packages)."""
    path = Path(__file__).parents[1] / "tensorrt" / "trt_tiny_cnn.py"
    spec = importlib.util.spec_from_file_location("trt_tiny_cnn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tiny_cnn = _tiny_module()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("torch", reason="the tiny test model is trained with torch")
    pytest.importorskip("sklearn", reason="the tiny test model uses sklearn digits")
    path, images, labels = tiny_cnn.build_tiny_onnx(tmp_path_factory.mktemp("fp16") / "model.fp32.onnx")
    return path, images, labels, tiny_cnn.run_onnx(path, images)


def io_and_init_types(path: Path) -> tuple[int, int, set[int]]:
    graph = onnx.load(str(path)).graph
    return (graph.input[0].type.tensor_type.elem_type, graph.output[0].type.tensor_type.elem_type,
            {t.data_type for t in graph.initializer})


def test_trained_cnn_in_fp16_matches_fp32(tiny, tmp_path: Path) -> None:
    fp32, images, labels, reference = tiny
    result = convert_to_fp16(fp32, tmp_path / "m16.onnx")
    assert io_and_init_types(result.path) == (TensorProto.UINT8, TensorProto.FLOAT, {TensorProto.FLOAT16})
    # the fused preprocessing (uint8 cast, scaling, normalisation, layout) stays float32
    kept = {n.op_type for n in onnx.load(str(fp32)).graph.node if n.name in result.float32_nodes}
    assert {"Cast", "Div", "Sub", "Transpose"} <= kept
    assert result.converted_nodes > 0 and result.casts_inserted == 2  # into the backbone, out of the head
    comparison = compare_logits(reference, tiny_cnn.run_onnx(result.path, images), labels, bootstrap=50)
    assert comparison.agreement >= 0.99 and comparison.max_abs_prob_delta < 1e-2
    assert comparison.max_abs_logit_delta > 0  # it really computed in float16
    assert abs(comparison.balanced_accuracy_drop) <= 0.01



def test_fp16_onnx_keeps_the_metadata_of_its_source(tiny, tmp_path: Path) -> None:
    """Issue #10 item 4: class names and preprocessing summary survive the FP16 conversion."""
    model = onnx.load(str(tiny[0]))
    metadata = {"class_names": '["a", "b"]', "preprocessing": '{"value_range": [0.0, 255.0]}'}
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(tmp_path / "with-metadata.onnx"))
    result = convert_to_fp16(tmp_path / "with-metadata.onnx", tmp_path / "m16.onnx")
    assert {p.key: p.value for p in onnx.load(str(result.path)).metadata_props} == metadata


def softmax_graph(tmp_path: Path) -> Path:
    """x → MatMul(W) → Add(W2 shared with a Mul after the Softmax) → Softmax → Mul(W2) → y, plus a huge constant."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(6, 4)).astype(np.float32), "w")
    shared = numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "shared")
    huge = numpy_helper.from_array(np.array([1e6, 1.0, 1.0, 1.0], np.float32), "huge")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Add", ["h", "shared"], ["h2"], name="add"),
             helper.make_node("Softmax", ["h2"], ["p"], name="softmax", axis=-1),
             helper.make_node("Mul", ["p", "shared"], ["q"], name="scale_after"),
             helper.make_node("Min", ["q", "huge"], ["y"], name="cap")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])], [w, shared, huge])
    path = tmp_path / "g.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9  # what tlc's exports carry; onnx's newest IR is more than an older ONNX Runtime reads
    onnx.save(model, str(path))
    return path


def run(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_keep_list_shared_initializers_and_clipping(tmp_path: Path) -> None:
    src = softmax_graph(tmp_path)
    result = convert_to_fp16(src, tmp_path / "g16.onnx", keep_float32_nodes=["scale_after"])
    graph = onnx.load(str(result.path)).graph
    softmax = next(n for n in graph.node if n.op_type == "Softmax")
    producer = {o: n for n in graph.node for o in n.output}
    assert producer[softmax.input[0]].op_type == "Cast"  # fp16 Add → Cast → float32 Softmax
    types = {t.name: t.data_type for t in graph.initializer}
    assert types["w"] == TensorProto.FLOAT16
    assert types["shared"] == TensorProto.FLOAT and types["shared__fp16"] == TensorProto.FLOAT16  # read by both
    assert result.clipped_values == 1 and "softmax" in result.float32_nodes and "scale_after" in result.float32_nodes
    x = np.random.default_rng(1).normal(size=(5, 6)).astype(np.float32)
    out, ref = run(result.path, x), run(src, x)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out, ref, atol=5e-3)


def make_ctx(tiny, tmp_path: Path, tolerance, widen=None) -> tuple[BuildContext, list]:
    fp32, images, labels, reference = tiny
    from tlc.targets import load_target
    calls: list = []

    def evaluate(artifact):
        calls.append(artifact)
        return compare_logits(reference, tiny_cnn.run_onnx(tmp_path / artifact.files["model"].path, images),
                              labels, bootstrap=50)

    target = load_target("jetson")
    ctx = BuildContext(target=target, precision="fp16", run=tiny_cnn.run_info(), input_spec=tiny_cnn.input_spec(),
                       fp32_onnx=fp32, staging=tmp_path, calibration=None, evaluate=evaluate,
                       tolerance=tolerance or widen(target.tolerance("fp16")), log=lambda _m: None)
    return ctx, calls


def test_build_onnx_fp16_returns_a_measured_artifact(tiny, tmp_path: Path, small_eval_budget) -> None:
    ctx, calls = make_ctx(tiny, tmp_path, None, small_eval_budget)
    built = build_onnx_fp16(ctx)
    art = built.artifact
    assert (art.format, art.backend, art.precision, art.files["model"].path) == \
        ("onnx", "onnxruntime", "fp16", "model.fp16.onnx")
    assert calls == [art] and built.report["steps"][0]["failures"] == []


def test_build_onnx_fp16_tries_the_head_in_float32_then_gives_up(tiny, tmp_path: Path) -> None:
    from tlc.targets import Tolerance
    ctx, calls = make_ctx(tiny, tmp_path, Tolerance(min_agreement=1.0, max_balanced_accuracy_drop=0.0,
                                                     max_abs_prob_delta=1e-12))
    with pytest.raises(BudgetError, match="head in float32"):
        build_onnx_fp16(ctx)
    assert len(calls) == 2 and not (tmp_path / "model.fp16.onnx").exists()


def test_float32_islands_keep_exact_constants_and_float32_output(tiny, tmp_path: Path) -> None:
    """The ladder's second step (preprocessing and head in float32): what the float32 nodes read is the
    source's float32 values bit for bit (onnxconverter-common rounds them through float16), the graph
    output stays float32 (it turns float16 there), and the graph passes onnx.checker (ONNX Runtime's
    converter leaves it unsorted). Why ``convert_to_fp16`` is not replaced: see the fp16 module docstring."""
    from tlc.quantize.fp16 import fp16_steps

    fp32 = tiny[0]
    _label, keep = fp16_steps(fp32)[-1]
    result = convert_to_fp16(fp32, tmp_path / "m16.onnx", keep_float32_nodes=keep)
    model = onnx.load(str(result.path))
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    source = onnx.load(str(fp32)).graph
    source_consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in source.node
                     if n.op_type == "Constant"}
    source_consts.update({t.name: numpy_helper.to_array(t) for t in source.initializer})
    made_by = {o: n for n in model.graph.node for o in n.output}
    converted = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node
                 if n.op_type == "Constant"}
    converted.update({t.name: numpy_helper.to_array(t) for t in model.graph.initializer})
    kept = [n for n in model.graph.node if n.name in set(keep)]
    read = [(n.name, name) for n in kept for name in n.input if name in source_consts and
            source_consts[name].dtype == np.float32]
    assert len(kept) == len(keep) and read  # the preprocessing reads mean/std, the head its weights
    for node, name in read:
        assert made_by.get(name) is None or made_by[name].op_type == "Constant", (node, name)
        assert converted[name].dtype == np.float32 and np.array_equal(converted[name], source_consts[name]), \
            (node, name)
