"""Make an ONNX TensorRT-ready for a target without changing what it computes.

Three exact rewrites, each only where the target's TensorRT needs it:
- int32-quantized biases (onnxruntime's QDQ default) → their float32 values, folded ahead of time
  (TensorRT has no int32 DequantizeLinear; DQ of a constant is just (q - zero_point) * scale);
- opset above the target's ``max_opset`` → ``onnx.version_converter`` down to it (the result is
  also what ONNX Runtime runs, so the proxy evaluation measures the very file TensorRT gets);
- uint8 graph input on TensorRT < 8.5 (no uint8 bindings) → an extra copy whose input is float32
  (pixel values 0..255 are exact in float32; the runtime casts on the host). The uint8 original
  stays the artifact's "model" (ONNX Runtime, golden checks); the copy is "tensorrt_onnx".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from tlc_runtime.backends.trt_builder import parse_version

from ..errors import BuildError
from ..targets import Target
from .opset import lower_opset
from .settings import tensorrt_options

DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass
class PreparedOnnx:
    model: Path                        # what ONNX Runtime runs (graph input as in the manifest)
    tensorrt_onnx: Path | None = None  # what TensorRT parses, when it differs from ``model``
    steps: list[str] = field(default_factory=list)

    @property
    def for_tensorrt(self) -> Path:
        return self.tensorrt_onnx or self.model


def prepare_for_tensorrt(onnx_in: str | Path, onnx_out: str | Path, target: Target) -> PreparedOnnx:
    """Write ``onnx_out`` (and ``<stem>.trt.onnx`` if needed) ready for ``target``'s TensorRT."""
    trt = tensorrt_options(target)
    model = onnx.load(str(onnx_in))
    steps = []
    folded = _fold_int32_dequantize(model.graph)
    if folded:
        steps.append(f"{folded} int32 bias DequantizeLinear folded to float32 constants")
    opset = next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), None)
    if opset is not None and opset > trt.max_opset:
        try:
            model = lower_opset(model, trt.max_opset)
        except BuildError as exc:
            raise BuildError(f"{Path(onnx_in).name} for TensorRT {trt.version_min}: {exc}") from None
        steps.append(f"opset {opset} -> {trt.max_opset}")
    onnx_out = Path(onnx_out)
    onnx.save(model, str(onnx_out))
    prepared = PreparedOnnx(model=onnx_out, steps=steps)
    if parse_version(trt.version_min)[:2] < (8, 5) and _retype_uint8_input(model):
        prepared.tensorrt_onnx = onnx_out.with_name(onnx_out.name.replace(".onnx", "") + ".trt.onnx")
        onnx.save(model, str(prepared.tensorrt_onnx))
        steps.append(f"float32-input copy for TensorRT {trt.version_min} (no uint8 inputs)")
    return prepared


def _fold_int32_dequantize(graph: onnx.GraphProto) -> int:
    """Replace DequantizeLinear nodes of int32 initializers by float32 initializers; returns how many."""
    inits = {t.name: t for t in graph.initializer}
    folded = []
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        if inits[node.input[0]].data_type != TensorProto.INT32 or not all(i in inits for i in node.input[1:] if i):
            continue
        q = numpy_helper.to_array(inits[node.input[0]]).astype(np.int64)
        scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        zp = numpy_helper.to_array(inits[node.input[2]]).astype(np.int64) if len(node.input) > 2 and node.input[2] else 0
        if scale.ndim == 1 and q.ndim > 1:  # per-axis: broadcast along the node's axis
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1) % q.ndim
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zp = scale.reshape(shape), np.reshape(zp, shape) if np.ndim(zp) else zp
        value = ((q - zp).astype(np.float32) * scale).astype(np.float32)
        graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
        folded.append(node)
    orphans = {i for node in folded for i in node.input}
    for node in folded:
        graph.node.remove(node)
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    for tensor in [t for t in graph.initializer if t.name in orphans - used]:
        graph.initializer.remove(tensor)
    return len(folded)


def _retype_uint8_input(model: onnx.ModelProto) -> bool:
    """Turn uint8 graph inputs that only feed Casts into float32 inputs; True if anything changed."""
    graph = model.graph
    changed = False
    for inp in graph.input:
        if inp.type.tensor_type.elem_type != TensorProto.UINT8:
            continue
        users = [n for n in graph.node if inp.name in n.input]
        if not users or any(n.op_type != "Cast" for n in users):
            continue  # left as is: the compatibility check reports the uint8 input
        inp.type.tensor_type.elem_type = TensorProto.FLOAT
        changed = True
    if changed:
        del graph.value_info[:]
        onnx.checker.check_model(model)
    return changed
