"""The TensorRT/Jetson target files: valid, internally consistent, and found by name and alias."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from tlc.errors import ConfigError
from tlc.targets import builtin_targets, load_target
from tlc.tensorrt.ops import MAX_OPSET
from tlc_runtime.backends.trt_builder import parse_version

TENSORRT = sorted(n for n, t in builtin_targets().items() if t.backend == "tensorrt")
JETSON_CC = {"jetson-orin-nano": "8.7", "jetson-orin-nx": "8.7", "jetson-agx-orin": "8.7",
             "jetson-xavier-nx": "7.2", "jetson-nano": "5.3"}
DLA_CORES = {"jetson-orin-nano": 0, "jetson-orin-nx": 2, "jetson-agx-orin": 2, "jetson-xavier-nx": 2,
             "jetson-nano": 0, "nvidia-gpu": 0}


def parser_max_opset(version: str) -> int:
    """Newest opset the ONNX parser of TensorRT ``version`` imports (per-release table)."""
    known = [v for v in MAX_OPSET if parse_version(v) <= parse_version(version)]
    return MAX_OPSET[max(known, key=parse_version)]


def test_all_jetson_and_gpu_targets_ship() -> None:
    assert set(JETSON_CC) | {"nvidia-gpu"} <= set(TENSORRT)


@pytest.mark.parametrize("name", TENSORRT)
def test_tensorrt_target_is_consistent(name: str) -> None:
    target = load_target(name)
    trt = target.tensorrt
    assert trt is not None, "a tensorrt target needs a [tensorrt] table"
    assert target.device == "cuda"
    assert trt.min_batch <= trt.opt_batch <= trt.max_batch
    assert trt.max_opset <= parser_max_opset(trt.version_min)
    assert trt.dla_cores == DLA_CORES[name]
    assert not trt.use_dla or trt.dla_core < trt.dla_cores
    # strongly typed networks exist from TensorRT 9; older releases need --fp16/--int8 flags
    assert trt.builder_precision_flags == (parse_version(trt.version_min)[0] < 9)
    for precision in target.precisions:
        tol = target.tolerance(precision)
        assert 0.9 <= tol.min_agreement <= 1.0 and tol.max_balanced_accuracy_drop < 0.05
    if name in JETSON_CC:
        assert target.arch == "aarch64" and trt.compute_capability == JETSON_CC[name] and trt.jetpack


def test_jetson_nano_is_fp16_only_on_tensorrt_8_2() -> None:
    nano = load_target("jetson-nano")
    assert "int8" not in nano.precisions and nano.precision == "fp16"
    assert nano.tensorrt.version_min == "8.2" and nano.tensorrt.builder_precision_flags


def test_jetson_alias_resolves_to_an_orin() -> None:
    target = load_target("jetson")
    assert target.name.startswith("jetson-") and target.tensorrt.compute_capability == "8.7"


def test_dla_on_a_module_without_dla_is_refused(tmp_path: Path) -> None:
    text = (resources.files("tlc.target_files") / "jetson-orin-nano.toml").read_text(encoding="utf-8")
    bad = tmp_path / "orin-nano-dla.toml"
    bad.write_text(text.replace("use_dla = false", "use_dla = true"))
    with pytest.raises(ConfigError, match="dla_core"):
        load_target(str(bad))
