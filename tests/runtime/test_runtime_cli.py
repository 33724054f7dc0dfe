"""``python -m tlc_runtime check|info``: reports and exit codes 0 pass / 1 fail / 2 error."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from tlc_runtime.__main__ import main

pytest.importorskip("onnxruntime")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tlc_runtime", *args], capture_output=True, text=True, timeout=120)


def test_check_passes_with_exit_0(grey_bundle):
    proc = _cli("check", str(grey_bundle.path), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("PASS: 16 golden images on onnxruntime/cpu (fp32)")


def test_check_on_missing_directory_exits_2_without_traceback(tmp_path):
    proc = _cli("check", str(tmp_path / "no-such-bundle"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: bundle directory not found")
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_check_fails_with_exit_1_on_perturbed_rehashed_golden(make_bundle, capsys):
    bundle = make_bundle()
    with np.load(bundle.path / "golden.npz") as data:
        inputs, logits = data["inputs"], data["logits"]
    np.savez(bundle.path / "golden.npz", inputs=inputs, logits=logits + np.float32(0.5) * (np.arange(3) == 0))
    bundle.rehash()
    assert main(["check", str(bundle.path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False and report["max_abs_prob_delta"] > report["atol_prob"]


def test_check_errors_exit_2(make_bundle, capsys):
    bundle = make_bundle()
    assert main(["check", str(bundle.path), "--backend", "mxnet"]) == 2
    assert capsys.readouterr().err.startswith("Error: unknown backend 'mxnet'")
    (bundle.path / "model.onnx").write_bytes(b"x")
    assert main(["check", str(bundle.path)]) == 2
    assert "does not match its sha256" in capsys.readouterr().err


def test_info_shows_summary_and_integrity(make_bundle, capsys):
    bundle = make_bundle()
    assert main(["info", str(bundle.path)]) == 0
    out = capsys.readouterr().out
    assert "tiny-linear (linear)" in out and "normal, bacterial, viral" in out
    assert "pixels: uint8 Nx8x8x1" in out and "runs here on: onnxruntime" in out
    assert "[ok] model.onnx" in out and "integrity  OK" in out
    with open(bundle.path / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    (bundle.path / "golden.npz").unlink()
    assert main(["info", str(bundle.path), "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert {f["path"]: f["status"] for f in summary["files"]} == {"model.onnx": "modified", "golden.npz": "missing"}
    assert summary["intact"] is False


def test_info_on_broken_manifest_exits_2(make_bundle, capsys):
    bundle = make_bundle()
    (bundle.path / "manifest.json").write_text("{")
    assert main(["info", str(bundle.path)]) == 2
    assert capsys.readouterr().err.startswith("Error: ")


@pytest.mark.parametrize("command", ["check", "info"])
@pytest.mark.parametrize("edit", ["deep-nesting", "dot-path", "duplicate-class"])
def test_malformed_manifest_exits_2_with_one_line(make_bundle, command, edit):
    bundle = make_bundle()
    path = bundle.path / "manifest.json"
    data = json.loads(path.read_text())
    if edit == "dot-path":
        data["golden"]["file"]["path"] = "./"
    elif edit == "duplicate-class":
        data["class_names"][1] = data["class_names"][0]
    text = json.dumps(data)
    if edit == "deep-nesting":
        text = text.replace('"provenance": {}', '"provenance": ' + "[" * 1000 + "]" * 1000)
    path.write_text(text)
    proc = _cli(command, str(bundle.path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
