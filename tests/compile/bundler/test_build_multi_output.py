"""Issue 13's done-when: a multi-task run and an ensemble run each build to one graph for x86-cpu and
intel-cpu (FP32 and INT8), and ``tlc verify`` checks every output against the budget, every task and
every member included; a task head that no longer matches PyTorch fails verify, naming the task."""

from __future__ import annotations

import json
import subprocess
import sys
from xml.etree import ElementTree as ET

import pytest
from tlc.cli.main import run

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

TINY = ["--arch", "small_cnn", "--img-size", "16", "--epochs", "1", "--batch-size", "16", "--no-augment"]
# CI time: each run builds where its own risk is. Multi-task: every output through ONNX Runtime (FP32,
# INT8) and NNCF (INT8). Ensemble: member verification on ONNX Runtime INT8; its FP32 graph is compared
# with PyTorch in test_build_ensemble.py, and the op OpenVINO's reader refused is tested in
# tests/compile/models/test_ops.py.
OV = pytest.mark.openvino
TASK_BUILDS = [("x86-cpu", "fp32"), ("x86-cpu", "int8"), pytest.param("intel-cpu", "int8", marks=OV)]
ENSEMBLE_BUILDS = [("x86-cpu", "int8")]
# a one-epoch model on 60 test images decides nothing: observed values, INT8 margins a tiny model can keep
BUDGET = {"fp32": ["--confidence", "0"], "int8": ["--confidence", "0", "--min-agreement", "0.8", "--max-drop", "0.2"]}
TASKS = ("finding", "view", "exposure")


