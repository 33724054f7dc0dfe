"""OpenVINO backend: runs "openvino-ir" (model.xml + model.bin) and "onnx" artifacts on CPU, GPU or NPU.

Runtime ``options`` (all optional; None/absent means the default written here; keys meant for
other backends are ignored, as ``tlc_runtime.load`` documents):
  - ``cache_dir``: OpenVINO's compiled-model cache (CACHE_DIR), default none.
  - ``performance_hint``: "LATENCY" | "THROUGHPUT" (default: the artifact's, else LATENCY).
  - ``inference_precision``: "f32" | "bf16" | "f16" (default: the artifact's recorded hint). FP32
    bundles record "f32" so a CPU with bf16 support does not silently compute in bf16.
  - ``num_threads``: INFERENCE_NUM_THREADS (default 0 = OpenVINO's choice).
Thread safety: one compiled model, one infer request per calling thread (``threading.local``).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, BundleError, InferenceError, TlcRuntimeError
from ..manifest import LOGITS, Artifact, InputSpec
from ..onnx_external import check_no_external_data
from .base import Backend, Session, SessionInfo, file_label, require

INSTALL_HINT = "pip install openvino"
RUNTIME_OPTION_KEYS = ("cache_dir", "inference_precision", "num_threads", "performance_hint")
_HINTS = ("f32", "bf16", "f16")


def _one_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


class OpenVinoSession(Session):
    """A compiled model; each thread gets its own infer request, created on its first call."""

    def __init__(self, compiled: Any, input_spec: InputSpec, info: SessionInfo, static_batch: int | None,
                 output_names: list[str] | None = None) -> None:
        super().__init__(input_spec, info)
        self._compiled = compiled
        self._local = threading.local()
        self._static_batch = static_batch
        self._names = output_names or [LOGITS]  # graph order of the outputs, the logits' index first
        self._order = _output_order(compiled, self._names) if len(self._names) > 1 else [0]

    def _request(self) -> Any:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        return request

    def infer_impl(self, batch: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
        request = self._request()
        step = self._static_batch
        if step is None or len(batch) == step:
            request.infer({0: batch}, share_inputs=True)
            return self._outputs(request)
        parts = []
        for start in range(0, len(batch), step):  # static-shape devices (NPU): fixed-size chunks
            chunk = batch[start:start + step]
            if len(chunk) < step:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - len(chunk), axis=0)])
            request.infer({0: np.ascontiguousarray(chunk)}, share_inputs=True)
            parts.append(self._outputs(request))
        if isinstance(parts[0], np.ndarray):
            return np.concatenate(parts)[:len(batch)]
        return {name: np.concatenate([p[name] for p in parts])[:len(batch)] for name in parts[0]}

    def _outputs(self, request: Any) -> np.ndarray | dict[str, np.ndarray]:
        if len(self._order) == 1:
            return request.get_output_tensor(0).data.copy()
        return {name: request.get_output_tensor(index).data.copy()
                for name, index in zip(self._names, self._order, strict=True)}


class OpenVinoBackend(Backend):
    name = "openvino"
    module = "openvino"
    formats = ("openvino-ir", "onnx")
    install_hint = INSTALL_HINT

    @classmethod
    def devices(cls) -> tuple[str, ...]:
        """OpenVINO's devices here (e.g. ("CPU", "GPU", "NPU")), accelerators first."""
        ov = require(cls.module, cls.install_hint)
        found = tuple(ov.Core().available_devices)
        return tuple(sorted(found, key=lambda d: (d.split(".")[0] == "CPU", d)))

    @classmethod
    def open(cls, artifact: Artifact, files: dict[str, bytes], input_spec: InputSpec,
             device: str = "auto", options: dict[str, Any] | None = None) -> Session:
        """Compile the artifact on ``device`` ("auto": the device recorded at build time if present, else CPU)."""
        ov = require(cls.module, cls.install_hint)
        opts = _check_options(options)
        core = ov.Core()
        available = tuple(core.available_devices)
        chosen = _choose_device(device, artifact.options.get("device"), available)
        model = _read(ov, core, artifact, files)
        config = _config(artifact, opts, chosen, core)
        try:
            compiled = core.compile_model(model, chosen, config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with multi-line text
            raise InferenceError(f"openvino could not compile artifact {artifact.name!r} for {chosen}: "
                                 f"{_one_line(exc)}") from None
        names = _check_io(compiled, input_spec, artifact.name)
        precision = _precision_of(compiled)
        info = SessionInfo(backend=cls.name, device=chosen, precision=precision,
                           details={"artifact_precision": artifact.precision, "openvino": ov.get_version(),
                                    "requested_device": artifact.options.get("device"),
                                    "performance_hint": config.get("PERFORMANCE_HINT"),
                                    "execution_devices": list(_property(compiled, "EXECUTION_DEVICES") or [])})
        static = artifact.options.get("static_batch")
        return OpenVinoSession(compiled, input_spec, info, int(static) if static else None, names)


def _check_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The runtime options this backend reads, with their values validated."""
    opts = {k: v for k, v in (options or {}).items() if v is not None and k in RUNTIME_OPTION_KEYS}
    if "inference_precision" in opts and opts["inference_precision"] not in _HINTS:
        raise TlcRuntimeError(f"inference_precision {opts['inference_precision']!r} is not one of {', '.join(_HINTS)}")
    if opts.get("performance_hint", "LATENCY") not in ("LATENCY", "THROUGHPUT"):
        raise TlcRuntimeError(f"performance_hint {opts['performance_hint']!r} is not LATENCY or THROUGHPUT")
    return opts


def _choose_device(device: str, recorded: str | None, available: tuple[str, ...]) -> str:
    if device == "auto":
        if recorded and recorded in available:
            return recorded
        if "CPU" in available:
            return "CPU"
        if available:
            return available[0]
        raise BackendUnavailableError("openvino finds no device on this machine; check the OpenVINO install")
    wanted = device.upper()
    if wanted not in available:
        raise BackendUnavailableError(f"openvino has no device {device!r} here (available: "
                                      f"{', '.join(available) or 'none'}); install its driver or use device='auto'")
    return wanted


def _read(ov: Any, core: Any, artifact: Artifact, files: dict[str, bytes]) -> Any:
    """The model from the verified bytes (IR: xml text + bin weights; or an ONNX file), never from a path."""
    roles = ("xml", "bin") if artifact.format == "openvino-ir" else ("model",)
    missing = [r for r in roles if r not in files]
    if missing:
        raise BundleError(f"artifact {artifact.name!r} lacks file role(s) {missing} (it lists {sorted(files)})")
    if artifact.format != "openvino-ir":
        check_no_external_data(files["model"], artifact.name, file_label(artifact, "model"))
    try:
        if artifact.format == "openvino-ir":
            weights = ov.Tensor(np.frombuffer(files["bin"], dtype=np.uint8))  # a copy owned by OpenVINO
            return core.read_model(files["xml"], weights)
        return core.read_model(files["model"])
    except Exception as exc:
        raise BundleError(f"openvino cannot read artifact {artifact.name!r}: {_one_line(exc)}; "
                          "rebuild the bundle") from None


def _config(artifact: Artifact, opts: dict[str, Any], device: str, core: Any) -> dict[str, Any]:
    recorded = artifact.options.get("INFERENCE_PRECISION_HINT")
    hint = opts.get("inference_precision", recorded)
    config: dict[str, Any] = {"PERFORMANCE_HINT": opts.get("performance_hint",
                                                           artifact.options.get("PERFORMANCE_HINT", "LATENCY"))}
    if hint:
        supported = _supported_hints(core, device)
        if supported is None or hint in supported:
            config["INFERENCE_PRECISION_HINT"] = hint
        elif "inference_precision" in opts:
            raise TlcRuntimeError(f"{device} cannot compute in {hint} (it supports {', '.join(sorted(supported))})")
        elif "f32" in supported:  # e.g. an f16 GPU bundle run on a CPU without f16: stay exact
            config["INFERENCE_PRECISION_HINT"] = "f32"
    if "cache_dir" in opts:
        config["CACHE_DIR"] = str(opts["cache_dir"])
    threads = opts.get("num_threads", 0)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise TlcRuntimeError(f"num_threads must be an integer ≥ 0, got {threads!r}")
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


def _supported_hints(core: Any, device: str) -> set[str] | None:
    """Precision hints ``device`` can honour (None: unknown, pass the hint through)."""
    caps = _property(core, "OPTIMIZATION_CAPABILITIES", device)
    if caps is None:
        return None
    names = {str(c).upper() for c in caps}
    table = {"f32": "FP32", "bf16": "BF16", "f16": "FP16"}
    return {hint for hint, cap in table.items() if cap in names}


def _property(obj: Any, name: str, device: str | None = None) -> Any:
    try:
        return obj.get_property(device, name) if device else obj.get_property(name)
    except Exception:  # a device may not expose every property
        return None


def _precision_of(compiled: Any) -> str:
    """The precision the compiled model really computes in, as OpenVINO reports it ("f32", "bf16", ...)."""
    value = _property(compiled, "INFERENCE_PRECISION_HINT")
    if value is None:
        return "unknown"
    text = value.to_string() if hasattr(value, "to_string") else str(value)
    return {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}.get(text, text)


def _output_order(compiled: Any, names: list[str]) -> list[int]:
    """Output indexes of ``compiled`` in the order of ``names`` (logits first)."""
    index = {}
    for i, port in enumerate(compiled.outputs):
        for name in port.get_names():
            index.setdefault(name, i)
    return [index[n] for n in names]


def _output_names(compiled: Any, artifact_name: str) -> list[str]:
    """The logits first, then the other outputs in graph order; one output is the logits whatever its name."""
    ports = compiled.outputs
    if len(ports) == 1:
        return [LOGITS]
    names = [port.get_any_name() if port.get_names() else "" for port in ports]
    if LOGITS not in {n for port in ports for n in port.get_names()}:
        raise BundleError(f"artifact {artifact_name!r} has outputs {names} and none is named {LOGITS!r}")
    others = [n for port, n in zip(ports, names, strict=True) if LOGITS not in port.get_names()]
    return [LOGITS, *others]


def _check_io(compiled: Any, spec: InputSpec, artifact_name: str) -> list[str]:
    """The output names (``_output_names``), after checking the input against the manifest's spec."""
    inputs = compiled.inputs
    if len(inputs) != 1:
        raise BundleError(f"artifact {artifact_name!r} has {len(inputs)} inputs; a tlc model has one")
    element = inputs[0].get_element_type().to_string()
    if {"u8": "uint8", "f32": "float32"}.get(element, element) != spec.dtype:
        raise BundleError(f"artifact {artifact_name!r} takes {element} pixels but the manifest says {spec.dtype}; "
                          "rebuild the bundle")
    shape = inputs[0].get_partial_shape()
    expected = (spec.height, spec.width, spec.channels)
    dims = [d.get_length() if d.is_static else None for d in shape]
    if len(dims) != 4 or any(d is not None and d != e for d, e in zip(dims[1:], expected, strict=True)):
        raise BundleError(f"artifact {artifact_name!r} input shape {shape} does not match the manifest's "
                          f"N×{expected[0]}×{expected[1]}×{expected[2]}; rebuild the bundle")
    return _output_names(compiled, artifact_name)
