"""--weights: torchvision names (offline, from TORCH_HOME), local files, run directories."""

from __future__ import annotations

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from tlc.errors import WeightsError
from tlc.models import create_model
from tlc.models.checkpoint import save_model
from tlc.models.weights import resolve_weights

RESNET18_FILE = "resnet18-f37072fd.pth"  # the file name in ResNet18_Weights.IMAGENET1K_V1's URL


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return tmp_path / "torch-home" / "hub" / "checkpoints"


def _torchvision_resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(7)
    return torchvision.models.resnet18(weights=None).state_dict()


def _assert_backbone_equals(model, state):
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_missing_torchvision_weights_name_the_exact_path(torch_home):
    with pytest.raises(WeightsError) as err:
        resolve_weights("ResNet18_Weights.IMAGENET1K_V1", "resnet18")
    message = str(err.value)
    assert str(torch_home / RESNET18_FILE) in message and "offline" in message
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message


def test_torchvision_weights_load_from_the_cache_path(torch_home):
    state = _torchvision_resnet18_state()
    torch_home.mkdir(parents=True)
    torch.save(state, torch_home / RESNET18_FILE)
    for spec in ("ResNet18_Weights.IMAGENET1K_V1", "DEFAULT", "IMAGENET1K_V1"):
        source = resolve_weights(spec, "resnet18")
        assert source.kind == "torchvision" and source.path == torch_home / RESNET18_FILE
        assert source.describe() == "torchvision:ResNet18_Weights.IMAGENET1K_V1"
    model = create_model("resnet18", 3, weights="DEFAULT")
    _assert_backbone_equals(model, state)
    assert model.head.fc.out_features == 3


def test_torchvision_weights_of_another_arch_or_unknown_names_are_refused(torch_home):
    with pytest.raises(WeightsError, match="not for resnet18"):
        resolve_weights("MobileNet_V2_Weights.IMAGENET1K_V1", "resnet18")
    with pytest.raises(WeightsError, match="ResNet18_Weights.IMAGENET1K_V1"):
        resolve_weights("IMAGENET1K_V9", "resnet18")
    with pytest.raises(WeightsError, match="weights file not found"):
        resolve_weights("missing/weights.safetensors", "resnet18")


def test_local_safetensors_torchvision_layout_loads(tmp_path):
    state = _torchvision_resnet18_state()
    path = tmp_path / "tv.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    model = create_model("resnet18", 2, weights=path)
    _assert_backbone_equals(model, state)


def test_local_tlc_checkpoint_keeps_its_head_when_the_classes_fit(tmp_path):
    torch.manual_seed(3)
    trained = create_model("resnet18", 4)
    save_model(trained, tmp_path / "tlc.safetensors")
    same = create_model("resnet18", 4, weights=tmp_path / "tlc.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), trained.state_dict().values(), strict=True))
    other = create_model("resnet18", 2, weights=tmp_path / "tlc.safetensors")
    _assert_backbone_equals(other, trained.backbone.state_dict())
    assert other.head.fc.out_features == 2


def test_torch_pickle_file_loads_with_weights_only(tmp_path):
    state = _torchvision_resnet18_state()
    torch.save(state, tmp_path / "w.pth")
    _assert_backbone_equals(create_model("resnet18", 2, weights=tmp_path / "w.pth"), state)
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "module.pt")  # a pickled module, not tensors
    with pytest.raises(WeightsError, match="module.pt"):
        create_model("resnet18", 2, weights=tmp_path / "module.pt")


def test_mismatched_keys_list_a_few_of_them(tmp_path):
    torch.manual_seed(0)
    state = torchvision.models.resnet34(weights=None).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "r34.safetensors"))
    with pytest.raises(WeightsError) as err:
        create_model("resnet18", 2, weights=tmp_path / "r34.safetensors")
    assert "r34.safetensors" in str(err.value) and "unexpected layer1.2." in str(err.value)
    renamed = {k.replace("layer4", "stage4"): v.contiguous() for k, v in _torchvision_resnet18_state().items()}
    save_file(renamed, str(tmp_path / "renamed.safetensors"))
    with pytest.raises(WeightsError, match="missing layer4"):
        create_model("resnet18", 2, weights=tmp_path / "renamed.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="junk.safetensors"):
        create_model("resnet18", 2, weights=tmp_path / "junk.safetensors")


def test_run_directories_are_checked(tmp_path, tiny_run):
    run_dir, _ = tiny_run
    with pytest.raises(WeightsError, match="is a resnet18, not a mobilenet_v2"):
        resolve_weights(str(run_dir), "mobilenet_v2")
    source = resolve_weights(str(run_dir), "resnet18")
    assert source.kind == "run" and source.run is not None and source.pretrained
    (tmp_path / "plain").mkdir()
    with pytest.raises(WeightsError, match="not a tlc run"):
        resolve_weights(str(tmp_path / "plain"), "resnet18")
