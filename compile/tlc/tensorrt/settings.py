"""The TensorRT build settings of a target, precision and input: what gets recorded in the bundle."""

from __future__ import annotations

from tlc_runtime.backends.trt_builder import BuildSettings
from tlc_runtime.manifest import InputSpec

from ..errors import ConfigError
from ..targets import Target, TensorRtOptions


def tensorrt_options(target: Target) -> TensorRtOptions:
    """The target's [tensorrt] table (tlc's defaults when the file has none)."""
    return target.tensorrt or TensorRtOptions()


def build_settings(target: Target, input_spec: InputSpec, precision: str) -> BuildSettings:
    """Engine settings for ``target`` at ``precision``: NHWC profile shapes from the batch range,
    strongly typed networks (precision lives in the ONNX) unless the target's TensorRT needs
    builder precision flags, FP32 without TF32, workspace, optimization level and DLA.
    """
    if precision not in ("fp32", "fp16", "int8"):
        raise ConfigError(f"TensorRT builds fp32, fp16 or int8, not {precision!r}")
    trt = tensorrt_options(target)
    if trt.use_dla and precision == "fp32":
        raise ConfigError(f"target {target.name} uses DLA, which runs fp16/int8 only; build fp16 or int8, "
                          "or set use_dla = false in the target file")
    hwc = (input_spec.height, input_spec.width, input_spec.channels)
    flags: tuple[str, ...] = (precision,) if trt.builder_precision_flags and precision != "fp32" else ()
    return BuildSettings(
        input_name=input_spec.name, min_shape=(trt.min_batch, *hwc), opt_shape=(trt.opt_batch, *hwc),
        max_shape=(trt.max_batch, *hwc), precision=precision, strongly_typed=not trt.builder_precision_flags,
        precision_flags=flags, tf32=False, workspace_mib=trt.workspace_mib,
        builder_optimization_level=trt.builder_optimization_level, use_dla=trt.use_dla, dla_core=trt.dla_core,
        gpu_fallback=trt.gpu_fallback, version_min=trt.version_min, version_max=trt.version_max,
        compute_capability=trt.compute_capability)
