"""OpenVINO IR artifacts (fp32, fp16, int8 via NNCF) for the intel-* targets.

fp32/int8 artifacts record INFERENCE_PRECISION_HINT "f32" so a CPU with bf16 units does not silently
compute in bf16; fp16 artifacts record "f16" (GPU/NPU). The IR itself carries the hints too (rt_info
``runtime_options``) and its input's NHWC layout, for users who compile it with plain OpenVINO. Caveat,
measured with OpenVINO 2026.4: its CPU plugin reads only the KV-cache keys from ``runtime_options``
(an invalid INFERENCE_PRECISION_HINT there is accepted silently, an invalid KV_CACHE_PRECISION is
refused), so on a bf16 CPU a plain compile still needs ``{"INFERENCE_PRECISION_HINT": "f32"}``;
tlc_runtime always passes it. NPU needs static shapes: its model is
reshaped to batch 1 and the runtime feeds it one image at a time. INT8 is NNCF post-training
quantization (fast bias correction, then full bias correction); if that misses the budget and the
target allows it, NNCF's accuracy control reverts the most harmful quantizers to float (bounded
iterations), its metric being top-1 agreement with the FP32 model's own predictions on the build's
evaluation images (``ctx.evaluation_inputs``; the calibration images when the build gives none).
Every candidate is checked with ``ctx.evaluate`` against the budget.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

import numpy as np
from tlc_runtime.integrity import file_entry
from tlc_runtime.manifest import Artifact

from ..bundler.context import BuildContext, BuiltArtifact
from ..errors import BudgetError, BuildError, ConfigError
from ..targets import OpenVinoOptions
from .calibration import check_calibration
from .fallback import make_step

XML, BIN = "openvino/model.xml", "openvino/model.bin"
MAX_RESTORE_ITERATIONS = 8
RANKING_SUBSET = 100
_COMPUTE_TYPES = ("Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData")


def _ov():
    try:
        import openvino
    except ImportError as exc:
        raise BuildError(f"the openvino package is missing ({exc}); pip install 'tlc[openvino]'") from None
    return openvino


def settings(ctx: BuildContext) -> dict[str, Any]:
    """Device, precision hint, performance hint and static batch recorded in the artifact."""
    ov_opts = ctx.target.openvino or OpenVinoOptions(device=ctx.target.device.upper())
    device = ov_opts.device.upper()
    if device.startswith("NPU"):
        hint = "f16"  # the NPU computes in fp16 (int8 for quantized layers)
    elif ctx.precision == "fp16":
        hint = ov_opts.inference_precision if ov_opts.inference_precision in ("f16", "bf16") else "f16"
    else:
        hint = "f32"
    out = {"device": device, "INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": ov_opts.performance_hint}
    if device.startswith("NPU"):
        out["static_batch"] = 1
    return out


def build_openvino(ctx: BuildContext) -> BuiltArtifact:
    """OpenVINO IR at ``ctx.precision`` (fp32, fp16, int8) under ctx.staging/openvino, within budget."""
    if ctx.precision not in ("fp32", "fp16", "int8"):
        raise ConfigError(f"openvino builds fp32, fp16 or int8, not {ctx.precision!r}")
    ov = _ov()
    options = settings(ctx)
    options["openvino"] = ov.get_version()
    model = _convert(ov, ctx)
    if "static_batch" in options:
        model.reshape({model.inputs[0]: [options["static_batch"], ctx.input_spec.height, ctx.input_spec.width,
                                         ctx.input_spec.channels]})
    report: dict[str, Any] = {"method": "openvino", "precision": ctx.precision, **options,
                              "backend_versions": {"openvino": options["openvino"]}}
    if ctx.precision == "int8":
        artifact = _build_int8(ov, ctx, model, options, report)
    else:
        artifact = _save(ov, ctx, model, options, compress=ctx.precision == "fp16")
        step = make_step((), ctx.evaluate(artifact), ctx.tolerance)
        report["result"] = step.to_dict()
        if not step.passed:
            _discard(ctx)
            raise BudgetError(f"OpenVINO {ctx.precision} on {options['device']} misses the accuracy budget "
                              f"({'; '.join(step.violations)}); check the model or loosen tolerances.{ctx.precision}")
    return BuiltArtifact(artifact=artifact, report=report)


def _convert(ov, ctx: BuildContext):
    return convert_path(ov, ctx.fp32_onnx)


def convert_path(ov, onnx_path):
    try:
        return ov.convert_model(str(onnx_path))
    except Exception as exc:  # conversion errors come in many types
        raise BuildError(f"OpenVINO cannot convert {onnx_path.name}: {_one_line(exc)}") from None


def embed_runtime_options(ov, model, options: dict[str, Any]) -> None:
    """Write the artifact's precision and performance hints into the IR's rt_info ``runtime_options``
    and mark the pixel input NHWC, so the IR says how to run it without tlc's manifest."""
    for key in ("INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT"):
        model.set_rt_info(str(options[key]), ["runtime_options", key])
    for parameter in model.get_parameters():
        parameter.set_layout(ov.Layout("NHWC"))


