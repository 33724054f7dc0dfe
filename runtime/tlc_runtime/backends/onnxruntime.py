"""ONNX Runtime backend: runs "onnx" artifacts on CPU, CUDA, or TensorRT execution providers.

Runtime ``options`` (all optional; None/absent means the default written here):
  - ``intra_op_num_threads``: ORT's intra-op thread pool (default 0 = one thread per physical core this
    process may use, see :func:`available_cores`, set explicitly: left at 0, ORT also pins its threads
    to cores, which measured 1.1-1.5× slower at batch 1 on a shared 2-core VM).
  - ``inter_op_num_threads``: ORT's inter-op pool (default 0 = ORT's choice; unused in sequential mode).
  - ``allow_spinning``: bool, whether idle intra-op threads spin waiting for work (default True, ORT's
    default: lowest batch-1 latency on an idle machine). False on a shared host: with another busy
    process on a 2-core VM, ResNet-18 INT8 took 2.0-2.2 ms without spinning and 4-5 ms with it.
  - ``graph_optimization_level``: "disable" | "basic" | "extended" | "all" (default "all").
  - ``cache_dir``: TensorRT EP engine/timing cache directory (device "tensorrt" only); engines are kept
    in a sub-folder per model content, because the EP's own cache key ignores the weights.
The artifact's own ``options`` may carry the same thread/optimisation keys, recorded at build time;
runtime options win. Keys meant for other backends (the options dict is shared by all of them, e.g.
"rebuild", "log", TensorRT build settings) are ignored; the values of the keys above are validated.
``InferenceSession.run`` is thread-safe, so one session serves every thread.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, BundleError, InferenceError, TlcRuntimeError
from ..manifest import LOGITS, Artifact, InputSpec
from ..onnx_external import check_no_external_data
from .base import Backend, Session, SessionInfo, file_label, require

INSTALL_HINT = "pip install onnxruntime (or onnxruntime-gpu for the cuda/tensorrt devices)"
RUNTIME_OPTION_KEYS = ("allow_spinning", "cache_dir", "graph_optimization_level", "inter_op_num_threads",
                       "intra_op_num_threads")
_ARTIFACT_OPTION_KEYS = ("graph_optimization_level", "inter_op_num_threads", "intra_op_num_threads")
_OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
               "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
_DEVICE_PROVIDER = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider",
                    "cpu": "CPUExecutionProvider"}
_ORT_DTYPES = {"uint8": "tensor(uint8)", "float32": "tensor(float)"}


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (ORT messages can span many lines)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def engine_cache_dir(cache_dir: str | Path, model: bytes) -> Path:
    """``cache_dir``'s folder for the TensorRT EP engines of ``model``, keyed by its sha256.

    The EP names engines after the graph's structure, not its weights: two bundles of one
    architecture would otherwise share (and run) one engine.
    """
    folder = Path(cache_dir) / "onnxruntime-tensorrt" / hashlib.sha256(model).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def providers_for(device: str, precision: str, cache_dir: str | Path | None) -> list[Any]:
    """ORT providers list for a device, best first; CPU is always the last resort."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "tensorrt":
        trt: dict[str, Any] = {"trt_fp16_enable": precision == "fp16",
                               "trt_int8_enable": precision in ("int8", "mixed")}
        if cache_dir:
            trt.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache_dir),
                       trt_timing_cache_enable=True, trt_timing_cache_path=str(cache_dir))
        return [("TensorrtExecutionProvider", trt), "CUDAExecutionProvider", "CPUExecutionProvider"]
    raise BackendUnavailableError(f"onnxruntime has no device {device!r}; use one of {', '.join(_DEVICE_PROVIDER)}")


