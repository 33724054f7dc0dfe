"""The learned channel adapter: part of the Classifier, identical to replication at start, exported in the graph."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tlc.errors import ConfigError  # noqa: E402
from tlc.models import IMAGENET_MEAN, IMAGENET_STD, DeployModel, create_model  # noqa: E402
from tlc_runtime.manifest import Preprocessing  # noqa: E402

PREP = Preprocessing(resize="antialias-bilinear", value_range=(0.0, 255.0), mean=IMAGENET_MEAN,
                     std=IMAGENET_STD, channel_rule="replicate")


def _pair():
    """(replicate classifier, learned classifier with the same backbone and head), eval mode."""
    torch.manual_seed(0)
    plain = create_model("resnet18", 2).eval()
    learned = create_model("resnet18", 2, channel_adapter="learned").eval()
    learned.load_state_dict(plain.state_dict(), strict=False)
    return plain, learned


def test_learned_adapter_is_in_the_state_dict_and_starts_as_replication():
    plain, learned = _pair()
    assert {"adapter.weight", "adapter.bias"} <= set(learned.state_dict())
    assert not any(k.startswith("adapter.") for k in plain.state_dict())
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 16, 16, 1), dtype=np.uint8))
    with torch.no_grad():
        want = DeployModel(plain, PREP, 1)(x)
        got = DeployModel(learned, PREP, 1)(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_learned_adapter_is_exported_and_onnxruntime_equals_torch(tmp_path):
    pytest.importorskip("onnxruntime")
    from tlc.export.onnx_export import export_onnx, input_spec_for, reference_logits

    plain, learned = _pair()
    with torch.no_grad():
        learned.adapter.weight.add_(0.3 * torch.randn_like(learned.adapter.weight))
    x = np.random.default_rng(1).integers(0, 256, (6, 16, 16, 1), dtype=np.uint8)
    model = DeployModel(learned, PREP, 1).eval()
    assert not np.allclose(reference_logits(model, x), reference_logits(DeployModel(plain, PREP, 1).eval(), x))
    report = export_onnx(model, input_spec_for(16, 16, 1, "uint8"), tmp_path / "m.onnx", x)
    assert report.max_abs_logit_delta < 1e-4


def test_unknown_channel_adapter_is_a_config_error():
    with pytest.raises(ConfigError, match="channel_adapter"):
        create_model("resnet18", 2, channel_adapter="magic")
