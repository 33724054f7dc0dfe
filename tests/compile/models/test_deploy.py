"""DeployModel: raw NHWC pixels in, preprocessing inside the graph, logits out."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tlc.errors import ConfigError  # noqa: E402
from tlc.models import IMAGENET_MEAN, IMAGENET_STD, DeployModel, create_model  # noqa: E402
from tlc_runtime.manifest import Preprocessing  # noqa: E402


def _prep(value_range=(0.0, 255.0), channel_rule="replicate", bit_depth=8) -> Preprocessing:
    return Preprocessing(resize="antialias-bilinear", value_range=value_range, mean=IMAGENET_MEAN,
                         std=IMAGENET_STD, channel_rule=channel_rule, source_bit_depth=bit_depth)


def _manual(x: np.ndarray, lo: float, hi: float) -> torch.Tensor:
    """The manifest's preprocessing written out in numpy, independent of tlc's module."""
    x = np.clip((x.astype(np.float64) - lo) / (hi - lo), 0.0, 1.0)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    x = (x - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    return torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32))


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return create_model("resnet18", 3).eval()


def test_uint8_rgb_input_matches_manual_preprocessing(classifier):
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    model = DeployModel(classifier, _prep(channel_rule="rgb"), input_channels=3).eval()
    with torch.no_grad():
        got = model(torch.from_numpy(x))
        want = classifier(_manual(x, 0, 255))
    assert got.shape == (2, 3)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_grey_input_is_replicated_to_three_channels(classifier):
    grey = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    grey_model = DeployModel(classifier, _prep(), input_channels=1).eval()
    rgb_model = DeployModel(classifier, _prep(channel_rule="rgb"), input_channels=3).eval()
    with torch.no_grad():
        from_grey = grey_model(torch.from_numpy(grey))
        from_rgb = rgb_model(torch.from_numpy(np.repeat(grey, 3, axis=-1)))
        manual = classifier(_manual(grey, 0, 255))
    torch.testing.assert_close(from_grey, from_rgb, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(from_grey, manual, rtol=1e-4, atol=1e-4)


def test_16bit_float_input_uses_the_value_range_and_clamps(classifier):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 4096, (2, 32, 32, 1)).astype(np.float32)
    x[0, 0, :4, 0] = [5000.0, -20.0, 4095.0, 0.0]  # out-of-range values clamp to 0..1
    model = DeployModel(classifier, _prep(value_range=(0.0, 4095.0), bit_depth=12), input_channels=1).eval()
    with torch.no_grad():
        got = model(torch.from_numpy(x))
        want = classifier(_manual(x, 0, 4095))
        unit = model.preprocess.to_unit(torch.from_numpy(x))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert unit.shape == (2, 1, 32, 32) and float(unit.min()) == 0.0 and float(unit.max()) == 1.0
    assert float(unit[0, 0, 0, 0]) == 1.0 and float(unit[0, 0, 0, 1]) == 0.0


def test_preprocessing_that_does_not_fit_the_input_is_refused(classifier):
    with pytest.raises(ConfigError, match="channel_rule 'replicate' needs 1-channel"):
        DeployModel(classifier, _prep(), input_channels=3)
    with pytest.raises(ConfigError, match="value_range"):
        DeployModel(classifier, _prep(value_range=(10.0, 10.0)), input_channels=1)
