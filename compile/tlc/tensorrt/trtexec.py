"""The ``trtexec`` command line equivalent to a bundle's recorded TensorRT build settings.

Flags follow the target's oldest TensorRT: ``--memPoolSize`` from 8.4 (``--workspace`` before),
``--builderOptimizationLevel`` from 8.6, ``--stronglyTyped`` on 9.x/10.x (always on in 11.x),
``--fp16``/``--int8`` only where the settings carry builder precision flags, ``--noTF32`` so that
FP32 engines compute in FP32, ``--skipInference`` from 8.6 (``--buildOnly`` before). Paths are relative to the bundle directory (run it from there).
"""

from __future__ import annotations

import shlex

from tlc_runtime.backends.trt_builder import BuildSettings, parse_version


def _shape(name: str, shape: tuple[int, ...]) -> str:
    return f"{name}:{'x'.join(str(d) for d in shape)}"


def trtexec_command(settings: BuildSettings, onnx: str, engine: str, timing_cache: str | None = None,
                    version: str | None = None) -> list[str]:
    """argv for trtexec; ``version`` (default: settings.version_min) picks the flag spelling."""
    v = parse_version(version or settings.version_min)
    cmd = ["trtexec", f"--onnx={onnx}", f"--saveEngine={engine}",
           f"--minShapes={_shape(settings.input_name, settings.min_shape)}",
           f"--optShapes={_shape(settings.input_name, settings.opt_shape)}",
           f"--maxShapes={_shape(settings.input_name, settings.max_shape)}"]
    if v[:2] >= (8, 6):
        cmd += [f"--memPoolSize=workspace:{settings.workspace_mib}M",
                f"--builderOptimizationLevel={settings.builder_optimization_level}"]
    elif v[:2] >= (8, 4):
        cmd.append(f"--memPoolSize=workspace:{settings.workspace_mib}")
    else:
        cmd.append(f"--workspace={settings.workspace_mib}")
    if settings.strongly_typed and 9 <= v[0] < 11:
        cmd.append("--stronglyTyped")
    cmd += [f"--{flag}" for flag in settings.precision_flags]
    if not settings.tf32:
        cmd.append("--noTF32")
    if settings.use_dla:
        cmd.append(f"--useDLACore={settings.dla_core}")
        if settings.gpu_fallback:
            cmd.append("--allowGPUFallback")
    if timing_cache:
        cmd.append(f"--timingCacheFile={timing_cache}")
    cmd.append("--skipInference" if v[:2] >= (8, 6) else "--buildOnly")
    return cmd


def trtexec_line(settings: BuildSettings, onnx: str, engine: str, timing_cache: str | None = None,
                 version: str | None = None) -> str:
    """The same command as one shell-quoted line."""
    return shlex.join(trtexec_command(settings, onnx, engine, timing_cache, version))
