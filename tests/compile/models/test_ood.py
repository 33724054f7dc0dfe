"""OodScored: energy and Mahalanobis scores inside the deploy graph, checked against numpy."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tlc.models import IMAGENET_MEAN, IMAGENET_STD, DeployModel, create_model  # noqa: E402
from tlc.models.calibrated import TemperatureScaled  # noqa: E402
from tlc.models.ood import OUTPUTS, OodScored, pooled_features  # noqa: E402
from tlc_runtime.manifest import Preprocessing  # noqa: E402


def _deploy(num_classes: int) -> DeployModel:
    torch.manual_seed(0)
    prep = Preprocessing(resize="antialias-bilinear", value_range=(0.0, 255.0), mean=IMAGENET_MEAN,
                         std=IMAGENET_STD, channel_rule="replicate")
    return DeployModel(create_model("resnet18", num_classes), prep, input_channels=1).eval()


def _rule(dim: int, num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim))
    return rng.normal(size=(num_classes, dim)), a @ a.T / dim + np.eye(dim)


def _pixels(n: int = 5, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 1), dtype=np.uint8)


def test_scores_match_numpy_on_calibrated_logits():
    deploy = _deploy(3)
    means, precision = _rule(deploy.classifier.num_features, 3)
    model = OodScored(TemperatureScaled(deploy, 1.7), means, precision, weights=(0.5, 2.0)).eval()
    x = torch.from_numpy(_pixels())
    with torch.no_grad():
        out = model(x)
        feats = pooled_features(deploy, x).double().numpy()
        logits = deploy(x).double().numpy() / 1.7
    assert list(out) == list(OUTPUTS)
    top = logits.max(axis=1)
    energy = -(top + np.log(np.exp(logits - top[:, None]).sum(axis=1)))
    maha = np.array([min((f - m) @ precision @ (f - m) for m in means) for f in feats])
    np.testing.assert_allclose(out["logits"].numpy(), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["energy"].numpy(), energy, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["mahalanobis"].numpy(), maha, rtol=1e-4)
    np.testing.assert_allclose(out["ood_score"].numpy(), 0.5 * energy + 2.0 * maha, rtol=1e-4)


def test_plain_deploy_model_keeps_its_logits():
    deploy = _deploy(2)
    means, precision = _rule(deploy.classifier.num_features, 2)
    x = torch.from_numpy(_pixels())
    with torch.no_grad():
        got = OodScored(deploy, means, precision, weights=(1.0, 0.0)).eval()(x)
        torch.testing.assert_close(got["logits"], deploy(x))
        torch.testing.assert_close(got["ood_score"], got["energy"])


@pytest.mark.parametrize("num_classes", [2, 5])
def test_onnx_graph_has_named_outputs_and_no_per_class_loop(tmp_path, num_classes):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    deploy = _deploy(num_classes)
    means, precision = _rule(deploy.classifier.num_features, num_classes)
    model = OodScored(deploy, means, precision, weights=(1.0, 1.0)).eval()
    x = _pixels(4)
    path = tmp_path / "ood.onnx"
    torch.onnx.export(model, (torch.from_numpy(x[:2]),), str(path), opset_version=17, dynamo=False,
                      input_names=["pixels"], output_names=list(OUTPUTS),
                      dynamic_axes={"pixels": {0: "batch"}, **{o: {0: "batch"} for o in OUTPUTS}})
    graph = onnx.load(str(path)).graph
    assert [o.name for o in graph.output] == list(OUTPUTS)
    # one MatMul by the precision matrix whatever the number of classes (and none for the head's Gemm)
    assert sum(n.op_type == "MatMul" for n in graph.node) == 1
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"pixels": x})
    with torch.no_grad():
        want = model(torch.from_numpy(x))
    for name, value in zip(OUTPUTS, got, strict=True):
        np.testing.assert_allclose(value, want[name].numpy(), rtol=1e-4, atol=1e-4)


def test_openvino_keeps_the_batch_axis_of_every_score(tmp_path):
    ov = pytest.importorskip("openvino")
    deploy = _deploy(2)
    means, precision = _rule(deploy.classifier.num_features, 2)
    model = OodScored(deploy, means, precision, weights=(1.0, 1.0)).eval()
    x = _pixels(3)
    path = tmp_path / "ood.onnx"
    torch.onnx.export(model, (torch.from_numpy(x[:2]),), str(path), opset_version=17, dynamo=False,
                      input_names=["pixels"], output_names=list(OUTPUTS),
                      dynamic_axes={"pixels": {0: "batch"}, **{o: {0: "batch"} for o in OUTPUTS}})
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(x)
    with torch.no_grad():
        want = model(torch.from_numpy(x))
    for port in compiled.outputs:
        name = next(iter(port.get_names() & set(OUTPUTS)))
        np.testing.assert_allclose(np.asarray(result[port]), want[name].numpy(), rtol=1e-4, atol=1e-4)


def test_an_mc_dropout_model_is_scored_on_its_deterministic_head():
    """An MC model's logits are log mean probabilities (logsumexp 0): its energy is that of the plain
    head's logits, and its MC outputs pass through unchanged."""
    import torch
    from tlc.models import IMAGENET_MEAN, IMAGENET_STD, DeployModel, create_model
    from tlc.models.mc_dropout import McDropoutModel
    from tlc.models.ood import OodScored
    from tlc.runs import McDropout
    from tlc_runtime.manifest import Preprocessing

    torch.manual_seed(0)
    prep = Preprocessing(resize="area-antialias-bilinear", value_range=(0.0, 255.0), mean=IMAGENET_MEAN,
                         std=IMAGENET_STD, channel_rule="replicate")
    deploy = DeployModel(create_model("resnet18", 3, mc_dropout=McDropout(0.3, "head")), prep, 1).eval()
    mc = McDropoutModel(deploy, samples=4, seed=1, image_size=(16, 16))
    d = 512
    scored = OodScored(mc, np.zeros((3, d)), np.eye(d), (1.0, 0.0)).eval()
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (6, 16, 16, 1), dtype=np.uint8))
    with torch.no_grad():
        out = scored(x)
        plain = deploy(x)
        mc_out = mc(x)
    assert list(out) == ["logits", "total", "aleatoric", "epistemic", "energy", "mahalanobis", "ood_score"]
    np.testing.assert_allclose(out["energy"], -torch.logsumexp(plain, dim=1), rtol=1e-5, atol=1e-5)
    assert out["energy"].std() > 1e-3  # not the constant logsumexp of log mean probabilities
    for name in ("logits", "total", "aleatoric", "epistemic"):
        np.testing.assert_allclose(out[name], mc_out[name], rtol=1e-5, atol=1e-6)
