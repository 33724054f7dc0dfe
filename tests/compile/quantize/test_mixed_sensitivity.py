"""Float islands in a QDQ model (graph surgery) and the sensitivity ranking, on the digits model."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from tlc.quantize.mixed import keep_in_float
from tlc.quantize.ort_int8 import QdqQuantizer, scheme_for
from tlc.quantize.sensitivity import quantized_nodes, rank_layers
from tlc.targets import load_target


@pytest.fixture(scope="module")
def qdq(digits_model, tmp_path_factory):
    work = tmp_path_factory.mktemp("qdq")
    quantizer = QdqQuantizer(digits_model["onnx"], digits_model["x_train"][:64], scheme_for(load_target("x86-cpu")),
                             "minmax", 99.99, work)
    path = quantizer.build(work / "int8.onnx")
    model = onnx.load(str(path))
    return {"quantizer": quantizer, "path": path, "model": model, "float": onnx.load(str(quantizer.prepared)),
            "nodes": quantized_nodes(model, skip=quantizer.preprocessing)}


def _run(model, x):
    blob = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(blob, providers=["CPUExecutionProvider"]).run(None, {"pixels": x})[0]


def test_every_node_in_float_gives_back_the_float_model(qdq, digits_model):
    x = digits_model["x_eval"][:64]
    mixed = keep_in_float(qdq["model"], qdq["float"], qdq["nodes"])
    onnx.checker.check_model(mixed)
    assert not [n for n in mixed.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    # ONNX Runtime folded Relus into the uint8 ranges; surgery must put them back for float readers
    assert [n for n in mixed.graph.node if n.op_type == "Relu" and n.name.endswith("_float")]
    np.testing.assert_allclose(_run(mixed, x), _run(qdq["quantizer"].prepared, x), atol=1e-5)


def test_partial_float_islands_compute_in_float(qdq, digits_model):
    x = digits_model["x_eval"][:64]
    chosen = qdq["nodes"][::3]
    mixed = keep_in_float(qdq["model"], qdq["float"], chosen)
    onnx.checker.check_model(mixed)
    made_by = {o: n for n in mixed.graph.node for o in n.output}
    for node in (n for n in mixed.graph.node if n.name in chosen):
        assert all(made_by.get(t) is None or made_by[t].op_type != "DequantizeLinear" for t in node.input)
    ref = _run(qdq["quantizer"].prepared, x)
    err_int8 = np.abs(_run(qdq["model"], x) - ref).mean()
    err_mixed = np.abs(_run(mixed, x) - ref).mean()
    assert 0 < err_mixed < err_int8


def test_a_badly_quantized_tensor_ranks_its_reader_first(qdq, digits_model):
    """Coarsen one activation's scale 16×: the node reading it must become the most sensitive."""
    model = onnx.ModelProto.FromString(qdq["model"].SerializeToString())
    victim = qdq["nodes"][len(qdq["nodes"]) // 2]
    node = next(n for n in model.graph.node if n.name == victim)
    made_by = {o: n for n in model.graph.node for o in n.output}
    dq = made_by[node.input[0]]
    q = made_by[dq.input[0]]
    scale_name = q.input[1]
    inits = {i.name: i for i in model.graph.initializer}
    coarse = numpy_helper.to_array(inits[scale_name]) * 16
    inits[scale_name].CopyFrom(numpy_helper.from_array(coarse.astype(np.float32), scale_name))
    path = qdq["path"].with_name("coarse.onnx")
    onnx.save(model, str(path))
    ranked = rank_layers(qdq["quantizer"].prepared, path, qdq["nodes"], digits_model["x_train"][:16], "pixels")
    assert ranked[0].name == victim and ranked[0].activation_nsr > 10 * ranked[-1].score
    baseline = rank_layers(qdq["quantizer"].prepared, qdq["path"], qdq["nodes"], digits_model["x_train"][:16], "pixels")
    assert baseline[0].name != victim or baseline[0].score < ranked[0].score / 10
    assert {r.name for r in baseline} == set(qdq["nodes"])


def test_a_folded_relu_is_not_counted_as_noise(qdq, digits_model, tmp_path):
    """Where ONNX Runtime folded a Relu into a uint8 range starting at 0, the local noise is measured
    against the activation. ONNX Runtime's qdq_loss_debug ``qdq_err`` counts the activation itself as
    noise there, which is why sensitivity.py does not rank with it (figures in its docstring)."""
    from onnxruntime.quantization import qdq_loss_debug as qd

    x = digits_model["x_train"][:16]
    ours = {r.name: r.activation_nsr for r in rank_layers(qdq["quantizer"].prepared, qdq["path"], qdq["nodes"],
                                                          x, "pixels")}
    augmented = tmp_path / "augmented.onnx"
    qd.modify_model_output_intermediate_tensors(str(qdq["path"]), str(augmented))
    matched = qd.create_activation_matching(qd.collect_activations(str(augmented), [{"pixels": x}]))
    library = {name: 10 ** (-qd.compute_signal_to_quantization_noice_ratio(m["pre_qdq"], m["post_qdq"]) / 10)
               for name, m in matched.items()}
    made_by = {o: n for n in qdq["model"].graph.node for o in n.output}
    read_by: dict[str, int] = {}
    for node in qdq["model"].graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            for t in node.input:
                read_by[t] = read_by.get(t, 0) + 1
    theirs = {}
    for node in (n for n in qdq["model"].graph.node if n.name in ours):
        dq_outs = [t for t in node.input if (p := made_by.get(t)) is not None and p.op_type == "DequantizeLinear"
                   and t.removesuffix("_DequantizeLinear_Output") in library]
        theirs[node.name] = sum(library[t.removesuffix("_DequantizeLinear_Output")] / read_by[t] for t in dq_outs)
    assert all(ours[n] <= theirs[n] * 1.01 + 1e-9 for n in ours)  # same measure where nothing was folded
    assert max(theirs[n] / max(ours[n], 1e-12) for n in ours) > 100  # folded: the activation is not noise
