"""TensorRT backend: runs a bundle's prebuilt engine, or builds one from the bundle's ONNX and caches it.

Order in ``open()``: the bundle's hashes were already checked by the loader; then, for an engine
artifact, ``check_engine_compat`` compares the TensorRT version and GPU compute capability the
engine was built with against this device *before* anything is deserialized. An incompatible
engine, or one TensorRT still fails to deserialize (with a RuntimeWarning), is rebuilt from the
bundle's ONNX when the artifact carries one (role "tensorrt_onnx" or "model"), with the settings
recorded at ``tlc build`` time, and cached in ``cache_dir`` (the loader's argument, or
$TLC_RUNTIME_CACHE) keyed by (ONNX sha256, TensorRT version, GPU name and
compute capability, settings); a per-SM timing cache there speeds up later builds.

Needs TensorRT >= 8.5 (named I/O tensors, ``execute_async_v3``), cuda-python and a CUDA GPU, both
imported lazily; ``available()`` is True only where all three are (so "auto" falls back elsewhere).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, ClassVar

from ..errors import BackendUnavailableError, BundleError, EngineIncompatibleError
from ..manifest import Artifact, InputSpec
from ..onnx_external import check_no_external_data
from .base import Backend, Session, SessionInfo, file_label, require
from .trt_builder import OPTIONS_KEY, BuildSettings, EngineBuildError, build_serialized_engine, parse_version
from .trt_session import DEFAULT_MAX_CONTEXTS, TensorRtSession, check_max_contexts

ONNX_ROLES = ("tensorrt_onnx", "model", "onnx")  # first present is what TensorRT parses
MIN_VERSION = (8, 5)  # named I/O tensors and execute_async_v3


def check_engine_compat(artifact_options: dict[str, Any], trt_version: str, compute_capability: str) -> None:
    """Refuse an engine built for another TensorRT release or GPU, from the manifest alone.

    TensorRT engines only load on the TensorRT release (major.minor.patch) and the GPU compute
    capability they were built for. Raises EngineIncompatibleError naming both sides.
    """
    built_trt = artifact_options.get("tensorrt_version")
    built_cc = artifact_options.get("compute_capability")
    if not built_trt or not built_cc:
        raise EngineIncompatibleError("the engine artifact does not record the TensorRT version and compute "
                                      "capability it was built with; rebuild the bundle with tlc")
    try:
        built_v, here_v = parse_version(built_trt), parse_version(trt_version)
        n = max(2, min(3, len(built_v), len(here_v)))  # major.minor always, patch when both record it
        same_trt = built_v[:n] == here_v[:n]
        same_cc = parse_version(built_cc)[:2] == parse_version(compute_capability)[:2]
    except ValueError as exc:
        raise EngineIncompatibleError(f"unreadable engine version record ({exc}); rebuild the bundle") from None
    if not (same_trt and same_cc):
        raise EngineIncompatibleError(
            f"engine was built with TensorRT {built_trt} for SM {built_cc}; this device has TensorRT "
            f"{trt_version} / SM {compute_capability} (the runtime rebuilds it from the bundle's ONNX "
            "when the bundle has one)")


def default_settings(artifact: Artifact, input_spec: InputSpec) -> BuildSettings:
    """Settings for an ONNX artifact that records none (e.g. an ONNX Runtime artifact run on TensorRT)."""
    hwc = (input_spec.height, input_spec.width, input_spec.channels)
    precision = artifact.precision if artifact.precision in ("fp32", "fp16", "int8") else "fp32"
    return BuildSettings(input_name=input_spec.name, min_shape=(1, *hwc), opt_shape=(1, *hwc),
                         max_shape=(8, *hwc), precision=precision)


class TensorRtBackend(Backend):
    name: ClassVar[str] = "tensorrt"
    module: ClassVar[str] = "tensorrt"
    formats: ClassVar[tuple[str, ...]] = ("tensorrt-engine", "onnx")
    install_hint: ClassVar[str] = ("it needs a visible CUDA GPU, TensorRT >= 8.5 with its Python bindings "
                                   "(JetPack ships them; on x86-64: pip install tensorrt) and pip install cuda-python")

    @classmethod
    def available(cls) -> bool:
        """True when an engine can run here: tensorrt is installed, a CUDA GPU is visible and TensorRT is 8.5+."""
        return cls.unavailable_reason() is None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why TensorRT cannot run here, or None when it can; cheap after the first call, never raises.

        tensorrt itself is imported only where a GPU is visible (a CPU host never loads it).
        The compiler asks the same question before it builds an engine (tlc.tensorrt.engine).
        """
        if not super().available():
            return "the tensorrt Python package is not installed"
        from .trt_cuda import gpu_probe
        count, why = gpu_probe()
        if count == 0:
            return why
        try:
            version = str(importlib.import_module(cls.module).__version__)
            too_old = parse_version(version)[:2] < MIN_VERSION
        except Exception as exc:  # a broken install (missing libnvinfer, ...) cannot run engines either
            first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            return f"tensorrt cannot be imported ({first})"
        return f"TensorRT {version} is too old for tlc_runtime (needs 8.5+)" if too_old else None

    @classmethod
    def devices(cls) -> tuple[str, ...]:
        return ("cuda",) if cls.available() else ()

    @classmethod
    def open(cls, artifact: Artifact, files: dict[str, bytes], input_spec: InputSpec,
             device: str = "auto", options: dict[str, Any] | None = None) -> Session:
        """Load (or build and cache) the engine and return a Session on the GPU.

        ``options``: ``cache_dir`` (where engines built here are kept; default ``$TLC_RUNTIME_CACHE``,
        else none: the engine is rebuilt at every load), ``rebuild`` (False refuses to rebuild an
        incompatible or undeserializable engine), ``log`` (a callable for progress lines),
        ``max_contexts`` (execution contexts, each with its device buffers, that concurrent calls
        share; default 4).
        """
        options = options or {}
        max_contexts = check_max_contexts(options.get("max_contexts", DEFAULT_MAX_CONTEXTS))
        if device not in ("auto", "cuda"):
            raise BackendUnavailableError(f"the tensorrt backend runs on 'cuda' only, not {device!r}")
        trt = require(cls.module, cls.install_hint)
        if parse_version(trt.__version__)[:2] < MIN_VERSION:
            raise BackendUnavailableError(f"TensorRT {trt.__version__} is too old for tlc_runtime (needs 8.5+); "
                                          "build the engine with the bundle's trtexec line instead")
        from .trt_cuda import gpu_count, gpu_info
        if gpu_count() == 0:
            raise BackendUnavailableError("no CUDA GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)")
        gpu = gpu_info(0)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine, source = _load_engine(trt, runtime, artifact, files, input_spec, gpu, options)
        details = {"tensorrt_version": trt.__version__, "gpu": gpu.name,
                   "compute_capability": gpu.compute_capability, "engine_source": source,
                   "dla": bool(artifact.options.get(OPTIONS_KEY, {}).get("use_dla", False))}
        info = SessionInfo(backend=cls.name, device="cuda", precision=artifact.precision, details=details)
        return TensorRtSession(trt, runtime, engine, input_spec, info, max_contexts=max_contexts)


