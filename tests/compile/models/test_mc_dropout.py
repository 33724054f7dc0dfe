"""McDropoutModel: K fixed-mask dropout passes in one graph, checked against a direct per-sample torch
computation with the same masks, deterministic across runs and backends."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tlc.errors import ConfigError  # noqa: E402
from tlc.models import IMAGENET_MEAN, IMAGENET_STD, DeployModel, create_model  # noqa: E402
from tlc.models.mc_dropout import OUTPUT_NAMES, McDropoutModel  # noqa: E402
from tlc.runs import McDropout  # noqa: E402
from tlc_runtime.manifest import Preprocessing  # noqa: E402

SIZE = 32
PREP = Preprocessing(resize="antialias-bilinear", value_range=(0.0, 255.0), mean=IMAGENET_MEAN,
                     std=IMAGENET_STD, channel_rule="replicate", source_bit_depth=8)


def _deploy(where: str | None, arch: str = "resnet18") -> DeployModel:
    torch.manual_seed(0)
    mc = McDropout(0.3, where) if where else None
    classifier = create_model(arch, 3, mc_dropout=mc)
    with torch.no_grad():  # a head that separates classes, so probabilities are not all uniform
        classifier.head.fc.weight.mul_(8.0)
    return DeployModel(classifier, PREP, input_channels=1).eval()


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, SIZE, SIZE, 1), dtype=np.uint8)


def _direct(wrapper: McDropoutModel, x: torch.Tensor) -> dict[str, np.ndarray]:
    """The definition, one dropout pass at a time on a plain copy of the weights with the wrapper's masks,
    entropies in float64."""
    source = wrapper.model.classifier
    plain = create_model(source.arch, source.num_classes).eval()
    plain.load_state_dict(source.state_dict())
    pixels = wrapper.model.preprocess(x)
    probs = []
    for k in range(wrapper.samples):
        handle = None
        if wrapper.stage is not None:
            mask = wrapper.stage.masks[k]
            handle = plain.last_stage_entry().register_forward_pre_hook(lambda _m, a, m=mask: (a[0] * m,))
        try:
            features = plain.backbone(pixels)
        finally:
            if handle is not None:
                handle.remove()
        logits = plain.head.fc(plain.head.norm(features) * wrapper.head_masks[k])
        probs.append(torch.softmax(logits.double(), -1).numpy())
    p = np.stack(probs)
    mean = p.mean(0)
    total = -(mean * np.log(mean)).sum(-1)
    aleatoric = -(p * np.log(p)).sum(-1).mean(0)
    return {"logits": np.log(mean), "total": total, "aleatoric": aleatoric, "epistemic": total - aleatoric}


@pytest.mark.parametrize("where", ["head", "head+stage"])
def test_outputs_match_a_direct_computation_with_the_same_masks(where, pixels):
    wrapper = McDropoutModel(_deploy(where), samples=6, seed=3, image_size=(SIZE, SIZE))
    x = torch.from_numpy(pixels)
    with torch.no_grad():
        got = {k: v.double().numpy() for k, v in wrapper(x).items()}
        want = _direct(wrapper, x)
    assert list(got) == list(OUTPUT_NAMES)
    assert got["logits"].shape == (5, 3) and got["epistemic"].shape == (5,)
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(np.exp(got["logits"]).sum(-1), 1.0, rtol=1e-5)
    assert (got["epistemic"] >= 0).all() and got["epistemic"].max() > 0, "the masks must make samples differ"


def test_masks_are_seeded_buffers_and_the_source_model_is_untouched(pixels):
    deploy = _deploy("head+stage")
    x = torch.from_numpy(pixels)
    with torch.no_grad():
        before = deploy(x)
        a = McDropoutModel(deploy, samples=4, seed=1, image_size=(SIZE, SIZE))
        b = McDropoutModel(deploy, samples=4, seed=1, image_size=(SIZE, SIZE))
        c = McDropoutModel(deploy, samples=4, seed=2, image_size=(SIZE, SIZE))
        assert torch.equal(deploy(x), before)
        assert {"head_masks", "stage.masks"} <= set(dict(a.named_buffers()))
        assert torch.equal(a.head_masks, b.head_masks) and not torch.equal(a.head_masks, c.head_masks)
        out1, out2 = a(x), a(x)
    for name in OUTPUT_NAMES:
        assert torch.equal(out1[name], out2[name]), name


def _export(wrapper: McDropoutModel, path, example: torch.Tensor) -> None:
    names = list(OUTPUT_NAMES)
    torch.onnx.export(wrapper, (example,), str(path), opset_version=17, dynamo=False, input_names=["pixels"],
                      output_names=names, dynamic_axes={n: {0: "batch"} for n in ["pixels", *names]})


@pytest.mark.parametrize("where", ["head", "head+stage"])
def test_onnx_graph_is_deterministic_matches_torch_and_runs_the_backbone_once(where, pixels, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    deploy = _deploy(where)
    wrapper = McDropoutModel(deploy, samples=8, seed=0, image_size=(SIZE, SIZE)).eval()
    _export(wrapper, tmp_path / "mc.onnx", torch.from_numpy(pixels[:2]))
    torch.onnx.export(deploy, (torch.from_numpy(pixels[:2]),), str(tmp_path / "plain.onnx"), opset_version=17,
                      dynamo=False, input_names=["pixels"], output_names=["logits"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "mc.onnx")).graph.node]
    plain_ops = [n.op_type for n in onnx.load(str(tmp_path / "plain.onnx")).graph.node]
    assert not {"Dropout", "RandomUniform", "RandomUniformLike", "Bernoulli"} & set(ops)
    assert ops.count("Conv") == plain_ops.count("Conv"), "the backbone must run once, not once per sample"
    session = ort.InferenceSession(str(tmp_path / "mc.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == list(OUTPUT_NAMES)
    first = session.run(None, {"pixels": pixels})
    second = session.run(None, {"pixels": pixels})
    with torch.no_grad():
        reference = wrapper(torch.from_numpy(pixels))
    for name, a, b in zip(OUTPUT_NAMES, first, second, strict=True):
        assert np.array_equal(a, b), name
        np.testing.assert_allclose(a, reference[name].numpy(), rtol=1e-3, atol=1e-4, err_msg=name)


def test_a_run_without_mc_dropout_is_refused():
    with pytest.raises(ConfigError, match="--mc-dropout"):
        McDropoutModel(_deploy(None), samples=4)


def test_works_for_a_features_architecture(pixels):
    wrapper = McDropoutModel(_deploy("head+stage", "mobilenet_v3_small"), samples=3, image_size=(SIZE, SIZE))
    with torch.no_grad():
        got = wrapper(torch.from_numpy(pixels))
    assert got["logits"].shape == (5, 3) and got["total"].shape == (5,)
