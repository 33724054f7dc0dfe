"""Rank the quantized nodes of a QDQ model by how much keeping each in float helps (most useful first).

Two measures. ``rank_layers`` (cheap, local): one instrumented run of the fully quantized model over a few calibration inputs. For every
activation tensor T that passes through QuantizeLinear→DequantizeLinear, the local noise is
``NSR(T) = Σ(dequantized − float)² / Σ float²`` measured on the same run (the float value is what
entered QuantizeLinear; where the quantized range starts at exactly 0, as when ONNX Runtime folds a
Relu into the quantization, the reference is ``max(float, 0)``). Weight noise comes from comparing
the dequantized weights with the float ones. A node's score is the noise it causes by being
quantized: the NSR of each quantized activation it reads (shared evenly among that tensor's
quantized readers, since the Q/DQ pair disappears only when all of them stay float) plus the NSR of
its weights. Local noise is a weak predictor of the effect on the logits (noise injected early is
amplified, some noise cancels), so ``rank_by_exclusion`` measures that effect directly: for each of
the noisiest nodes, the model with only that node in float is run on a few calibration images and
the drop of the relative logit error (vs the float model) is the node's gain.

Why not ONNX Runtime's ``quantization.qdq_loss_debug`` (issue 10; onnxruntime 1.32.0, x86-cpu U8S8
QDQ, 64 calibration images for every ranking; figure: relative logit error vs the float model on the
validation images after floating the top k of each ranking, 2-core CPU):

==============================  ======  ==========  ==========  ==========  ==========
MobileNetV2 (66 nodes, 0.320)   time    k=1         k=4         k=8         k=16
==============================  ======  ==========  ==========  ==========  ==========
``rank_by_exclusion`` (used)    32.1 s  0.305       0.268       0.258       0.215
``rank_layers`` (local NSR)      7.1 s  0.333       0.275       0.258       0.234
qdq_loss_debug ``qdq_err``       7.1 s  0.302       0.304       0.314       0.310
qdq_loss_debug ``xmodel_err``   11.9 s  0.319       0.317       0.316       0.314
random order                     —      0.309       0.318       0.325       0.320
==============================  ======  ==========  ==========  ==========  ==========

On the digits model (12 nodes, 8.6e-5) exclusion is also best at k = 1/2/4/8 (6.0/4.7/3.4/2.3e-5
against 8.7/8.4/6.5/4.2e-5 for ``qdq_err``). The library is no cheaper: its one instrumented pass
is what ``rank_layers`` already does (same time; it saves every float tensor, we save only the Q/DQ
pairs). Its ``qdq_err`` ranks no better than random because it compares the tensor entering
QuantizeLinear with the dequantized one even where ONNX Runtime folded a Relu/Clip into the
quantized range, so the activation itself counts as noise (the correction above); ``xmodel_err``
(float model vs QDQ model, per tensor) accumulates along the graph and ranks the last layers first.
``compute_activation_error`` also raises KeyError when no float activations are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .graph import consumers, producers
from .mixed import keep_in_float

_QDQ = ("QuantizeLinear", "DequantizeLinear")


@dataclass(frozen=True)
class LayerSensitivity:
    name: str
    op_type: str
    score: float            # noise-to-signal ratio this node's quantization adds (higher = more sensitive)
    activation_nsr: float
    weight_nsr: float
    output_gain: float | None = None  # drop of the relative logit error when only this node is float

    def to_dict(self) -> dict:
        return {"name": self.name, "op_type": self.op_type, "score": self.score,
                "sqnr_db": None if self.score <= 0 else round(float(-10.0 * np.log10(self.score)), 2),
                "activation_nsr": self.activation_nsr, "weight_nsr": self.weight_nsr,
                "output_gain": self.output_gain}


def quantized_nodes(qdq_model, skip: Sequence[str] = ()) -> list[str]:
    """Nodes (graph order) that read at least one dequantized tensor, i.e. run quantized."""
    made_by = producers(qdq_model)
    skipped = set(skip)
    out = []
    for node in qdq_model.graph.node:
        if node.op_type in _QDQ or node.name in skipped:
            continue
        if any((p := made_by.get(t)) is not None and p.op_type == "DequantizeLinear" for t in node.input):
            out.append(node.name)
    return out


def _dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * q.ndim
    if scale.ndim == 1 and scale.size > 1:
        shape[axis] = scale.size
    return (q.astype(np.float64) - zero_point.reshape(shape)) * scale.astype(np.float64).reshape(shape)


def _nsr(reference: np.ndarray, candidate: np.ndarray) -> float:
    signal = float(np.sum(reference * reference))
    noise = float(np.sum((reference - candidate) ** 2))
    return noise / signal if signal > 0 else 0.0


def _initializers(model) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def _activation_pairs(qdq_model, inits: dict) -> dict[str, tuple[str, bool]]:
    """DQ output tensor → (float tensor entering its Q, whether the range starts at exactly 0)."""
    made_by = producers(qdq_model)
    pairs = {}
    for dq in qdq_model.graph.node:
        if dq.op_type != "DequantizeLinear" or dq.input[0] in inits:
            continue
        q = made_by.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear" or q.input[0] in inits:
            continue
        zp = inits.get(q.input[2]) if len(q.input) > 2 else None
        starts_at_zero = zp is not None and zp.dtype == np.uint8 and not zp.any()
        pairs[dq.output[0]] = (q.input[0], starts_at_zero)
    return pairs


def _weight_nsr(dq, inits: dict, float_inits: dict) -> float | None:
    """NSR of a dequantized initializer against the float weight it replaced (None: not a weight)."""
    if dq.input[0] not in inits:
        return None
    original = float_inits.get(dq.input[0].removesuffix("_quantized"))
    if original is None or original.dtype.kind != "f":
        return None
    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
    zero_point = inits[dq.input[2]] if len(dq.input) > 2 else np.zeros(1)
    approx = _dequantize(inits[dq.input[0]], inits[dq.input[1]], zero_point, axis)
    return _nsr(original.astype(np.float64), approx)


def _run(model, names: Sequence[str], input_name: str, inputs: np.ndarray, batch_size: int) -> dict:
    """Run ``model`` exposing ``names`` as outputs, without graph optimisation (every tensor exists)."""
    import onnx
    import onnxruntime as ort

    model = onnx.ModelProto.FromString(model.SerializeToString())
    existing = {o.name for o in model.graph.output}
    for name in names:
        if name not in existing:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    chunks: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for start in range(0, len(inputs), batch_size):
        values = session.run(list(names), {input_name: inputs[start:start + batch_size]})
        for name, value in zip(names, values, strict=True):
            chunks[name].append(np.asarray(value, dtype=np.float64))
    return {n: np.concatenate(v) for n, v in chunks.items()}


def rank_layers(float_onnx: str | Path, qdq_onnx: str | Path, layers: Sequence[str], inputs: np.ndarray,
                input_name: str, batch_size: int = 8) -> list[LayerSensitivity]:
    """Sensitivity of each node of ``layers`` found quantized in ``qdq_onnx``, most sensitive first.

    ``float_onnx`` is the model that was quantized (for the float weights); ties keep graph order.
    """
    import onnx

    qdq_model = onnx.load(str(qdq_onnx))
    inits = _initializers(qdq_model)
    float_inits = _initializers(onnx.load(str(float_onnx)))
    pairs = _activation_pairs(qdq_model, inits)
    made_by, read_by = producers(qdq_model), consumers(qdq_model)
    names = sorted({t for dq_out, (x, _) in pairs.items() for t in (dq_out, x)})
    values = _run(qdq_model, names, input_name, inputs, batch_size) if names else {}
    tensor_nsr = {}
    for dq_out, (x, starts_at_zero) in pairs.items():
        reference = np.maximum(values[x], 0.0) if starts_at_zero else values[x]
        tensor_nsr[dq_out] = _nsr(reference, values[dq_out])
    nodes = {n.name: n for n in qdq_model.graph.node}
    ranked = []
    for order, name in enumerate(layers):
        node = nodes.get(name)
        if node is None:
            continue
        act, weight = 0.0, 0.0
        for tensor in node.input:
            dq = made_by.get(tensor)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            if tensor in tensor_nsr:
                readers = [r for r in read_by.get(tensor, []) if r.op_type not in _QDQ]
                act += tensor_nsr[tensor] / max(1, len(readers))
            else:
                weight += _weight_nsr(dq, inits, float_inits) or 0.0
        score = act + weight
        ranked.append((-score, order, LayerSensitivity(name, node.op_type, score, act, weight)))
    return [item[2] for item in sorted(ranked, key=lambda t: (t[0], t[1]))]


def _logits(model, input_name: str, inputs: np.ndarray, batch_size: int = 32) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    output = session.get_outputs()[0].name
    return np.concatenate([session.run([output], {input_name: inputs[i:i + batch_size]})[0]
                           for i in range(0, len(inputs), batch_size)]).astype(np.float64)


def rank_by_exclusion(float_onnx: str | Path, qdq_onnx: str | Path, layers: Sequence[str], inputs: np.ndarray,
                      input_name: str, max_measured: int = 48) -> list[LayerSensitivity]:
    """``layers`` ordered by measured output gain (largest first).

    The ``max_measured`` noisiest layers (``rank_layers``) are measured; the rest follow in noise order.
    """
    import onnx

    noisy = rank_layers(float_onnx, qdq_onnx, layers, inputs, input_name)
    float_model, qdq_model = onnx.load(str(float_onnx)), onnx.load(str(qdq_onnx))
    reference = _logits(float_model, input_name, inputs)
    scale = float(np.sum(reference * reference)) or 1.0
    base = float(np.sum((_logits(qdq_model, input_name, inputs) - reference) ** 2)) / scale
    measured = []
    for item in noisy[:max_measured]:
        mixed = keep_in_float(qdq_model, float_model, (item.name,))
        err = float(np.sum((_logits(mixed, input_name, inputs) - reference) ** 2)) / scale
        measured.append(replace(item, output_gain=base - err))
    measured.sort(key=lambda s: -(s.output_gain or 0.0))  # stable: ties keep noise order
    return measured + noisy[max_measured:]