def _load_engine(trt: Any, runtime: Any, artifact: Artifact, files: dict[str, bytes], input_spec: InputSpec,
                 gpu: Any, options: dict[str, Any]) -> tuple[Any, str]:
    """The deserialized engine and where it came from: "bundle", "cache" or "built".

    An engine that passed the version check but still fails to deserialize (the bundle's: a plan
    TensorRT rejects for another reason; the cache's: a damaged entry, which is dropped) is built
    again from the bundle's ONNX, with a warning, unless ``rebuild`` is False or there is no ONNX.
    """
    engine_bytes, source = _engine_bytes(trt, artifact, files, input_spec, gpu, options)
    engine = _deserialize(runtime, engine_bytes)
    if engine is None and source == "bundle" and _may_rebuild(options, files):
        _warn(options, f"TensorRT {trt.__version__} could not deserialize the bundle's engine of "
              f"{artifact.name!r}; building one from the bundled ONNX instead")
        engine_bytes, source = _onnx_engine_bytes(trt, artifact, files, input_spec, gpu, options)
        engine = _deserialize(runtime, engine_bytes)
    if engine is None and source == "cache":  # a damaged cache entry: drop it and build again
        _log(options, "the cached engine could not be loaded; rebuilding it")
        engine_bytes, source = _onnx_engine_bytes(trt, artifact, files, input_spec, gpu, {**options, "_drop": True})
        engine = _deserialize(runtime, engine_bytes)
    if engine is None:
        raise EngineIncompatibleError(f"TensorRT {trt.__version__} could not deserialize the engine of "
                                      f"artifact {artifact.name!r}; rebuild it from the bundle's ONNX")
    return engine, source


