"""Build settings from targets, and the trtexec line for each TensorRT generation."""

from __future__ import annotations

import dataclasses
import shlex

import pytest
from tlc.errors import ConfigError
from tlc.targets import load_target
from tlc.tensorrt.settings import build_settings
from tlc.tensorrt.trtexec import trtexec_command, trtexec_line
from tlc_runtime.backends.trt_builder import BuildSettings
from tlc_runtime.manifest import InputSpec

SPEC = InputSpec(name="pixels", height=64, width=64, channels=1, dtype="uint8")


def command(target_name: str, precision: str, version: str | None = None, **trt_changes) -> list[str]:
    target = load_target(target_name)
    if trt_changes:
        target = dataclasses.replace(target, tensorrt=dataclasses.replace(target.tensorrt, **trt_changes))
    settings = build_settings(target, SPEC, precision)
    return trtexec_command(settings, "tensorrt/model.onnx", "tensorrt/model.engine", "tensorrt/timing.cache", version)


def test_orin_fp16_is_strongly_typed_with_profile_and_workspace() -> None:
    cmd = command("jetson-orin-nano", "fp16")
    assert cmd[:3] == ["trtexec", "--onnx=tensorrt/model.onnx", "--saveEngine=tensorrt/model.engine"]
    assert "--minShapes=pixels:1x64x64x1" in cmd and "--maxShapes=pixels:8x64x64x1" in cmd
    assert {"--memPoolSize=workspace:1024M", "--builderOptimizationLevel=3", "--stronglyTyped",
            "--timingCacheFile=tensorrt/timing.cache", "--skipInference"} <= set(cmd)
    assert "--fp16" not in cmd and "--int8" not in cmd  # precision lives in the ONNX


def test_agx_orin_batch_profile_follows_the_target() -> None:
    cmd = command("jetson-agx-orin", "int8")
    assert "--optShapes=pixels:8x64x64x1" in cmd and "--maxShapes=pixels:32x64x64x1" in cmd
    assert "--memPoolSize=workspace:4096M" in cmd and "--int8" not in cmd


def test_xavier_tensorrt_8_5_uses_builder_flags() -> None:
    cmd = command("jetson-xavier-nx", "int8")
    assert "--int8" in cmd and "--stronglyTyped" not in cmd and "--memPoolSize=workspace:1024" in cmd
    assert "--builderOptimizationLevel=3" not in cmd and "--buildOnly" in cmd


def test_nano_tensorrt_8_2_uses_workspace_and_fp16_flag() -> None:
    cmd = command("jetson-nano", "fp16")
    assert "--workspace=512" in cmd and "--fp16" in cmd and not any(c.startswith("--memPoolSize") for c in cmd)


def test_fp32_engines_turn_tf32_off() -> None:
    assert "--noTF32" in command("jetson-orin-nx", "fp32")


def test_dla_flags_only_when_the_target_uses_dla() -> None:
    assert not any("DLA" in c for c in command("jetson-agx-orin", "fp16"))
    cmd = command("jetson-agx-orin", "fp16", use_dla=True, dla_core=1)
    assert "--useDLACore=1" in cmd and "--allowGPUFallback" in cmd
    no_fallback = command("jetson-agx-orin", "fp16", use_dla=True, gpu_fallback=False)
    assert "--useDLACore=0" in no_fallback and "--allowGPUFallback" not in no_fallback


def test_tensorrt_11_is_always_strongly_typed() -> None:
    assert "--stronglyTyped" not in command("nvidia-gpu", "fp16", version="11.0")
    assert "--stronglyTyped" in command("nvidia-gpu", "fp16", version="10.8")


def test_line_is_shell_quoted_and_round_trips() -> None:
    settings = build_settings(load_target("jetson"), SPEC, "fp16")
    line = trtexec_line(settings, "my bundle/model.onnx", "model.engine")
    assert shlex.split(line) == trtexec_command(settings, "my bundle/model.onnx", "model.engine")


def test_settings_refuse_dla_fp32_and_unknown_precision() -> None:
    agx = load_target("jetson-agx-orin")
    dla = dataclasses.replace(agx, tensorrt=dataclasses.replace(agx.tensorrt, use_dla=True))
    with pytest.raises(ConfigError, match="DLA"):
        build_settings(dla, SPEC, "fp32")
    with pytest.raises(ConfigError, match="fp64"):
        build_settings(agx, SPEC, "fp64")


def test_settings_round_trip_through_the_manifest_options() -> None:
    settings = build_settings(load_target("jetson-xavier-nx"), SPEC, "int8")
    again = BuildSettings.from_options({"tensorrt_build": settings.to_dict()})
    assert again == settings and again.precision_flags == ("int8",) and not again.strongly_typed
