"""ORT INT8 keeps the nodes that only compute the extra outputs (an OOD head's MatMul by the precision
matrix) in float: quantizing them hurts the gate and buys no speed the logits need."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tlc.export.onnx_export import export_onnx, input_spec_for
from tlc.quantize.graph import producers, score_only_nodes
from tlc.quantize.ort_int8 import QdqQuantizer, scheme_for
from tlc.targets import load_target
from torch import nn

pytest.importorskip("onnxruntime")


class Scored(nn.Module):
    """Conv features; logits from a Linear head, and a score from a MatMul by a fixed matrix."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Linear(8, 3)
        self.register_buffer("precision", torch.eye(8) + 0.1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = torch.relu(self.conv(x.permute(0, 3, 1, 2))).mean(dim=(2, 3))
        return {"logits": self.head(features), "score": ((features @ self.precision) * features).sum(dim=1)}


@pytest.fixture(scope="module")
def scored_onnx(tmp_path_factory):
    torch.manual_seed(0)
    inputs = np.random.default_rng(0).random((32, 6, 6, 1), dtype=np.float32)
    path = tmp_path_factory.mktemp("scored") / "m.onnx"
    export_onnx(Scored().eval(), input_spec_for(6, 6, 1, "float32"), path, inputs)
    return path, inputs


def test_the_nodes_only_the_score_needs_are_found(scored_onnx):
    import onnx

    model = onnx.load(str(scored_onnx[0]))
    only = {n.name: n for n in model.graph.node if n.name in set(score_only_nodes(model))}
    assert "MatMul" in {n.op_type for n in only.values()}
    assert not {"Conv", "Gemm"} & {n.op_type for n in only.values()}  # the logits need those
    assert any("score" in n.output for n in only.values())


def test_int8_quantizes_the_logits_path_and_keeps_the_score_in_float(scored_onnx, tmp_path):
    import onnx

    path, inputs = scored_onnx
    quantizer = QdqQuantizer(path, inputs, scheme_for(load_target("x86-cpu")), "minmax", 99.99, tmp_path)
    model = onnx.load(str(quantizer.build(tmp_path / "int8.onnx")))
    made_by = producers(model)

    def int8_weight(node) -> bool:  # the features the head and the score share are quantized once, for the head
        return getattr(made_by.get(node.input[1]), "op_type", None) == "DequantizeLinear"

    layers = {n.op_type: n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")}
    assert int8_weight(layers["Conv"]) and int8_weight(layers["Gemm"])
    assert not int8_weight(layers["MatMul"]) and layers["MatMul"].input[1] == "precision"
    assert not set(score_only_nodes(onnx.load(str(quantizer.prepared)))) & set(quantizer.layers)


def test_openvino_finds_the_same_score_only_ops(scored_onnx):
    ov = pytest.importorskip("openvino")
    from tlc.quantize.openvino_build import score_only_ops

    model = ov.Core().read_model(str(scored_onnx[0]))
    only = {op.get_friendly_name(): op.get_type_name() for op in model.get_ordered_ops()
            if op.get_friendly_name() in set(score_only_ops(model))}
    assert "MatMul" in only.values()
    assert not {"Convolution", "Parameter", "Constant", "Result"} & set(only.values())
    logits_path = {op.get_friendly_name() for op in model.get_ordered_ops()
                   if op.get_type_name() in ("Convolution", "MatMul") and op.get_friendly_name() not in only}
    assert len(logits_path) == 2  # the conv and the head stay quantizable
    assert score_only_ops(model, logits="no_such_output") == []
