"""FP16 ONNX: float16 weights and activations, float32 graph inputs/outputs and float32 islands.

``convert_to_fp16`` rewrites a float32 ONNX with onnx alone: float initializers and Constant
tensors of converted nodes become float16 (clipped to ±65504), Casts are inserted wherever a
float16 tensor meets a float32 consumer (or the other way round), the graph's inputs and outputs
keep their float32/uint8 types, and value_info is recomputed. Kept in float32: the op types in
``keep_float32_op_types`` (numerically sensitive reductions and normalisations), nodes named in
``keep_float32_nodes`` (by default the fused preprocessing in front of the first compute op), nodes
with subgraphs, and inputs that ONNX requires to be float32 (Resize scales). The result is checked
with ``onnx.checker`` (full type check); ``build_onnx_fp16`` then measures it with ``ctx.evaluate``.

Why our own converter and not a library's (issue 10, measured with onnxconverter-common 1.16.0 and
onnxruntime 1.32.0 ``transformers.float16``, both called with ``keep_io_types=True``, our op types
added to ``op_block_list`` and our float32 nodes as ``node_block_list``; ONNX Runtime CPU, FP32 as
reference; PneumoniaMNIST val, 524 images at 64 px; one epoch from random init, so MobileNetV2 is badly
conditioned and shows the differences):

=====================  ==================  ==================  ====================
max |Δprob| / agree    tlc (this module)   onnxconverter       onnxruntime float16
=====================  ==================  ==================  ====================
tiny CNN (digits)      2.1e-3 / 100%       4.2e-3 / 100%       3.7e-3 / 99.75%
MobileNetV2            3.9e-2 / 99.05%     7.9e-2 / 98.47%     1.4e-1 / 96.56%
ResNet-18              1.4e-3 / 100%       1.6e-3 / 100%       2.4e-3 / 100%
Casts (MobileNetV2)    3                   9                   25
=====================  ==================  ==================  ====================

- onnxconverter-common rounds the Constants read by float32-kept nodes to float16 and casts them
  back, so the kept preprocessing normalises with mean/std off by up to 1.1e-4 (rounding only those
  constants in our output reproduces its MobileNetV2 figure exactly); an initializer shared by a
  float16 and a float32 reader stays float32 for both, which ONNX Runtime then refuses to load
  (type mismatch); with the head kept in float32 (our ladder's second step) the graph output becomes
  float16 despite ``keep_io_types``; out-of-range constants clip to ±1e4 by default.
- ONNX Runtime's converter round-trips every float32-kept node's output through float16 (the float32
  preprocessing computes on float16 values, hence the worst MobileNetV2 figure), adds 25 Casts, and
  leaves nodes out of topological order (``onnx.checker`` rejects the file).
Both pass the TensorRT compatibility check; neither meets the guarantees above without a wrapper
that patches four of their behaviours, which would be no smaller than this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tlc_runtime.integrity import file_entry
from tlc_runtime.manifest import Artifact

from ..bundler.context import BuildContext, BuiltArtifact
from ..errors import BudgetError, BuildError
from ..verify.budget import budget_violations
from .fp16_graph import compute_nodes_after_last, preprocessing_nodes, topological_sort

FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16
FP16_MAX = float(np.finfo(np.float16).max)

DEFAULT_KEEP_FLOAT32_OP_TYPES: tuple[str, ...] = (
    "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp",
    "LayerNormalization", "GroupNormalization", "Pow", "Sqrt", "Reciprocal", "Exp", "Log", "CumSum",
    "Range", "TopK", "NonMaxSuppression", "QuantizeLinear", "DequantizeLinear",
)
FLOAT32_ONLY_INPUTS: dict[str, frozenset[int]] = {"Resize": frozenset({1, 2}), "Upsample": frozenset({1})}
ANY_TYPE_INPUT_OPS = frozenset({"Cast", "Shape", "Size"})  # take any input type
SOURCE_OPS = frozenset({"Constant", "ConstantOfShape"})  # precision follows their consumers


@dataclass
class Fp16Result:
    path: Path
    converted_nodes: int
    float32_nodes: list[str] = field(default_factory=list)
    casts_inserted: int = 0
    clipped_values: int = 0


def convert_to_fp16(onnx_in: str | Path, onnx_out: str | Path,
                    keep_float32_op_types: Sequence[str] = DEFAULT_KEEP_FLOAT32_OP_TYPES,
                    keep_float32_nodes: Iterable[str] | None = None) -> Fp16Result:
    """Write an FP16 copy of ``onnx_in`` to ``onnx_out`` (float32 I/O kept, Casts at boundaries).

    ``keep_float32_nodes`` None means the preprocessing nodes (input up to the first Conv/Gemm/MatMul).
    """
    try:
        model = onnx.shape_inference.infer_shapes(onnx.load(str(onnx_in)))
    except Exception as exc:  # onnx raises many types for unreadable or inconsistent models
        raise BuildError(f"{onnx_in}: cannot read the ONNX for FP16 conversion ({exc})") from None
    graph = model.graph
    for i, node in enumerate(graph.node):
        node.name = node.name or f"{node.op_type}_{i}"
    keep_nodes = set(preprocessing_nodes(graph) if keep_float32_nodes is None else keep_float32_nodes)
    converter = _Converter(graph, frozenset(keep_float32_op_types), keep_nodes)
    result = converter.run()
    del graph.value_info[:]
    topological_sort(graph)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise BuildError(f"FP16 conversion of {Path(onnx_in).name} produced an invalid model ({exc}); "
                         "add the failing op type to keep_float32_op_types") from None
    onnx.save(model, str(onnx_out))
    result.path = Path(onnx_out)
    return result


class _Converter:
    """One pass over a shape-inferred graph; decides each float tensor's precision and rewires."""

    def __init__(self, graph: onnx.GraphProto, keep_ops: frozenset[str], keep_nodes: set[str]) -> None:
        self.graph = graph
        self.types = _elem_types(graph)
        self.inits = {t.name: t for t in graph.initializer}
        self.consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
        for node in graph.node:
            for idx, name in enumerate(node.input):
                if name:
                    self.consumers.setdefault(name, []).append((node, idx))
        self.outputs = {o.name for o in graph.output}
        self.mode = {n.name: self._mode(n, keep_ops, keep_nodes) for n in graph.node}
        self.prec: dict[str, str] = {}
        self.cast_cache: dict[tuple[str, str], str] = {}
        self.new_nodes: list[onnx.NodeProto] = []
        self.result = Fp16Result(path=Path(), converted_nodes=0)

    def _mode(self, node: onnx.NodeProto, keep_ops: frozenset[str], keep_nodes: set[str]) -> str:
        has_subgraph = any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)
        scalar_constant = any(a.name in ("value_float", "value_floats") for a in node.attribute)
        if node.op_type in keep_ops or node.name in keep_nodes or has_subgraph or scalar_constant:
            return "fp32"
        return "source" if node.op_type in SOURCE_OPS else "fp16"

    def _needed(self, node: onnx.NodeProto, idx: int) -> str | None:
        """Precision a consumer needs at input ``idx``: "fp16", "fp32", or None (any type)."""
        if node.op_type in ANY_TYPE_INPUT_OPS:
            return None
        if self.mode[node.name] == "fp32" or idx in FLOAT32_ONLY_INPUTS.get(node.op_type, ()):
            return "fp32"
        return "fp16"

    def _wants_fp16(self, tensor: str) -> bool:
        """A source tensor becomes fp16 when every consumer needs fp16 and it is no graph output."""
        uses = [self._needed(n, i) for n, i in self.consumers.get(tensor, [])]
        return tensor not in self.outputs and bool(uses) and all(u in ("fp16", None) for u in uses)

    def run(self) -> Fp16Result:
        for inp in self.graph.input:
            self.prec[inp.name] = "fp32"
        for name in self.inits:
            if self.types.get(name) == FLOAT:
                self.prec[name] = "fp16" if self._wants_fp16(name) else "fp32"
        for node in list(self.graph.node):
            self._convert_node(node)
        for node in list(self.graph.node):
            self._rewire_inputs(node)
        self._fix_outputs()
        self._convert_initializers()
        self.graph.node.extend(self.new_nodes)
        self.result.float32_nodes = sorted(n for n, m in self.mode.items() if m == "fp32")
        return self.result

    def _convert_node(self, node: onnx.NodeProto) -> None:
        mode = self.mode[node.name]
        if mode == "source":
            mode = "fp16" if all(self._wants_fp16(o) for o in node.output if self.types.get(o) == FLOAT) else "fp32"
            self.mode[node.name] = mode
        if mode == "fp16":
            for attr in node.attribute:
                if attr.name in ("to", "dtype") and attr.i == FLOAT:
                    attr.i = FLOAT16
                elif attr.name in ("value", "value_float") and attr.type == onnx.AttributeProto.TENSOR \
                        and attr.t.data_type == FLOAT:
                    attr.t.CopyFrom(self._to_fp16_tensor(attr.t))
            self.result.converted_nodes += 1
        for out in node.output:
            if self.types.get(out) == FLOAT:
                self.prec[out] = mode

    def _rewire_inputs(self, node: onnx.NodeProto) -> None:
        for idx, name in enumerate(node.input):
            if not name or self.types.get(name) != FLOAT:
                continue
            need = self._needed(node, idx)
            have = self.prec.get(name, "fp32")
            if need is None or need == have:
                continue
            node.input[idx] = self._fp16_twin(name) if name in self.inits and need == "fp16" \
                else self._cast(name, need)

    def _cast(self, name: str, to: str) -> str:
        key = (name, to)
        if key not in self.cast_cache:
            out = f"{name}__{to}"
            self.new_nodes.append(helper.make_node("Cast", [name], [out], name=f"{out}_cast",
                                                   to=FLOAT16 if to == "fp16" else FLOAT))
            self.cast_cache[key] = out
            self.result.casts_inserted += 1
        return self.cast_cache[key]

    def _fp16_twin(self, name: str) -> str:
        """A float16 copy of a float32 initializer that float32 consumers also read."""
        twin = f"{name}__fp16"
        if twin not in self.inits:
            tensor = self._to_fp16_tensor(self.inits[name])
            tensor.name = twin
            self.graph.initializer.append(tensor)
            self.inits[twin] = tensor
        return twin

    def _fix_outputs(self) -> None:
        """Graph outputs stay float32: a float16 producer writes ``name__fp16_out`` plus a Cast."""
        for out in self.graph.output:
            if self.prec.get(out.name) != "fp16":
                continue
            inner = f"{out.name}__fp16_out"
            for node in list(self.graph.node) + self.new_nodes:
                node.output[:] = [inner if o == out.name else o for o in node.output]
                node.input[:] = [inner if i == out.name else i for i in node.input]
            self.new_nodes.append(helper.make_node("Cast", [inner], [out.name], name=f"{out.name}_to_fp32",
                                                   to=FLOAT))
            self.result.casts_inserted += 1

    def _convert_initializers(self) -> None:
        for name, tensor in list(self.inits.items()):
            if self.prec.get(name) == "fp16" and tensor.data_type == FLOAT:
                tensor.CopyFrom(self._to_fp16_tensor(tensor))

    def _to_fp16_tensor(self, tensor: onnx.TensorProto) -> onnx.TensorProto:
        array = numpy_helper.to_array(tensor).astype(np.float32)
        finite = np.isfinite(array)
        self.result.clipped_values += int((np.abs(array[finite]) > FP16_MAX).sum())
        clipped = np.where(finite, np.clip(array, -FP16_MAX, FP16_MAX), array)
        return numpy_helper.from_array(clipped.astype(np.float16), tensor.name)


