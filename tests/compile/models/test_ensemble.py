"""EnsembleModel: members side by side on the same raw pixels, each with its own preprocessing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tlc.models import IMAGENET_MEAN, IMAGENET_STD, DeployModel, create_model  # noqa: E402
from tlc.models.ensemble import EnsembleModel  # noqa: E402
from tlc_runtime.manifest import Preprocessing  # noqa: E402

PREP = Preprocessing(resize="antialias-bilinear", value_range=(0.0, 255.0), mean=IMAGENET_MEAN,
                     std=IMAGENET_STD, channel_rule="replicate")


@pytest.fixture(scope="module")
def members():
    """Two different architectures with different standardisation, eval mode."""
    torch.manual_seed(0)
    other = dataclasses.replace(PREP, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    return [DeployModel(create_model("resnet18", 3), PREP, 1).eval(),
            DeployModel(create_model("mobilenet_v3_small", 3), other, 1).eval()]


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).integers(0, 256, (5, 32, 32, 1), dtype=np.uint8)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(p)).sum(axis=1)


def test_outputs_are_log_mean_probability_mutual_information_and_member_logits(members, pixels):
    x = torch.from_numpy(pixels)
    with torch.no_grad():
        own = [m(x).double().numpy() for m in members]
        out = EnsembleModel(members, extras=True).eval()(x)
    assert list(out) == ["logits", "disagreement", "member_logits"]
    probs = [_softmax(z) for z in own]
    mean = np.mean(probs, axis=0)
    np.testing.assert_allclose(out["logits"].numpy(), np.log(mean), rtol=1e-4, atol=1e-5)
    information = _entropy(mean) - np.mean([_entropy(p) for p in probs], axis=0)
    np.testing.assert_allclose(out["disagreement"].numpy(), information, rtol=1e-3, atol=1e-6)
    assert out["disagreement"].shape == (5,)
    np.testing.assert_allclose(out["member_logits"].numpy(), np.concatenate(own, axis=1), rtol=1e-5, atol=1e-5)


def test_identical_members_do_not_disagree(members, pixels):
    with torch.no_grad():
        out = EnsembleModel([members[0], members[0]], extras=True).eval()(torch.from_numpy(pixels))
    np.testing.assert_allclose(out["disagreement"].numpy(), 0.0, atol=1e-5)


def test_one_graph_export_equals_torch(members, pixels, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx
    from tlc.export.onnx_export import export_onnx, input_spec_for

    model = EnsembleModel(members).eval()
    report = export_onnx(model, input_spec_for(32, 32, 1, "uint8"), tmp_path / "e.onnx", pixels)
    assert report.max_abs_logit_delta < 1e-4
    graph = onnx.load(str(tmp_path / "e.onnx")).graph
    assert [i.name for i in graph.input] == ["pixels"]
    assert graph.output[0].name == "logits"


def test_every_output_exports_to_one_onnx_graph(members, pixels, tmp_path):
    """What the multi-output contract will export: the three outputs by name, dynamic batch, equal to torch."""
    ort = pytest.importorskip("onnxruntime")
    from tlc.models.ensemble import OUTPUTS

    model = EnsembleModel(members, extras=True).eval()
    path = tmp_path / "e3.onnx"
    torch.onnx.export(model, (torch.from_numpy(pixels[:2]),), str(path), opset_version=17, dynamo=False,
                      input_names=["pixels"], output_names=list(OUTPUTS),
                      dynamic_axes={name: {0: "batch"} for name in ("pixels", *OUTPUTS)})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == list(OUTPUTS)
    got = dict(zip(OUTPUTS, session.run(None, {"pixels": pixels}), strict=True))
    with torch.no_grad():
        want = model(torch.from_numpy(pixels))
    for name in OUTPUTS:
        np.testing.assert_allclose(got[name], want[name].numpy(), rtol=1e-4, atol=1e-4)
    assert got["member_logits"].shape == (5, 6) and got["disagreement"].shape == (5,)
