"""PyTorch → ONNX export with preprocessing in the graph, checked structurally and numerically.

The exported graph takes raw pixels at the model size (NHWC, uint8 for 8-bit sources, float32 holding
exact 16-bit values otherwise), dynamic batch, and returns ``logits`` (then any extra outputs the
module returns, named after its dict keys: ``tlc.models.outputs``). Opset 17 through the TorchScript
exporter: the widest TensorRT compatibility (8.6 reads up to 17). Where that exporter is gone, the
dynamo exporter is used and the opset it produces is recorded.

Every exported file carries, as ONNX ``metadata_props`` (see :func:`onnx_metadata`), the class names
and a summary of the input and the preprocessing inside the graph, so the file is usable outside
tlc; the INT8/FP16 artifacts derived from it keep them.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tlc_runtime.manifest import LOGITS, InputSpec, OutputSpec, Preprocessing

from ..errors import BuildError

OPSET = 17
INPUT_NAME = "pixels"
OUTPUT_NAME = LOGITS


@dataclass(frozen=True)
class ExportReport:
    path: str
    opset: int
    exporter: str
    max_abs_logit_delta: float
    checked_inputs: int
    max_abs_output_delta: dict[str, float] | None = None  # extra outputs, when the model has any

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def input_spec_for(height: int, width: int, channels: int, dtype: str) -> InputSpec:
    return InputSpec(name=INPUT_NAME, height=height, width=width, channels=channels, dtype=dtype)


def onnx_metadata(class_names: Sequence[str], spec: InputSpec, preprocessing: Preprocessing,
                  temperature: float | None = None) -> dict[str, str]:
    """The ``metadata_props`` of every tlc ONNX: class names (JSON list, logit order), the input
    (name, NHWC layout, size, dtype), the preprocessing the graph applies and the output (JSON
    objects); ``temperature``: the graph's logits are already divided by it (temperature scaling)."""
    model_input = {"name": spec.name, "layout": "NHWC", "height": spec.height, "width": spec.width,
                   "channels": spec.channels, "dtype": spec.dtype}
    output: dict[str, object] = {"name": OUTPUT_NAME, "kind": "logits"}
    if temperature is not None:
        output["temperature"] = temperature
    return {"class_names": json.dumps(list(class_names)), "input": json.dumps(model_input),
            "preprocessing": json.dumps(asdict(preprocessing)), "output": json.dumps(output)}


def set_metadata(model, metadata: Mapping[str, str]) -> None:
    """Replace ``model``'s ``metadata_props`` (an onnx ModelProto) with ``metadata``."""
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)


def copy_metadata(source: str | Path, model) -> None:
    """Give ``model`` (a ModelProto derived from the ONNX at ``source``) the source's metadata_props."""
    import onnx

    props = onnx.load(str(source), load_external_data=False).metadata_props
    set_metadata(model, {p.key: p.value for p in props})


def export_onnx(model, spec: InputSpec, path: str | Path, check_inputs: np.ndarray,
                metadata: Mapping[str, str] | None = None) -> ExportReport:
    """Export ``model`` (NHWC raw pixels → logits, eval mode) to ``path``; full onnx check; compare with torch.

    ``check_inputs``: real inputs (N×H×W×C in the graph dtype) used for the numerical check.
    ``metadata``: written as the file's ``metadata_props`` (see :func:`onnx_metadata`); None writes none.
    """
    import onnx
    import torch

    path = Path(path)
    model = model.eval()
    example = torch.from_numpy(np.ascontiguousarray(check_inputs[:2]))
    exporter = _export(model, example, path)
    try:
        proto = onnx.load(str(path))
        if metadata:
            set_metadata(proto, metadata)
            onnx.save(proto, str(path))
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # onnx raises several unrelated types
        raise BuildError(f"exported ONNX failed onnx.checker: {exc}") from None
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    deltas = max_output_deltas(model, path, check_inputs)
    extra = {k: v for k, v in deltas.items() if k != OUTPUT_NAME} or None
    return ExportReport(path=path.name, opset=opset, exporter=exporter, max_abs_logit_delta=deltas[OUTPUT_NAME],
                        checked_inputs=len(check_inputs), max_abs_output_delta=extra)


def output_names(model, example) -> list[str]:
    """The graph output names ``model`` gives (its dict keys; a bare tensor is ``logits``)."""
    import torch

    from ..models.outputs import as_outputs

    with torch.inference_mode():
        try:
            return list(as_outputs(model(example)))
        except TypeError as exc:
            raise BuildError(f"cannot export: {exc}") from None


def output_specs(onnx_path: str | Path) -> tuple[OutputSpec, ...]:
    """The manifest's ``outputs`` for an exported file: its logits, then its scores, in graph order."""
    import onnx

    names = [o.name for o in onnx.load(str(onnx_path), load_external_data=False).graph.output]
    if not names or names[0] != OUTPUT_NAME:
        raise BuildError(f"{Path(onnx_path).name}: the first graph output is {names[:1]}, not {OUTPUT_NAME!r}")
    return (OutputSpec(), *(OutputSpec(name=n, activation=None, kind="score") for n in names[1:]))


def _export(model, example, path: Path) -> str:
    import torch

    outputs = output_names(model, example)
    names = dict(input_names=[INPUT_NAME], output_names=outputs)
    axes = {name: {0: "batch"} for name in (INPUT_NAME, *outputs)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (example,), str(path), opset_version=OPSET, dynamo=False,
                              dynamic_axes=axes, **names)
            return "torchscript"
        except TypeError:  # a torch without the legacy exporter
            pass
        except Exception as exc:
            raise BuildError(f"ONNX export failed: {exc}") from None
        try:
            batch = torch.export.Dim("batch", min=1, max=4096)
            torch.onnx.export(model, (example,), str(path), opset_version=OPSET, dynamo=True,
                              dynamic_shapes=({0: batch},), external_data=False,  # the runtime refuses it
                              **names)
            return "dynamo"
        except Exception as exc:
            raise BuildError(f"ONNX export failed: {exc}") from None


def max_output_deltas(model, onnx_path: Path, inputs: np.ndarray, batch_size: int = 64) -> dict[str, float]:
    """max |torch − onnxruntime| over ``inputs``, per graph output (``logits`` first)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    reference = reference_outputs(model, inputs, batch_size)
    worst = dict.fromkeys(names, 0.0)
    for start in range(0, len(inputs), batch_size):
        chunk = np.ascontiguousarray(inputs[start:start + batch_size])
        for name, got in zip(names, session.run(names, {INPUT_NAME: chunk}), strict=True):
            ref = reference[name][start:start + batch_size]
            worst[name] = max(worst[name], float(np.abs(ref - got).max()))
    return worst


def reference_outputs(model, inputs: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
    """PyTorch outputs of ``inputs`` (N×H×W×C graph dtype) by name, ``logits`` first, float32."""
    import torch

    from ..models.outputs import as_outputs

    parts: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(inputs[start:start + batch_size]))
            for name, value in as_outputs(model(chunk)).items():
                parts.setdefault(name, []).append(value.float().numpy())
    if not parts:
        return {OUTPUT_NAME: np.zeros((0, 0), np.float32)}
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def reference_logits(model, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """PyTorch logits of ``inputs`` (N×H×W×C graph dtype), float32."""
    return reference_outputs(model, inputs, batch_size)[OUTPUT_NAME]