def _save(ov, ctx: BuildContext, model, options: dict[str, Any], compress: bool) -> Artifact:
    (ctx.staging / "openvino").mkdir(parents=True, exist_ok=True)
    embed_runtime_options(ov, model, options)
    try:
        ov.save_model(model, str(ctx.staging / XML), compress_to_fp16=compress)
    except Exception as exc:
        raise BuildError(f"OpenVINO could not write {XML}: {_one_line(exc)}") from None
    return Artifact(name=f"openvino-{ctx.precision}", format="openvino-ir", backend="openvino",
                    precision=ctx.precision,
                    files={"xml": file_entry(ctx.staging, XML), "bin": file_entry(ctx.staging, BIN)},
                    options=dict(options))


def _discard(ctx: BuildContext) -> None:
    for rel in (XML, BIN):
        (ctx.staging / rel).unlink(missing_ok=True)


def _build_int8(ov, ctx: BuildContext, model, options: dict[str, Any], report: dict[str, Any]) -> Artifact:
    """The first rung of the INT8 ladder (openvino_rungs) within budget; all tried in report["ladder"]."""
    from .ladder import climb
    from .openvino_rungs import OvLadder

    # NNCF imports torch's C++-extension helper, which logs a CUDA_HOME warning on CPU-only machines
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    import nncf

    nncf.set_log_level(logging.ERROR)
    calibration = check_calibration(ctx.calibration, ctx.target.calibration.min_samples)
    method = ctx.options.get("calibration_method") or ctx.target.calibration.method
    preprocessing, score_only = preprocessing_ops(model), score_only_ops(model)
    keep_float = [*preprocessing, *score_only]
    common = dict(subset_size=len(calibration), target_device=_nncf_device(nncf, options["device"]),
                  ignored_scope=nncf.IgnoredScope(names=keep_float, validate=False))
    report["backend_versions"]["nncf"] = nncf.__version__
    report.update(method="nncf", calibration_samples=len(calibration), calibration_method=method,
                  preprocessing_ops_in_float=len(preprocessing), score_ops_in_float=len(score_only), steps=[])
    ladder = OvLadder(ov, nncf, ctx, model, options, report, common,
                      _range_parameters(method), calibration)
    climbed = climb(ladder.rungs(), ctx.log, ladder.details, ladder.confirm if ctx.confirm else None)
    report["ladder"] = climbed.to_list()
    winner = climbed.winner
    if winner is None:
        _discard(ctx)
        raise BudgetError(f"OpenVINO INT8 misses the accuracy budget on every rung of the ladder "
                          f"({climbed.summary()}); build with --precision fp32 or loosen tolerances.int8")
    artifact, step, quantized = ladder.artifacts[winner.name]  # the last saved: the ladder stopped there
    report["rung"] = winner.name
    return _finish(artifact, step, report, quantized)


def _range_parameters(method: str):
    """NNCF activation ranges for tlc's calibration method (NNCF's own default, mean of per-sample
    min/max, clips outliers and moved borderline predictions in our tests; minmax keeps them)."""
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet as Ranges

    table = {"minmax": Ranges.MINMAX, "percentile": Ranges.MEAN_QUANTILE, "entropy": Ranges.HISTOGRAM}
    if method not in table:
        raise ConfigError(f"calibration method {method!r} is not valid; use minmax, entropy or percentile")
    return AdvancedQuantizationParameters(activations_range_estimator_params=table[method])