class OnnxRuntimeSession(Session):
    """One InferenceSession; the per-call path is a single ``run`` with cached names."""

    def __init__(self, sess: Any, input_name: str, output_names: list[str], input_spec: InputSpec,
                 info: SessionInfo) -> None:
        super().__init__(input_spec, info)
        self._sess = sess
        self._run = sess.run
        self._input_name = input_name
        self._output_names = output_names  # the logits first
        self._keys = [LOGITS, *output_names[1:]]

    def infer_impl(self, batch: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
        try:
            outs = self._run(self._output_names, {self._input_name: batch})
        except Exception as exc:  # ORT raises its own pybind types; keep one line of the message
            raise InferenceError(one_line(exc)) from None
        return outs[0] if len(outs) == 1 else dict(zip(self._keys, outs, strict=True))


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    module = "onnxruntime"
    formats = ("onnx",)
    install_hint = INSTALL_HINT

    @classmethod
    def devices(cls) -> tuple[str, ...]:
        """"cuda" and "tensorrt" when ORT has those providers, then "cpu"."""
        ort = require(cls.module, cls.install_hint)
        have = set(ort.get_available_providers())
        return tuple(d for d in ("cuda", "tensorrt", "cpu") if _DEVICE_PROVIDER[d] in have)

    @classmethod
    def open(cls, artifact: Artifact, files: dict[str, bytes], input_spec: InputSpec,
             device: str = "auto", options: dict[str, Any] | None = None) -> Session:
        """InferenceSession from the verified bytes ``files["model"]`` on ``device`` ("auto" = best of devices())."""
        ort = require(cls.module, cls.install_hint)
        opts = _merged_options(artifact, options)
        available = cls.devices()
        wanted = available[0] if device == "auto" else device
        if wanted not in available:
            raise BackendUnavailableError(f"onnxruntime cannot use device {device!r} here (available: "
                                          f"{', '.join(available)}); {INSTALL_HINT}")
        if "model" not in files:
            raise BundleError(f"artifact {artifact.name!r} has no 'model' file (it lists {sorted(files)})")
        model_name = file_label(artifact, "model")
        check_no_external_data(files["model"], artifact.name, model_name)
        cache_dir = opts.get("cache_dir") if wanted == "tensorrt" else None
        cache = engine_cache_dir(cache_dir, files["model"]) if cache_dir else None
        providers = providers_for(wanted, artifact.precision, cache)
        sess_options = _session_options(ort, opts)
        try:
            sess = ort.InferenceSession(files["model"], sess_options=sess_options, providers=providers)
        except TlcRuntimeError:
            raise
        except Exception as exc:
            if type(exc).__name__ == "EPFail":
                raise BackendUnavailableError(f"onnxruntime could not start device {wanted!r}: "
                                              f"{one_line(exc)}") from None
            raise BundleError(f"onnxruntime cannot load artifact {artifact.name!r} ({model_name}): "
                              f"{one_line(exc)}; rebuild the bundle") from None
        input_name, output_names = _check_io(sess, input_spec, artifact.name)
        used = sess.get_providers()
        if _DEVICE_PROVIDER[wanted] not in used:
            if device != "auto":
                raise BackendUnavailableError(f"onnxruntime could not start device {wanted!r} (running "
                                              f"providers: {', '.join(used)}); check the CUDA/TensorRT install")
            wanted = "cpu"
        info = SessionInfo(backend=cls.name, device=wanted, precision=artifact.precision,
                           details={"providers": used, "onnxruntime": ort.__version__,
                                    "input": input_name, "output": output_names[0],
                                    "intra_op_num_threads": sess_options.intra_op_num_threads})
        return OnnxRuntimeSession(sess, input_name, output_names, input_spec, info)


def _merged_options(artifact: Artifact, options: dict[str, Any] | None) -> dict[str, Any]:
    """This backend's keys: build-time values from the artifact, overridden by runtime options."""
    merged = {k: artifact.options[k] for k in _ARTIFACT_OPTION_KEYS if k in artifact.options}
    merged.update({k: v for k, v in (options or {}).items() if k in RUNTIME_OPTION_KEYS and v is not None})
    return merged


def _session_options(ort: Any, opts: dict[str, Any]) -> Any:
    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only: warnings would otherwise print on every load
    level = opts.get("graph_optimization_level", "all")
    if level not in _OPT_LEVELS:
        raise TlcRuntimeError(f"graph_optimization_level {level!r} is not one of {', '.join(_OPT_LEVELS)}")
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _OPT_LEVELS[level])
    for key in ("intra_op_num_threads", "inter_op_num_threads"):
        value = opts.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TlcRuntimeError(f"{key} must be an integer ≥ 0, got {value!r}")
        if key == "intra_op_num_threads" and value == 0:
            value = available_cores()  # explicit, so ORT does not pin its threads to cores
        setattr(so, key, value)
    spinning = opts.get("allow_spinning", True)
    if not isinstance(spinning, bool):
        raise TlcRuntimeError(f"allow_spinning must be true or false, got {spinning!r}")
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return so


def available_cores() -> int:
    """Physical cores among the CPUs this process may run on (ORT's own default count, which also
    honours taskset/cpusets); the number of those CPUs where the core topology cannot be read."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text(), (topology / "core_id").read_text()))
        except OSError:
            return max(1, len(cpus))
    return max(1, len(cores))


def _check_io(sess: Any, spec: InputSpec, artifact_name: str) -> tuple[str, list[str]]:
    """The graph's input name and output names (the logits first), after checking the input against
    the manifest's spec. A one-output graph's output is the logits whatever its name."""
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    if len(inputs) != 1:
        raise BundleError(f"artifact {artifact_name!r} has {len(inputs)} inputs; a tlc model has one")
    graph_in = inputs[0]
    if graph_in.name != spec.name or graph_in.type != _ORT_DTYPES[spec.dtype]:
        raise BundleError(f"artifact {artifact_name!r} takes {graph_in.name!r} {graph_in.type} but the "
                          f"manifest says {spec.name!r} {spec.dtype}; rebuild the bundle")
    shape = list(graph_in.shape)
    expected = [spec.height, spec.width, spec.channels]
    if len(shape) != 4 or any(isinstance(d, int) and d != e for d, e in zip(shape[1:], expected, strict=True)):
        raise BundleError(f"artifact {artifact_name!r} input shape {shape} does not match the manifest's "
                          f"N×{spec.height}×{spec.width}×{spec.channels}; rebuild the bundle")
    names = [o.name for o in outputs]
    if len(names) == 1:
        return graph_in.name, names
    if LOGITS in names:
        return graph_in.name, [LOGITS, *(n for n in names if n != LOGITS)]
    raise BundleError(f"artifact {artifact_name!r} has outputs {names} and none is named {LOGITS!r}")
