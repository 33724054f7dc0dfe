"""INT8 (ONNX Runtime QDQ, OpenVINO) and Jetson bundles built through the CLI on real chest X-rays,
verified, and loaded by the runtime on the right backend.

The test model is small (32 px, 3 epochs, 500 images) and the test split has 240 images, where one
flip costs 0.42% agreement: at 95% confidence that can show ≥ 95% agreement with up to five flips, not
the default 99%, so these builds pass a budget fit for that size with the flags."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import tlc_runtime
from tlc.cli.main import run
from tlc_runtime.manifest import read_manifest

pytestmark = pytest.mark.slow
BUDGET = ["--min-agreement", "0.95", "--max-drop", "0.05"]


def _build_and_verify(run_dir, data, out, target, *extra):
    assert run(["build", str(run_dir), "--target", target, "--out", str(out), *extra, *BUDGET]) == 0
    report = out.parent / f"{out.name}.json"
    assert run(["verify", str(out), "--data", str(data), "--json", str(report)]) == 0
    return json.loads(report.read_text())


def test_onnxruntime_int8_qdq_bundle(pneumonia_run, pneumonia_small, tmp_path):
    out = tmp_path / "int8"
    result = _build_and_verify(pneumonia_run, pneumonia_small, out, "x86-cpu", "--precision", "int8")
    manifest = read_manifest(out)
    import onnx

    model = onnx.load(str(out / manifest.artifact().files["model"].path))
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    assert manifest.artifact().precision == "int8"
    assert result["runner"]["backend"] == "onnxruntime" and result["comparison"]["agreement"] >= 0.95
    assert tlc_runtime.load(out).info.backend == "onnxruntime"


@pytest.mark.openvino
def test_openvino_int8_bundle_runs_on_openvino_in_f32(pneumonia_run, pneumonia_small, tmp_path):
    pytest.importorskip("openvino", reason="needs the openvino package")
    out = tmp_path / "ov"
    result = _build_and_verify(pneumonia_run, pneumonia_small, out, "intel-cpu")
    assert read_manifest(out).artifact().format == "openvino-ir"
    clf = tlc_runtime.load(out)
    assert clf.info.backend == "openvino"
    assert clf.info.precision == "f32"  # the hint is honoured: not bf16 on an AVX-512-BF16 CPU
    assert result["runner"]["precision"] == "f32"


def test_jetson_bundle_carries_trt_settings_and_verifies_through_the_proxy(pneumonia_run, pneumonia_small,
                                                                           tmp_path, capsys):
    out = tmp_path / "jetson"
    result = _build_and_verify(pneumonia_run, pneumonia_small, out, "jetson")
    artifact = read_manifest(out).artifact()
    assert artifact.backend == "tensorrt" and artifact.format == "onnx"
    assert artifact.options["trtexec"].startswith("trtexec --onnx=")
    assert artifact.options["engine_built"] is False
    assert result["runner"]["proxy"] is True and result["runner"]["backend"] == "onnxruntime"
    assert "ONNX Runtime proxy for tensorrt" in capsys.readouterr().out
    check = subprocess.run([sys.executable, "-m", "tlc_runtime", "check", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
