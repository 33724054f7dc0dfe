"""The model registry: every architecture builds, runs and shares one head API."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from tlc.errors import ConfigError  # noqa: E402
from tlc.models import Classifier, create_model, get_arch, list_models  # noqa: E402

ARCHS = list_models()
BIG = {"resnet50", "vgg16", "vgg19", "efficientnet_b0"}  # seconds each to build on 2 shared cores
ARCH_PARAMS = [pytest.param(a, marks=pytest.mark.slow) if a in BIG else a for a in ARCHS]


def test_registry_lists_the_torchvision_families():
    assert {"resnet18", "resnet34", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
            "vgg16", "vgg19", "efficientnet_b0"} <= set(ARCHS)


@pytest.mark.parametrize("arch", ARCH_PARAMS)
def test_every_arch_builds_runs_and_resets_its_head(arch):
    torch.manual_seed(0)
    model = create_model(arch, 4).eval()
    assert isinstance(model, Classifier)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
        features = model.forward_features(x)
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()
    assert features.shape == (2, model.num_features)
    assert torch.allclose(model.forward_head(features), logits)

    model.reset_classifier(7)
    with torch.no_grad():
        assert model(x).shape == (2, 7)
    assert model.num_classes == 7

    backbone_ids = {id(p) for p in model.backbone_parameters()}
    head_ids = {id(p) for p in model.head_parameters()}
    assert backbone_ids.isdisjoint(head_ids)
    assert backbone_ids | head_ids == {id(p) for p in model.parameters()}
    stage_ids = [{id(p) for p in stage.parameters()} for stage in model.backbone_stages()]
    assert len(stage_ids) >= 4 and all(stage_ids)
    assert set().union(*stage_ids) == backbone_ids, "stages must cover the whole backbone"
    assert all(keys.isdisjoint(other) for i, keys in enumerate(stage_ids) for other in stage_ids[i + 1:])


@pytest.mark.parametrize("arch", [a for a in ARCHS if get_arch(a).torchvision_name])
def test_backbone_keeps_torchvision_state_dict_keys(arch):
    spec = get_arch(arch)
    with torch.device("meta"):  # keys and shapes only: skip the (slow) weight initialisation
        reference = getattr(torchvision.models, spec.torchvision_name)(weights=None).state_dict()
        ours = create_model(arch, 3).state_dict()
    expected = {f"backbone.{k}" for k in reference if not k.startswith(spec.head_prefix + ".")}
    assert {k for k in ours if k.startswith("backbone.")} == expected
    assert {k for k in ours if not k.startswith("backbone.")} == {
        "head.fc.weight", "head.fc.bias", "head.norm.running_mean", "head.norm.running_var",
        "head.norm.num_batches_tracked"}


def test_torchvision_weights_give_torchvision_features():
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None).eval()
    model = create_model("resnet18", 2).eval()
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    assert model.load_backbone_state(state) == ([], [])
    reference.fc = torch.nn.Identity()
    x = torch.randn(2, 3, 40, 40)
    with torch.no_grad():
        assert torch.equal(model.forward_features(x), reference(x))


def test_unknown_arch_lists_the_valid_names():
    with pytest.raises(ConfigError) as err:
        create_model("resnet19", 2)
    message = str(err.value)
    assert "resnet19" in message and all(name in message for name in ARCHS)


def test_mismatched_backbone_state_is_reported_and_not_loaded():
    model = create_model("resnet18", 2)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    state = dict(create_model("resnet34", 2).backbone.state_dict())
    missing, unexpected = model.load_backbone_state(state)
    assert unexpected and any("layer1.2" in k for k in unexpected)
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in before.items())
    assert missing == []


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3_small", "vgg16"])
def test_stages_run_in_sequence_to_the_pooled_features(arch):
    torch.manual_seed(0)
    model = create_model(arch, 2).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        h = x
        for stage in model.backbone_stages():
            h = stage(h)
        assert torch.allclose(h.mean(dim=(2, 3)), model.forward_features(x), atol=1e-5)


def test_small_cnn_is_registered_under_both_spellings_and_has_no_torchvision_weights(tmp_path):
    from tlc.errors import WeightsError
    from tlc.models.weights import resolve_weights

    assert get_arch("small-cnn") is get_arch("small_cnn") and get_arch("small_cnn").torchvision_name is None
    model = create_model("small-cnn", 2)
    assert 0.5e6 < sum(p.numel() for p in model.parameters()) < 2e6  # small next to resnet18's 11 M
    with pytest.raises(WeightsError, match="small_cnn has no torchvision weights"):
        resolve_weights("DEFAULT", "small_cnn")


def test_small_cnn_learns_and_exports(tmp_path):
    """A few Adam steps on two separable patterns fit them, and the ONNX graph equals torch."""
    import numpy as np
    from tlc.export.onnx_export import export_onnx, input_spec_for
    from tlc.models.deploy import IMAGENET_MEAN, IMAGENET_STD, DeployModel
    from tlc_runtime.manifest import Preprocessing

    torch.manual_seed(0)
    model = create_model("small_cnn", 2)
    x = torch.zeros(16, 3, 16, 16)
    x[8:, :, :8] = 1.0
    y = torch.tensor([0] * 8 + [1] * 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).all()
    prep = Preprocessing(resize="area-antialias-bilinear", value_range=(0.0, 255.0), mean=IMAGENET_MEAN,
                         std=IMAGENET_STD, channel_rule="replicate")
    pixels = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 1), dtype=np.uint8)
    report = export_onnx(DeployModel(model, prep, 1).eval(), input_spec_for(16, 16, 1, "uint8"),
                         tmp_path / "m.onnx", pixels)
    assert report.max_abs_logit_delta < 1e-3
