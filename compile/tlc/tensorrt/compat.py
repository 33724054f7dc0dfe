"""Will this ONNX build on the target's TensorRT? A static check with onnx alone (no TensorRT needed).

``check_tensorrt_compat`` lists every problem at once as Violations (node, op, reason, fix):
ops the target's oldest TensorRT cannot import (per-release table in ops.py), custom-domain ops,
an opset above the target's ``max_opset``, graph input/output types TensorRT cannot bind, dynamic
dimensions other than the batch, tensor types no release computes with, and QDQ placement
TensorRT cannot fuse (zero points must be int8 zeros, scales constant, per-tensor on activations,
per-channel only on weights along the output-channel axis, a Q/DQ pair sharing its scale).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from tlc_runtime.backends.trt_builder import parse_version

from ..errors import BuildError
from ..targets import Target, TensorRtOptions
from .ops import IO_TYPES_SINCE, SUPPORTED_SINCE, UNSUPPORTED_TENSOR_TYPES
from .qdq import check_qdq_nodes
from .violation import Violation

TYPE_NAMES = {TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16", TensorProto.DOUBLE: "float64",
              TensorProto.UINT8: "uint8", TensorProto.INT8: "int8", TensorProto.UINT16: "uint16",
              TensorProto.INT16: "int16", TensorProto.INT32: "int32", TensorProto.INT64: "int64",
              TensorProto.UINT32: "uint32", TensorProto.UINT64: "uint64", TensorProto.BOOL: "bool",
              TensorProto.STRING: "string", TensorProto.BFLOAT16: "bfloat16",
              TensorProto.COMPLEX64: "complex64", TensorProto.COMPLEX128: "complex128"}
DEFAULT_DOMAINS = ("", "ai.onnx")


def check_tensorrt_compat(onnx_path: str | Path, target: Target, precision: str | None = None) -> list[Violation]:
    """Every reason the ONNX would not build on ``target``'s TensorRT (empty list: compatible)."""
    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # protobuf decode errors and missing external data
        raise BuildError(f"{onnx_path}: cannot read the ONNX model ({exc})") from None
    trt = target.tensorrt or TensorRtOptions()
    found: list[Violation] = []
    found += _check_opset(model, trt)
    found += _check_ops(model.graph, trt)
    found += _check_io(model.graph, trt)
    found += _check_tensor_types(model.graph)
    found += _check_qdq(model.graph)
    if trt.use_dla and precision == "fp32":
        found.append(Violation("(target)", "DLA", "DLA runs fp16 and int8 only",
                               "build fp16/int8 for DLA, or set use_dla = false"))
    return found


def _check_opset(model: onnx.ModelProto, trt: TensorRtOptions) -> list[Violation]:
    opset = next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), None)
    if opset is None or opset <= trt.max_opset:
        return []
    return [Violation("(model)", "opset", f"default-domain opset {opset} > {trt.max_opset} (the newest "
                      f"opset TensorRT {trt.version_min} imports)", f"convert the model to opset {trt.max_opset} "
                      "(tlc build does this when it is exact) or re-export with that opset")]


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                yield from _all_nodes(sub)


def _check_ops(graph: onnx.GraphProto, trt: TensorRtOptions) -> list[Violation]:
    found = []
    version = parse_version(trt.version_min)
    for node in _all_nodes(graph):
        name = node.name or node.output[0]
        if node.domain not in DEFAULT_DOMAINS:
            found.append(Violation(name, f"{node.domain}::{node.op_type}", "custom-domain op: TensorRT needs "
                                   "a plugin for it", "export without custom ops (or write a TensorRT plugin)"))
            continue
        since = SUPPORTED_SINCE.get(node.op_type)
        if since is None:
            found.append(Violation(name, node.op_type, "not supported by TensorRT's ONNX parser",
                                   "replace the op in the model (e.g. a supported equivalent) before export"))
        elif version < parse_version(since):
            found.append(Violation(name, node.op_type, f"needs TensorRT >= {since}; the target has "
                                   f"{trt.version_min}", "use a target with newer TensorRT or avoid the op"))
    return found


def _check_io(graph: onnx.GraphProto, trt: TensorRtOptions) -> list[Violation]:
    found = []
    version = parse_version(trt.version_min)
    initializers = {t.name for t in graph.initializer}
    for kind, values in (("input", graph.input), ("output", graph.output)):
        for vi in values:
            if vi.name in initializers:
                continue
            tt = vi.type.tensor_type
            dtype = TYPE_NAMES.get(tt.elem_type, str(tt.elem_type))
            since = IO_TYPES_SINCE.get(dtype)
            if since is None or version < parse_version(since):
                need = "no TensorRT release" if since is None else f"TensorRT >= {since}"
                found.append(Violation(vi.name, f"graph {kind}", f"{dtype} {kind}s need {need} (target has "
                                       f"{trt.version_min})", f"cast the {kind} to float32 in the model "
                                       "(16-bit pixels go in as exact float32 values)"))
            for axis, dim in enumerate(tt.shape.dim):
                if axis > 0 and not (dim.HasField("dim_value") and dim.dim_value > 0):
                    found.append(Violation(vi.name, f"graph {kind}", f"dimension {axis} is dynamic "
                                           f"({dim.dim_param or '?'}); only the batch may vary",
                                           "export with a fixed image size and channel count"))
    return found


def _check_tensor_types(graph: onnx.GraphProto) -> list[Violation]:
    found = []
    for init in graph.initializer:
        dtype = TYPE_NAMES.get(init.data_type, str(init.data_type))
        if dtype in UNSUPPORTED_TENSOR_TYPES:
            found.append(Violation(init.name, "initializer", f"{dtype} tensors are not supported by TensorRT",
                                   "store the constant as float32/int32"))
    for node in _all_nodes(graph):
        if node.op_type == "Cast":
            to = next((a.i for a in node.attribute if a.name == "to"), None)
            dtype = TYPE_NAMES.get(to, str(to))
            if dtype in UNSUPPORTED_TENSOR_TYPES:
                found.append(Violation(node.name or node.output[0], "Cast", f"casts to {dtype}, which TensorRT "
                                       "lacks", "cast to float32 or int32 instead"))
    return found


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _check_qdq(graph: onnx.GraphProto) -> list[Violation]:
    return check_qdq_nodes(graph, _constants(graph))
