"""``tlc.models.ops``: values equal to torch's, and an export every backend converts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tlc.models.ops import logsumexp


class LogMeanExp(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # M×N×K → N×K
        return logsumexp(x, dim=0) - np.log(x.shape[0])


def test_logsumexp_equals_torchs_and_is_stable():
    x = torch.randn(3, 5, 4, dtype=torch.float64) * 50
    for dim in (0, 1, 2):
        torch.testing.assert_close(logsumexp(x, dim), torch.logsumexp(x, dim))
    big = torch.tensor([[1000.0, 1000.0]])
    assert torch.isfinite(logsumexp(big, 1)).all()
    torch.testing.assert_close(logsumexp(big, 1), torch.tensor([1000.0 + np.log(2.0)], dtype=torch.float32))


@pytest.mark.openvino
def test_its_export_keeps_the_batch_axis_in_openvino(tmp_path):
    ov = pytest.importorskip("openvino")
    x = torch.randn(3, 2, 4)
    path = tmp_path / "m.onnx"
    torch.onnx.export(LogMeanExp(), (x,), str(path), input_names=["x"], output_names=["y"], opset_version=17,
                      dynamic_axes={"x": {1: "n"}, "y": {0: "n"}}, dynamo=False)
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled(x.numpy())[0]
    np.testing.assert_allclose(got, LogMeanExp()(x).numpy(), rtol=1e-5, atol=1e-5)
