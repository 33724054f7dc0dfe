"""train → build → inspect → verify → predict through the CLI on real chest X-rays, and its failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import onnx
import pytest
import tlc_runtime
from tlc.cli.main import run
from tlc_runtime.integrity import file_entry
from tlc_runtime.manifest import read_manifest

pytestmark = pytest.mark.slow


def _one_line_error(capsys) -> str:
    """The error is one line, the last on stderr (progress lines may precede it), and no traceback."""
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("Error: ")]
    assert len(errors) == 1 and err[-1] == errors[0], err
    assert not any("Traceback" in line for line in err)
    return errors[0]


def test_build_writes_a_valid_bundle(fp32_bundle, pneumonia_run):
    manifest = read_manifest(fp32_bundle)
    assert manifest.class_names == ("0", "1")
    assert manifest.input.dtype == "uint8" and manifest.input.channels == 1
    assert manifest.target.name == "x86-cpu" and manifest.artifact().precision == "fp32"
    assert manifest.verification["agreement"] == 1.0
    assert manifest.verification["max_abs_prob_delta"] <= 1e-4
    assert manifest.provenance["run_id"] == json.loads((pneumonia_run / "run.json").read_text())["run_id"]
    assert manifest.provenance["opset"] >= 17
    golden = np.load(fp32_bundle / manifest.golden.file.path)
    assert golden["inputs"].shape[1:] == (32, 32, 1) and len(golden["logits"]) == manifest.golden.count


def test_inspect_reports_integrity(fp32_bundle, capsys):
    assert run(["inspect", str(fp32_bundle)]) == 0
    assert "integrity ok" in capsys.readouterr().out


def test_verify_passes_with_exact_agreement(fp32_bundle, pneumonia_small, tmp_path, capsys, ant_junit):
    report, junit, plot = tmp_path / "v.json", tmp_path / "v.xml", tmp_path / "v.png"
    code = run(["verify", str(fp32_bundle), "--data", str(pneumonia_small), "--json", str(report),
                "--junit", str(junit), "--plot", str(plot)])
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads(report.read_text())
    assert data["passed"] and data["comparison"]["agreement"] == 1.0
    assert data["comparison"]["max_abs_prob_delta"] <= 1e-4
    assert data["comparison"]["n"] == 240
    assert data["runner"]["precision"] == "fp32"
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "0" and int(suite.get("tests")) >= 2
    ant_junit(junit)
    assert plot.stat().st_size > 10_000
    assert "verification passed" in out


def _break_weights(bundle: Path) -> None:
    """Negate the classifier's weights and re-hash, so integrity passes but predictions flip."""
    manifest_path = bundle / "manifest.json"
    data = json.loads(manifest_path.read_text())
    rel = data["artifacts"][0]["files"]["model"]["path"]
    model = onnx.load(str(bundle / rel))
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    for init in model.graph.initializer:
        if init.name == gemm.input[1]:
            w = onnx.numpy_helper.to_array(init)
            init.CopyFrom(onnx.numpy_helper.from_array(-w, init.name))
    onnx.save(model, str(bundle / rel))
    entry = file_entry(bundle, rel)
    data["artifacts"][0]["files"]["model"] = {"path": rel, "sha256": entry.sha256, "bytes": entry.bytes}
    manifest_path.write_text(json.dumps(data))


def test_verify_fails_with_exit_1_on_a_broken_bundle(fp32_bundle, pneumonia_small, tmp_path, capsys, ant_junit):
    broken = tmp_path / "broken"
    shutil.copytree(fp32_bundle, broken)
    _break_weights(broken)
    junit = tmp_path / "fail.xml"
    assert run(["verify", str(broken), "--data", str(pneumonia_small), "--junit", str(junit)]) == 1
    assert "verification FAILED" in capsys.readouterr().out
    assert ET.parse(junit).getroot().get("failures") != "0"
    ant_junit(junit)


def test_tampered_artifact_is_refused(fp32_bundle, pneumonia_small, tmp_path, capsys, ant_junit):
    tampered = tmp_path / "tampered"
    shutil.copytree(fp32_bundle, tampered)
    rel = read_manifest(tampered).artifact().files["model"].path
    raw = bytearray((tampered / rel).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tampered / rel).write_bytes(bytes(raw))
    junit = tmp_path / "error.xml"
    assert run(["verify", str(tampered), "--data", str(pneumonia_small), "--junit", str(junit)]) == 2
    assert "sha256" in _one_line_error(capsys)
    ant_junit(junit)
    error = ET.parse(junit).getroot().find("testcase/error")
    assert "sha256" in error.get("message") and error.get("type").endswith("IntegrityError")
    assert run(["inspect", str(tampered)]) == 1


def test_predict_files_match_the_runtime(fp32_bundle, pneumonia_small, tmp_path, capsys):
    from PIL import Image

    images = np.load(pneumonia_small)["test_images"][:4]
    paths = []
    for i, img in enumerate(images):
        paths.append(tmp_path / f"x{i}.png")
        Image.fromarray(img).save(paths[-1])
    assert run(["predict", str(fp32_bundle), *map(str, paths), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    clf = tlc_runtime.load(fp32_bundle)
    for entry, img in zip(printed, images, strict=True):
        expected = clf.predict(img)
        assert entry["label"] == expected.label
        assert entry["confidence"] == pytest.approx(expected.confidence, abs=1e-6)


def test_interrupted_build_leaves_nothing(pneumonia_run, tmp_path, monkeypatch):
    import tlc.bundler.builder as builder

    def interrupted(ctx):
        (ctx.staging / "model.fp32.onnx").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(builder, "get_builder", lambda backend, precision: interrupted)
    out = tmp_path / "bundle"
    assert run(["build", str(pneumonia_run), "--target", "x86-cpu", "--out", str(out)]) == 130
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_failed_rebuild_keeps_the_existing_bundle(fp32_bundle, pneumonia_run, tmp_path, monkeypatch, capsys):
    import tlc.bundler.builder as builder
    from tlc.errors import BuildError

    existing = tmp_path / "bundle"
    shutil.copytree(fp32_bundle, existing)
    before = (existing / "manifest.json").read_text()

    def failing(ctx):
        raise BuildError("simulated backend failure")

    monkeypatch.setattr(builder, "get_builder", lambda backend, precision: failing)
    code = run(["build", str(pneumonia_run), "--target", "x86-cpu", "--out", str(existing), "--overwrite"])
    assert code == 2 and "simulated backend failure" in _one_line_error(capsys)
    assert (existing / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


@pytest.mark.parametrize("argv, message", [
    (["build", "{run}", "--target", "no-such-board", "--out", "{tmp}/b"], "known targets"),
    (["build", "{tmp}/missing-run", "--target", "x86-cpu", "--out", "{tmp}/b"], "not found"),
    (["verify", "{tmp}/missing-bundle", "--data", "{data}"], "not found"),
    (["train", "{tmp}/missing.npz", "--out", "{tmp}/r"], "missing.npz"),
    (["predict", "{bundle}", "{tmp}/missing.png"], "missing.png"),
])
def test_user_errors_are_one_line(argv, message, pneumonia_run, fp32_bundle, pneumonia_small, tmp_path, capsys):
    fill = {"run": pneumonia_run, "tmp": tmp_path, "data": pneumonia_small, "bundle": fp32_bundle}
    assert run([a.format(**fill) for a in argv]) == 2
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "b").exists()
