"""Which function builds the artifact for a (backend, precision) pair. Modules load lazily."""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from .context import Builder

_BUILDERS: dict[tuple[str, str], str] = {
    ("onnxruntime", "fp32"): "tlc.bundler.onnx_fp32:build_onnx_fp32",
    ("onnxruntime", "fp16"): "tlc.quantize.fp16:build_onnx_fp16",
    ("onnxruntime", "int8"): "tlc.quantize.ort_int8:build_ort_int8",
    ("openvino", "fp32"): "tlc.quantize.openvino_build:build_openvino",
    ("openvino", "fp16"): "tlc.quantize.openvino_build:build_openvino",
    ("openvino", "int8"): "tlc.quantize.openvino_build:build_openvino",
    ("tensorrt", "fp32"): "tlc.tensorrt.build:build_tensorrt",
    ("tensorrt", "fp16"): "tlc.tensorrt.build:build_tensorrt",
    ("tensorrt", "int8"): "tlc.tensorrt.build:build_tensorrt",
}


def get_builder(backend: str, precision: str) -> Builder:
    key = (backend, precision)
    if key not in _BUILDERS:
        valid = ", ".join(f"{b}/{p}" for b, p in _BUILDERS)
        raise ConfigError(f"no builder for backend {backend!r} at precision {precision!r}; valid: {valid}")
    module, func = _BUILDERS[key].split(":")
    return getattr(importlib.import_module(module), func)
