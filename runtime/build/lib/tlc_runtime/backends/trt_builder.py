"""TensorRT engine build settings and the one engine builder (used by tlc_runtime and tlc).

The settings are recorded in a bundle artifact's ``options["tensorrt_build"]`` at ``tlc build``
time, so an engine can be (re)built on the device from the bundle's ONNX exactly as planned.
``tensorrt`` itself is passed in by the caller (imported lazily there); this module needs numpy
and the standard library only.

TensorRT API differences handled here: networks are always explicit-batch from 10.0
(EXPLICIT_BATCH flag before); strongly typed networks exist from 9.x and are always on in 11.x
(the flag is ignored there); FP16/INT8 builder flags are needed before strongly typed networks;
``set_memory_pool_limit`` replaces ``max_workspace_size`` from 8.4; optimization levels from 8.6.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from ..errors import BundleError, SchemaError, TlcRuntimeError
from ..schema import parse, to_dict

OPTIONS_KEY = "tensorrt_build"


class EngineBuildError(TlcRuntimeError):
    """TensorRT could not parse the ONNX or build an engine from it (the message says why)."""


@dataclass(frozen=True)
class BuildSettings:
    """Everything needed to build the same engine again (trtexec or the TensorRT Python API).

    Shapes are full NHWC input shapes for the optimization profile. ``precision_flags`` lists the
    builder flags old TensorRT needs ("fp16", "int8"); it is empty for strongly typed networks,
    where the ONNX alone fixes every tensor's type. ``tf32`` False clears TensorRT's default TF32
    math for float32 layers, so an FP32 bundle really computes in FP32.
    """

    input_name: str
    min_shape: tuple[int, ...]
    opt_shape: tuple[int, ...]
    max_shape: tuple[int, ...]
    precision: Literal["fp32", "fp16", "int8"]
    strongly_typed: bool = True
    precision_flags: tuple[str, ...] = ()
    tf32: bool = False
    workspace_mib: int = 1024
    builder_optimization_level: int = 3
    use_dla: bool = False
    dla_core: int = 0
    gpu_fallback: bool = True
    version_min: str = "8.6"
    version_max: Optional[str] = None  # noqa: UP045 (Optional: the runtime parses on Python 3.9)
    compute_capability: Optional[str] = None  # noqa: UP045

    def __post_init__(self) -> None:
        if not (len(self.min_shape) == len(self.opt_shape) == len(self.max_shape)):
            raise ValueError("min/opt/max shapes must have the same rank")
        for lo, mid, hi in zip(self.min_shape, self.opt_shape, self.max_shape):  # noqa: B905 (py3.9)
            if not 1 <= lo <= mid <= hi:
                raise ValueError(f"profile shapes need 1 <= min <= opt <= max per axis, got "
                                 f"{self.min_shape}/{self.opt_shape}/{self.max_shape}")
        unknown = set(self.precision_flags) - {"fp16", "int8"}
        if unknown:
            raise ValueError(f"unknown precision flag(s) {sorted(unknown)}; valid: fp16, int8")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_options(cls, options: dict[str, Any], where: str = "artifact options") -> BuildSettings:
        """Settings recorded under ``options["tensorrt_build"]``; BundleError if absent or invalid."""
        if OPTIONS_KEY not in options:
            raise BundleError(f"{where} record no {OPTIONS_KEY!r} settings; rebuild the bundle with tlc")
        try:
            return parse(cls, options[OPTIONS_KEY], f"{where}.{OPTIONS_KEY}")
        except SchemaError as exc:
            raise BundleError(str(exc)) from None


def parse_version(text: str) -> tuple[int, ...]:
    """'10.3.0.30' -> (10, 3, 0, 30); ValueError for text that has no leading number."""
    parts = re.findall(r"\d+", str(text).split("+")[0])
    if not parts:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(p) for p in parts)


def version_in_range(version: str, vmin: str, vmax: str | None) -> bool:
    """True when vmin <= version and version matches vmax as a prefix or is below it."""
    v = parse_version(version)
    lo = parse_version(vmin)
    if v[:len(lo)] < lo:
        return False
    if vmax is None:
        return True
    hi = parse_version(vmax)
    return v[:len(hi)] <= hi


def build_serialized_engine(trt: Any, onnx_path: str | Path, settings: BuildSettings,
                            timing_cache: bytes | None = None,
                            log: Callable[[str], None] | None = None) -> tuple[bytes, bytes]:
    """Parse ``onnx_path`` and build an engine; returns (engine bytes, timing cache bytes)."""
    log = log or (lambda _msg: None)
    logger = _collecting_logger(trt)
    major = parse_version(trt.__version__)[0]
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt, settings, major, log))
    parser = trt.OnnxParser(network, logger)
    parsed = (parser.parse_from_file(str(onnx_path)) if hasattr(parser, "parse_from_file")
              else parser.parse(Path(onnx_path).read_bytes()))  # from a file: external weights resolve
    if not parsed:
        errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT {trt.__version__} cannot parse {Path(onnx_path).name}: {errors}")
    config = builder.create_builder_config()
    _configure(trt, builder, network, config, settings, major, log)
    cache = config.create_timing_cache(timing_cache or b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        log("the stored timing cache does not match this device; starting a new one")
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        detail = "; ".join(logger.errors[-3:]) or "see the TensorRT log"
        raise EngineBuildError(f"TensorRT {trt.__version__} failed to build the engine: {detail}")
    return bytes(serialized), bytes(config.get_timing_cache().serialize())


def _network_flags(trt: Any, settings: BuildSettings, major: int, log: Callable[[str], None]) -> int:
    flags = 0
    names = trt.NetworkDefinitionCreationFlag
    if major < 10 and hasattr(names, "EXPLICIT_BATCH"):
        flags |= 1 << int(names.EXPLICIT_BATCH)
    if settings.strongly_typed and major < 11:
        if hasattr(names, "STRONGLY_TYPED"):
            flags |= 1 << int(names.STRONGLY_TYPED)
        else:
            log(f"TensorRT {trt.__version__} has no strongly typed networks; using builder precision flags")
    return flags


def _precision_flags(trt: Any, settings: BuildSettings, major: int) -> tuple[str, ...]:
    """Builder flags to set: the recorded ones, or derived ones where strong typing is missing."""
    if settings.precision_flags:
        return settings.precision_flags
    strong = settings.strongly_typed and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    if strong or major >= 11 or settings.precision == "fp32":
        return ()
    return (settings.precision,)


def _configure(trt: Any, builder: Any, network: Any, config: Any, settings: BuildSettings,
               major: int, log: Callable[[str], None]) -> None:
    workspace = settings.workspace_mib << 20
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    else:  # TensorRT < 8.4
        config.max_workspace_size = workspace
    if hasattr(config, "builder_optimization_level"):
        config.builder_optimization_level = settings.builder_optimization_level
    for name in _precision_flags(trt, settings, major):
        flag = getattr(trt.BuilderFlag, name.upper(), None)
        if flag is None:
            log(f"TensorRT {trt.__version__} has no {name.upper()} builder flag; the ONNX types decide")
        else:
            config.set_flag(flag)
    if not settings.tf32 and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    if settings.use_dla:
        if builder.num_DLA_cores <= settings.dla_core:
            raise EngineBuildError(f"DLA core {settings.dla_core} requested but this device has "
                                   f"{builder.num_DLA_cores} DLA core(s); build with use_dla = false")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = settings.dla_core
        if settings.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    _add_profile(builder, network, config, settings)


def _add_profile(builder: Any, network: Any, config: Any, settings: BuildSettings) -> None:
    if network.num_inputs != 1:
        raise EngineBuildError(f"expected one network input, found {network.num_inputs}")
    tensor = network.get_input(0)
    if tensor.name != settings.input_name:
        raise EngineBuildError(f"the ONNX input is {tensor.name!r}, the settings name {settings.input_name!r}")
    if len(tuple(tensor.shape)) != len(settings.opt_shape):
        raise EngineBuildError(f"input {tensor.name!r} has rank {len(tuple(tensor.shape))}, "
                               f"the profile has rank {len(settings.opt_shape)}")
    profile = builder.create_optimization_profile()
    profile.set_shape(tensor.name, settings.min_shape, settings.opt_shape, settings.max_shape)
    config.add_optimization_profile(profile)


def _collecting_logger(trt: Any) -> Any:
    """A TensorRT logger that keeps error messages (to put in our own error) and drops info."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(str(msg))

    return _Logger()