def _elem_types(graph: onnx.GraphProto) -> dict[str, int]:
    types = {t.name: t.data_type for t in graph.initializer}
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.type.HasField("tensor_type"):
            types[vi.name] = vi.type.tensor_type.elem_type
    for node in graph.node:  # Constant outputs that shape inference left out
        if node.op_type == "Constant" and node.output[0] not in types:
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = attr.t.data_type
    return types


def fp16_steps(fp32_onnx: str | Path) -> list[tuple[str, list[str]]]:
    """The FP16 fallback ladder: (label, nodes kept in float32) — the preprocessing, then also the
    classifier head (last Gemm/MatMul/Conv and everything after it)."""
    graph = onnx.load(str(fp32_onnx), load_external_data=False).graph
    for i, node in enumerate(graph.node):  # the same names convert_to_fp16 gives unnamed nodes
        node.name = node.name or f"{node.op_type}_{i}"
    pre = preprocessing_nodes(graph)
    return [("default", pre), ("head in float32", pre + compute_nodes_after_last(graph))]


def build_onnx_fp16(ctx: BuildContext) -> BuiltArtifact:
    """Builder for ("onnxruntime", "fp16"): FP16 ONNX measured with ctx.evaluate against the budget.

    Step 1 keeps the default op types and the preprocessing in float32; if that breaks the budget,
    step 2 also keeps the classifier head (last Gemm/MatMul/Conv and what follows) in float32.
    """
    out = ctx.staging / "model.fp16.onnx"
    report: dict = {"method": "tlc fp16 conversion", "steps": []}
    for label, keep in fp16_steps(ctx.fp32_onnx):
        result = convert_to_fp16(ctx.fp32_onnx, out, keep_float32_nodes=keep)
        artifact = _fp16_artifact(ctx, out, result)
        comparison = ctx.evaluate(artifact)
        failures = budget_violations(comparison, ctx.tolerance)
        report["steps"].append({"step": label, "float32_nodes": len(result.float32_nodes),
                                "agreement": comparison.agreement,
                                "max_abs_prob_delta": comparison.max_abs_prob_delta,
                                "balanced_accuracy_drop": comparison.balanced_accuracy_drop,
                                "failures": failures})
        ctx.log(f"fp16 ({label}): agreement {comparison.agreement:.4f}, "
                f"max |Δprob| {comparison.max_abs_prob_delta:.2e}")
        if not failures:
            report["float32_nodes"] = result.float32_nodes
            return BuiltArtifact(artifact=artifact, report=report)
    out.unlink(missing_ok=True)
    raise BudgetError(f"FP16 breaks the {ctx.target.name} budget even with the head in float32 "
                      f"({'; '.join(failures)}); use fp32")


def _fp16_artifact(ctx: BuildContext, path: Path, result: Fp16Result) -> Artifact:
    entry = file_entry(ctx.staging, path.relative_to(ctx.staging).as_posix())
    options = {"fp16": {"converted_nodes": result.converted_nodes, "float32_nodes": len(result.float32_nodes),
                        "casts_inserted": result.casts_inserted, "clipped_values": result.clipped_values}}
    return Artifact(name="onnxruntime-fp16", format="onnx", backend="onnxruntime", precision="fp16",
                    files={"model": entry}, options=options)