@pytest.fixture(scope="module")
def tasks_run(digits_tasks_csv, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("mt") / "run"
    assert run(["train", str(digits_tasks_csv), "--out", str(run_dir), *TINY, "--tasks", ",".join(TASKS),
                "--task-attention", "static"]) == 0
    return run_dir


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """build(run_dir, target, precision) → its bundle, built through the CLI once per module."""
    built = {}

    def make(run_dir, target, precision):
        if target == "intel-cpu":
            pytest.importorskip("openvino")
        key = (str(run_dir), target, precision)
        if key not in built:
            out = tmp_path_factory.mktemp("bundles") / f"{target}-{precision}"
            assert run(["build", str(run_dir), "--target", target, "--precision", precision, "--out", str(out),
                        *BUDGET[precision]]) == 0
            built[key] = out
        return built[key]

    return make


def _verify(bundle, data, junit, capsys) -> tuple[int, str, list[str]]:
    capsys.readouterr()
    code = run(["verify", str(bundle), "--data", str(data), "--junit", str(junit)])
    cases = [case.get("name") for case in ET.parse(junit).getroot().iter("testcase")]
    return code, capsys.readouterr().out, cases


def _runtime_check(bundle) -> None:
    check = subprocess.run([sys.executable, "-m", "tlc_runtime", "check", str(bundle)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("target, precision", TASK_BUILDS)
def test_multitask_run_builds_and_verifies_every_task(tasks_run, build, digits_tasks_csv, target, precision,
                                                      tmp_path, capsys):
    bundle = build(tasks_run, target, precision)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert [t["name"] for t in manifest["tasks"]] == list(TASKS)
    assert [o["name"] for o in manifest["outputs"]] == ["logits", "task_view", "task_exposure"]
    assert set(manifest["golden"]["atol_outputs"]) == {"task_view", "task_exposure"}
    verification = manifest["verification"]
    assert list(verification["tasks"]) == list(TASKS)
    for task in verification["tasks"].values():
        assert task["passed"] and task["budget"] == verification["budget"] and task["checks"]
    assert verification["tasks"]["exposure"]["labelled"] < verification["tasks"]["exposure"]["n"]  # labels missing
    code, out, cases = _verify(bundle, digits_tasks_csv, tmp_path / "v.xml", capsys)
    assert code == 0, out
    for name in TASKS[1:]:
        assert f"task {name}: top1_agreement" in cases and f"task {name}: balanced_accuracy_drop" in cases
        assert f"task {name} (task_{name}): agreement" in out
    _runtime_check(bundle)
    capsys.readouterr()
    assert run(["predict", str(bundle), str(digits_tasks_csv.parent / "0.png"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert set(result["tasks"]) == set(TASKS)
    assert all({"label", "confidence", "probabilities"} <= set(t) for t in result["tasks"].values())
    assert result["tasks"]["finding"]["label"] == result["label"]
    assert set(result["tasks"]["view"]["probabilities"]) == {"mirrored", "plain"}


@pytest.mark.parametrize("target, precision", ENSEMBLE_BUILDS)
def test_ensemble_run_builds_and_verifies_every_member(ensemble_run, build, tiny_run_dir, target, precision,
                                                       tmp_path, capsys):
    from tlc.runs import read_run_info

    bundle = build(ensemble_run, target, precision)
    members = read_run_info(ensemble_run).members
    recorded = json.loads((bundle / "manifest.json").read_text())["verification"]["members"]
    assert [m["run_id"] for m in recorded] == [m.run_id for m in members] and all(m["passed"] for m in recorded)
    code, out, cases = _verify(bundle, tiny_run_dir.parent / "digits01.npz", tmp_path / "v.xml", capsys)
    assert code == 0, out
    for i, member in enumerate(members):
        scope = f"member {i + 1} ({member.run_id}, {member.arch})"
        assert f"{scope}: top1_agreement" in cases and f"{scope}: balanced_accuracy_drop" in cases
        assert f"{scope}: agreement" in out
    _runtime_check(bundle)


def test_a_task_head_that_differs_from_pytorch_fails_verify_naming_the_task(tasks_run, build, digits_tasks_csv,
                                                                              tmp_path, capsys):
    """The bundle's view head is edited (its last layer's weights swapped between the two classes) and the
    manifest re-hashed: every file checks out, the main output still agrees, the view task does not."""
    import dataclasses
    import shutil

    import numpy as np
    import onnx
    from onnx import numpy_helper
    from tlc_runtime.integrity import file_entry
    from tlc_runtime.manifest import MANIFEST_NAME, read_manifest

    bundle = tmp_path / "b"
    shutil.copytree(build(tasks_run, "x86-cpu", "fp32"), bundle)
    manifest = read_manifest(bundle)
    artifact = manifest.artifact()
    path = bundle / artifact.files["model"].path
    model = onnx.load(str(path))
    head = [t for t in model.graph.initializer if "view" in t.name and numpy_helper.to_array(t).ndim == 2]
    assert head, [t.name for t in model.graph.initializer]
    weights = numpy_helper.to_array(head[-1])
    flipped = weights[::-1] if weights.shape[0] == 2 else weights[:, ::-1]
    head[-1].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(flipped), head[-1].name))
    onnx.save(model, str(path))
    files = {role: file_entry(bundle, entry.path) for role, entry in artifact.files.items()}
    manifest = dataclasses.replace(manifest, artifacts=(dataclasses.replace(artifact, files=files),))
    (bundle / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    code, out, cases = _verify(bundle, digits_tasks_csv, tmp_path / "v.xml", capsys)
    assert code == 1
    assert "FAIL task view: agreement" in " ".join(out.split())
    assert "task view (task_view): agreement" in out and "OVER BUDGET" in out
    failed = [case.get("name") for case in ET.parse(tmp_path / "v.xml").getroot().iter("testcase")
              if case.find("failure") is not None]
    assert failed and all(name.startswith("task view: ") for name in failed)


def test_qat_rung_is_skipped_for_a_multi_output_graph(tasks_run, tmp_path):
    """QAT distils the logits alone: on a multi-task graph the rung is skipped and said, where it used to
    end the build with torch.fx's error."""
    import dataclasses

    from tlc.bundler.builder import build_bundle
    from tlc.errors import TlcError
    from tlc.targets import load_target

    target = load_target("x86-cpu")
    budget = dataclasses.replace(target.tolerance("int8"), confidence=0.0, min_agreement=0.8,
                                 max_balanced_accuracy_drop=0.2)
    lines = []
    with pytest.raises(TlcError) as refused:
        build_bundle(tasks_run, target, tmp_path / "b", precision="int8", options={"int8_rungs": ["qat"]},
                     tolerance=budget, log=lines.append)
    assert "QAT distils the logits alone" in " ".join(lines) + str(refused.value)
    assert "torch.fx" not in str(refused.value) and not (tmp_path / "b").exists()
