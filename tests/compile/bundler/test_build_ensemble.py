"""``tlc build`` of an ensemble run: one graph, verified like any model, FP32 and INT8, shown by inspect."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


def _quiet(message: str) -> None:
    pass


def test_fp32_build_is_one_graph_equal_to_the_torch_ensemble(ensemble_run, tmp_path, capsys):
    import onnx
    import tlc_runtime
    from tlc.bundler.builder import build_bundle
    from tlc.cli.main import run
    from tlc.models.checkpoint import load_deploy_model
    from tlc.runs import read_run_info

    result = build_bundle(ensemble_run, "x86-cpu", tmp_path / "b", log=_quiet)
    assert result.manifest.arch == "ensemble"
    assert [m["arch"] for m in result.manifest.provenance["ensemble_members"]] == ["resnet18", "resnet18"]
    graph = onnx.load(str(tmp_path / "b" / "model.fp32.onnx")).graph
    assert [i.name for i in graph.input] == ["pixels"] and graph.output[0].name == "logits"
    model, _ = load_deploy_model(ensemble_run)
    x = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 1), dtype=np.uint8)
    temperature = result.manifest.calibration.temperature if result.manifest.calibration else 1.0
    with torch.no_grad():
        want = torch.softmax(model(torch.from_numpy(x))["logits"] / temperature, 1).numpy()
    got = torch.softmax(torch.from_numpy(tlc_runtime.load(tmp_path / "b").predict_logits(x)), 1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert result.manifest.extra_outputs == ("disagreement", "member_logits")
    assert set(result.manifest.golden.atol_outputs) == {"disagreement", "member_logits"}
    clf = tlc_runtime.load(tmp_path / "b", check=True)
    outputs = clf.predict_outputs(x)
    assert outputs["member_logits"].shape == (3, 4) and outputs["disagreement"].shape == (3,)
    members = result.report["members"]
    assert [m["run_id"] for m in members] == [m.run_id for m in read_run_info(ensemble_run).members]
    assert all(m["agreement"] == 1.0 and m["max_abs_prob_delta"] < 1e-4 for m in members)
    assert run(["inspect", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "ensemble of 2 members" in out and "resnet18" in out