def _may_rebuild(options: dict[str, Any], files: dict[str, bytes]) -> bool:
    return bool(options.get("rebuild", True)) and any(r in files for r in ONNX_ROLES)


def _engine_bytes(trt: Any, artifact: Artifact, files: dict[str, bytes], input_spec: InputSpec,
                  gpu: Any, options: dict[str, Any]) -> tuple[bytes, str]:
    """The engine to deserialize and where it came from: "bundle", "cache" or "built"."""
    if artifact.format == "tensorrt-engine":
        if "engine" not in files:
            raise BundleError(f"engine artifact {artifact.name!r} lists no 'engine' file")
        try:
            check_engine_compat(artifact.options, trt.__version__, gpu.compute_capability)
            return files["engine"], "bundle"
        except EngineIncompatibleError:
            if not _may_rebuild(options, files):
                raise
            _log(options, f"the bundle's engine does not fit this device; rebuilding {artifact.name!r} from ONNX")
    return _onnx_engine_bytes(trt, artifact, files, input_spec, gpu, options)


def _onnx_engine_bytes(trt: Any, artifact: Artifact, files: dict[str, bytes], input_spec: InputSpec,
                       gpu: Any, options: dict[str, Any]) -> tuple[bytes, str]:
    """An engine for the artifact's ONNX: from the cache, or built here (and cached): "cache" or "built"."""
    role = next((r for r in ONNX_ROLES if r in files), None)
    if role is None:
        raise BundleError(f"artifact {artifact.name!r} has no ONNX file to build a TensorRT engine from")
    settings = (BuildSettings.from_options(artifact.options, f"artifact {artifact.name!r} options")
                if OPTIONS_KEY in artifact.options else default_settings(artifact, input_spec))
    cache_root = options.get("cache_dir") or os.environ.get("TLC_RUNTIME_CACHE")
    cache = Path(cache_root) / "tensorrt" if cache_root else None
    key = _cache_key(artifact.files[role].sha256, trt.__version__, gpu, settings)
    engine_path = cache / f"{key}.engine" if cache else None
    timing_path = cache / f"timing-{_safe(gpu.compute_capability)}.cache" if cache else None
    if engine_path is not None and engine_path.is_file():
        if not options.get("_drop"):
            return engine_path.read_bytes(), "cache"
        engine_path.unlink()
    _log(options, f"building the TensorRT engine for {artifact.name!r} on this device (minutes on a Jetson); "
         + (f"cached in {cache}" if cache else "pass cache_dir to keep it for the next load"))
    timing = timing_path.read_bytes() if timing_path is not None and timing_path.is_file() else None
    check_no_external_data(files[role], artifact.name, file_label(artifact, role))
    try:
        with tempfile.TemporaryDirectory(prefix="tlc-trt-") as private:  # the parser reads the verified bytes
            onnx_path = Path(private) / Path(file_label(artifact, role)).name
            onnx_path.write_bytes(files[role])
            engine, new_timing = build_serialized_engine(trt, onnx_path, settings, timing,
                                                         log=lambda m: _log(options, m))
    except Exception as exc:  # TensorRT's own exception types never reach the caller
        if isinstance(exc, EngineBuildError):
            raise
        raise EngineBuildError(f"TensorRT failed to build {artifact.name!r}: {exc}") from None
    if engine_path is not None and timing_path is not None:
        _write_atomic(engine_path, engine)
        _write_atomic(timing_path, new_timing)
    return engine, "built"


def _deserialize(runtime: Any, data: bytes) -> Any:
    """The engine, or None when TensorRT cannot load these bytes (its exceptions stay inside)."""
    try:
        return runtime.deserialize_cuda_engine(data)
    except Exception:  # TensorRT raises its own types for corrupt or foreign plans
        return None


def _cache_key(onnx_sha256: str, trt_version: str, gpu: Any, settings: BuildSettings) -> str:
    blob = json.dumps({"onnx": onnx_sha256, "trt": trt_version, "gpu": gpu.name,
                       "cc": gpu.compute_capability, "settings": settings.to_dict()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _log(options: dict[str, Any], message: str) -> None:
    log = options.get("log")
    if callable(log):
        log(message)


def _warn(options: dict[str, Any], message: str) -> None:
    """A RuntimeWarning (seen without a ``log`` option) and a log line."""
    warnings.warn(message, RuntimeWarning, stacklevel=4)
    _log(options, message)