def validation_items(ov, nncf, ctx: BuildContext, model, calibration: np.ndarray, report: dict):
    """(image, FP32 top-1) pairs for accuracy control: the build's evaluation images when given."""
    checked = getattr(ctx, "evaluation_inputs", None)
    if checked is None or len(checked) == 0:
        checked = calibration
    report["accuracy_control_set"] = "calibration" if checked is calibration else "evaluation"
    labels = _reference_labels(ov, model, checked)
    return nncf.Dataset([(checked[i:i + 1], int(label)) for i, label in enumerate(labels)], lambda item: item[0])


def check_candidate(ov, ctx, model, options, stage: str, report: dict, float_layers: tuple[str, ...]):
    artifact = _save(ov, ctx, model, options, compress=False)
    step = make_step(float_layers, ctx.evaluate(artifact), ctx.tolerance)
    report["steps"].append({"stage": stage, **step.to_dict()})
    ctx.log(f"OpenVINO int8 ({stage}): {step.describe()}")
    return artifact, step


def _finish(artifact: Artifact, step, report: dict, final_model) -> Artifact:
    report["quantized_layers"] = len(quantized_layers(final_model))
    report["float_layers"] = list(step.float_layers)
    report["result"] = step.to_dict()
    return artifact


def agreement_on(compiled, items) -> tuple[float, list[list[np.ndarray]]]:
    """NNCF validation function: top-1 agreement with the FP32 model, plus each item's logits."""
    hits, outputs = [], []
    for x, label in items:
        logits = np.asarray(compiled(x)[0])
        outputs.append([logits])
        hits.append(float(int(np.argmax(logits[0])) == label))
    return float(np.mean(hits)) if hits else 0.0, outputs


def _reference_labels(ov, model, inputs: np.ndarray) -> np.ndarray:
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return np.concatenate([np.asarray(compiled(inputs[i:i + 1])[0]).argmax(1) for i in range(len(inputs))])


def _nncf_device(nncf, device: str):
    name = device.split(".")[0]
    return nncf.TargetDevice[name] if name in ("CPU", "GPU", "NPU") else nncf.TargetDevice.ANY


def nncf_call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # NNCF and OpenVINO raise many types
        raise BuildError(f"NNCF quantization failed: {_one_line(exc)}") from None


@contextlib.contextmanager
def quiet_nncf():
    """NNCF prints progress bars to stdout; keep the build's output to tlc's own log lines."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def preprocessing_ops(model) -> list[str]:
    """Friendly names of the ops the first compute layer's data input depends on (kept float)."""
    first = next((op for op in model.get_ordered_ops() if op.get_type_name() in _COMPUTE_TYPES), None)
    if first is None:
        return []
    seen: dict[str, None] = {}
    stack = [first.input_value(0).get_node()]
    while stack:
        op = stack.pop()
        name = op.get_friendly_name()
        if name in seen or op.get_type_name() in ("Parameter", "Constant"):
            continue
        seen[name] = None
        stack.extend(v.get_node() for v in op.input_values())
    return list(seen)


def score_only_ops(model, logits: str = "logits") -> list[str]:
    """Friendly names of the ops the ``logits`` output does not depend on: those that only compute the
    extra outputs (the OOD gate's energy and Mahalanobis scores). NNCF leaves them float, as the ORT
    ladder does (``graph.score_only_nodes``): quantized, the scores stopped ranking images as PyTorch's do
    (Spearman 0.86) and the build dropped the gate. Empty when the model has no ``logits`` output."""
    heads = [out.get_node() for out in model.outputs if logits in out.get_names()]
    if not heads:
        return []
    needed: set[str] = set()
    stack = list(heads)
    while stack:
        op = stack.pop()
        if op.get_friendly_name() in needed:
            continue
        needed.add(op.get_friendly_name())
        stack.extend(v.get_node() for v in op.input_values())
    skip = ("Parameter", "Constant", "Result")
    return [op.get_friendly_name() for op in model.get_ordered_ops()
            if op.get_friendly_name() not in needed and op.get_type_name() not in skip]


def quantized_layers(model) -> list[str]:
    """Compute layers whose data input passes through a FakeQuantize (i.e. run in int8)."""
    out = []
    for op in model.get_ordered_ops():
        if op.get_type_name() not in _COMPUTE_TYPES:
            continue
        source = op.input_value(0).get_node()
        if source.get_type_name() == "FakeQuantize":
            out.append(op.get_friendly_name())
    return out


def _one_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)

