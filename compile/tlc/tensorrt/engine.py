"""Engine builds through the TensorRT Python API, where TensorRT and a matching GPU are present.

``probe_environment`` says whether this machine can build an engine for a target (and if not,
why: the reason goes into the bundle); ``build_engine_files`` builds it with the one builder the
runtime also uses (tlc_runtime.backends.trt_builder) and turns its failures into BuildError.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlc_runtime.backends.tensorrt import TensorRtBackend
from tlc_runtime.backends.trt_builder import BuildSettings, build_serialized_engine, version_in_range
from tlc_runtime.errors import TlcRuntimeError

from ..errors import BuildError
from ..targets import Target
from .settings import tensorrt_options


@dataclass(frozen=True)
class EngineEnvironment:
    can_build: bool
    reason: str                       # why not (empty when can_build)
    tensorrt_version: str | None = None
    gpu_name: str | None = None
    compute_capability: str | None = None


def probe_environment(target: Target) -> EngineEnvironment:
    """Can this machine build ``target``'s engine? Where the runtime's TensorRT backend can run here
    (the one check both sides use: tensorrt 8.5+ and a CUDA GPU), the GPU's SM and TensorRT's version
    must also be the target's; otherwise the build measures the ONNX through the ONNX Runtime proxy."""
    reason = TensorRtBackend.unavailable_reason()
    if reason is not None:
        return EngineEnvironment(False, f"{reason} on this machine")
    try:
        trt = importlib.import_module("tensorrt")
        from tlc_runtime.backends.trt_cuda import gpu_info
        gpu = gpu_info(0)
    except Exception as exc:  # a broken TensorRT/CUDA install is a reason, not a crash
        return EngineEnvironment(False, f"TensorRT/CUDA cannot be used here ({exc})")
    opts = tensorrt_options(target)
    env = dict(tensorrt_version=trt.__version__, gpu_name=gpu.name, compute_capability=gpu.compute_capability)
    if opts.compute_capability and gpu.compute_capability != opts.compute_capability:
        return EngineEnvironment(False, f"this GPU ({gpu.name}, SM {gpu.compute_capability}) is not the "
                                 f"target's SM {opts.compute_capability}", **env)
    if not version_in_range(trt.__version__, opts.version_min, opts.version_max):
        wanted = f"{opts.version_min}..{opts.version_max or ''}"
        return EngineEnvironment(False, f"TensorRT {trt.__version__} here is outside the target's {wanted}", **env)
    return EngineEnvironment(True, "", **env)


def build_engine_files(onnx_path: Path, settings: BuildSettings, engine_path: Path, timing_cache_path: Path,
                       log: Callable[[str], None] = print) -> None:
    """Build the engine and write it and its timing cache (BuildError on any TensorRT failure)."""
    trt: Any = importlib.import_module("tensorrt")
    try:
        engine, cache = build_serialized_engine(trt, onnx_path, settings, log=log)
    except TlcRuntimeError as exc:
        raise BuildError(str(exc)) from None
    except Exception as exc:  # TensorRT's own exception types
        raise BuildError(f"TensorRT {trt.__version__} failed to build {onnx_path.name}: {exc}") from None
    engine_path.write_bytes(engine)
    timing_cache_path.write_bytes(cache)
