"""QDQ placement TensorRT can fuse (explicit quantization), checked on the ONNX graph.

TensorRT's ONNX parser requires QuantizeLinear/DequantizeLinear zero points to be int8 zeros
(symmetric, signed) and scales to be build-time constants. It quantizes activations per tensor;
per-channel scales are for weights only, along the output-channel axis of the consuming
Conv (axis 0), ConvTranspose (1), Gemm (0 with transB, else 1) or MatMul (last). A Q/DQ pair on
an activation must use the same scale and zero point, or TensorRT cannot fold it into the layer.
Biases stay float: TensorRT has no int32 DequantizeLinear (quantizers must not quantize biases).
"""

from __future__ import annotations

import numpy as np
import onnx

from .violation import Violation

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
SYMMETRIC_FIX = "quantize with symmetric int8 (QInt8 activations and weights, zero point 0)"


def check_qdq_nodes(graph: onnx.GraphProto, constants: dict[str, np.ndarray]) -> list[Violation]:
    """Violations of TensorRT's QDQ rules in ``graph`` (``constants``: initializer/Constant values)."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found: list[Violation] = []
    for node in graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        found += _check_scale_and_zero_point(node, constants, consumers)
        if node.op_type == "QuantizeLinear":
            for dq in consumers.get(node.output[0], []):
                if dq.op_type == "DequantizeLinear" and not _same_params(node, dq, constants):
                    found.append(Violation(dq.name or dq.output[0], "DequantizeLinear", "scale/zero point differ "
                                           f"from its QuantizeLinear {node.name!r}", "use one scale per Q/DQ pair"))
    return found


def _check_scale_and_zero_point(node: onnx.NodeProto, constants: dict[str, np.ndarray],
                                consumers: dict[str, list[onnx.NodeProto]]) -> list[Violation]:
    name, op = node.name or node.output[0], node.op_type
    found = []
    scale = constants.get(node.input[1])
    if scale is None:
        found.append(Violation(name, op, "scale is computed at run time; TensorRT needs constant scales",
                               "store scales as initializers"))
    data = constants.get(node.input[0]) if op == "DequantizeLinear" else None
    if data is not None and data.dtype == np.int32:
        return found + [Violation(name, op, "int32-quantized constant (a bias): TensorRT dequantizes int8 only",
                                  "keep biases in float (onnxruntime.quantization: "
                                  "extra_options={'QuantizeBias': False})")]
    zp_name = node.input[2] if len(node.input) > 2 else ""
    if zp_name:
        zp = constants.get(zp_name)
        if zp is None:
            found.append(Violation(name, op, "zero point is not a constant", SYMMETRIC_FIX))
        elif zp.dtype != np.int8:
            found.append(Violation(name, op, f"{zp.dtype} zero point: TensorRT quantizes to signed int8 only",
                                   SYMMETRIC_FIX))
        elif np.any(zp != 0):
            found.append(Violation(name, op, "zero point is not 0 (asymmetric quantization)", SYMMETRIC_FIX))
    if scale is not None and scale.size > 1:
        is_weight = op == "DequantizeLinear" and node.input[0] in constants
        if not is_weight:
            found.append(Violation(name, op, "per-channel scale on an activation; TensorRT quantizes "
                                   "activations per tensor", "use per-tensor activation scales "
                                   "(per-channel for weights only)"))
        else:
            found += _check_weight_axis(node, constants[node.input[0]].ndim, consumers)
    return found


def _check_weight_axis(node: onnx.NodeProto, rank: int, consumers: dict[str, list[onnx.NodeProto]]) -> list[Violation]:
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    axis = axis + rank if axis < 0 else axis
    found = []
    for user in consumers.get(node.output[0], []):
        expected = _output_channel_axis(user, rank)
        if expected is not None and axis != expected:
            found.append(Violation(node.name or node.output[0], node.op_type, f"per-channel weight scales on "
                                   f"axis {axis}, but {user.op_type} {user.name!r} has output channels on axis "
                                   f"{expected}", "quantize weights per output channel"))
    return found


def _output_channel_axis(user: onnx.NodeProto, rank: int) -> int | None:
    if user.op_type == "Conv":
        return 0
    if user.op_type == "ConvTranspose":
        return 1
    if user.op_type == "Gemm":
        trans_b = next((a.i for a in user.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if user.op_type == "MatMul":
        return rank - 1
    return None


def _same_params(q: onnx.NodeProto, dq: onnx.NodeProto, constants: dict[str, np.ndarray]) -> bool:
    for idx in (1, 2):
        a = q.input[idx] if len(q.input) > idx else ""
        b = dq.input[idx] if len(dq.input) > idx else ""
        if a == b:
            continue
        va, vb = constants.get(a), constants.get(b)
        if va is None or vb is None or va.shape != vb.shape or not np.array_equal(va, vb):
            return False
    return True
