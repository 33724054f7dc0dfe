"""Mixed precision by graph surgery: chosen nodes of a QDQ model read float inputs and float weights.

ONNX Runtime's ``nodes_to_exclude`` only stops a node from quantizing its own inputs; the producer of
each input still quantizes its output, so the noise stays. Here a node kept in float reads the tensor
*before* its Quantize/Dequantize pair and the original float weights; the pair is removed when no
quantized reader is left. Where ONNX Runtime folded a Relu/Clip into the quantization range, the float
reader gets that activation back. With every quantized node kept in float the model equals the float one.
"""

from __future__ import annotations

from collections.abc import Iterable

from .graph import consumers, producers

_FOLDABLE = ("Relu", "Clip")


def keep_in_float(qdq_model, float_model, nodes: Iterable[str]):
    """A copy of ``qdq_model`` where ``nodes`` compute in float (``float_model``: the model quantized)."""
    import onnx

    model = onnx.ModelProto.FromString(qdq_model.SerializeToString())
    wanted = set(nodes)
    made_by = producers(model)
    float_made_by = producers(float_model)
    inits = {i.name: i for i in model.graph.initializer}
    float_inits = {i.name: i for i in float_model.graph.initializer}
    restored: dict[str, str] = {}  # folded tensor → its re-activated float twin
    for node in [n for n in model.graph.node if n.name in wanted]:
        for idx, tensor in enumerate(node.input):
            dq = made_by.get(tensor)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            source = dq.input[0]
            if source in inits:
                node.input[idx] = _float_weight(model, dq, inits, float_inits)
                continue
            q = made_by.get(source)
            if q is None or q.op_type != "QuantizeLinear":
                continue
            node.input[idx] = _float_activation(model, q.input[0], made_by, float_made_by, float_inits, restored)
    _prune(model)
    return model


def _float_weight(model, dq, inits: dict, float_inits: dict) -> str:
    """Name of a float initializer replacing a dequantized weight (original values when known)."""
    from onnx import numpy_helper

    name = f"{dq.output[0]}_float"
    if name in inits:
        return name
    original = float_inits.get(dq.input[0].removesuffix("_quantized"))
    # unknown origin: the dequantized values themselves
    value = numpy_helper.to_array(original) if original is not None else _dequantized(dq, inits)
    tensor = numpy_helper.from_array(value, name)
    model.graph.initializer.append(tensor)
    inits[name] = tensor
    return name


def _dequantized(dq, inits: dict):
    import numpy as np
    from onnx import numpy_helper

    q = numpy_helper.to_array(inits[dq.input[0]]).astype(np.float32)
    scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float32)
    zp = numpy_helper.to_array(inits[dq.input[2]]).astype(np.float32) if len(dq.input) > 2 else np.zeros(1, np.float32)
    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
    shape = [1] * q.ndim
    if scale.size > 1:
        shape[axis] = scale.size
    return ((q - zp.reshape(shape)) * scale.reshape(shape)).astype(np.float32)


def _float_activation(model, tensor: str, made_by: dict, float_made_by: dict, float_inits: dict,
                      restored: dict) -> str:
    """``tensor`` as the float model computes it, re-applying a Relu/Clip that quantization folded away."""
    import onnx

    if tensor in restored:
        return restored[tensor]
    float_node, quant_node = float_made_by.get(tensor), made_by.get(tensor)
    if float_node is None or quant_node is None or float_node.op_type not in _FOLDABLE \
            or float_node.name == quant_node.name:
        return tensor
    out = f"{tensor}_float"
    extra = list(float_node.input[1:])
    have = {i.name for i in model.graph.initializer} | set(made_by)
    for name in extra:
        if name and name not in have and name in float_inits:
            model.graph.initializer.append(float_inits[name])
    activation = onnx.helper.make_node(float_node.op_type, [tensor, *extra], [out], name=f"{float_node.name}_float")
    activation.attribute.extend(float_node.attribute)
    position = list(model.graph.node).index(quant_node) + 1
    model.graph.node.insert(position, activation)
    restored[tensor] = out
    return out


def _prune(model) -> None:
    """Drop Q/DQ nodes nobody reads any more, then initializers nobody reads."""
    outputs = {o.name for o in model.graph.output}
    while True:
        read = consumers(model)
        dead = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                and not any(o in outputs or read.get(o) for o in n.output)]
        if not dead:
            break
        for node in dead:
            model.graph.node.remove(node)
    used = {name for node in model.graph.node for name in node.input}
    for init in [i for i in model.graph.initializer if i.name not in used]:
        model.graph.initializer.remove(init)
