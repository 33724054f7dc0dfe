"""The ONNX export writes one self-contained file: the runtime refuses external data (issue #9, item 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tlc.export import onnx_export
from tlc_runtime.onnx_external import check_no_external_data

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")


class _Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(16, 3)

    def forward(self, pixels):
        return self.fc(pixels.float().flatten(1))


@pytest.mark.slow
def test_dynamo_fallback_writes_no_external_data(tmp_path: Path, monkeypatch) -> None:
    """Where the TorchScript exporter is gone, the dynamo exporter must still embed the weights."""
    real = torch.onnx.export

    def without_torchscript(*args, dynamo=True, **kwargs):
        if not dynamo:
            raise TypeError("no legacy exporter")
        return real(*args, dynamo=dynamo, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", without_torchscript)
    example = torch.from_numpy(np.arange(2 * 16, dtype=np.uint8).reshape(2, 4, 4, 1))
    path = tmp_path / "model.onnx"
    assert onnx_export._export(_Linear().eval(), example, path) == "dynamo"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    check_no_external_data(path.read_bytes(), "onnx-fp32", path.name)


def test_export_writes_class_names_and_preprocessing_as_metadata(tmp_path: Path) -> None:
    """Issue #10 item 4: the exported ONNX is self-describing outside tlc."""
    import json

    import onnx
    from tlc_runtime.manifest import Preprocessing

    spec = onnx_export.input_spec_for(4, 4, 1, "uint8")
    prep = Preprocessing(resize="antialias-bilinear", value_range=(0.0, 255.0), mean=(0.485, 0.456, 0.406),
                         std=(0.229, 0.224, 0.225), channel_rule="replicate")
    metadata = onnx_export.onnx_metadata(("normal", "pneumonia", "other"), spec, prep)
    inputs = np.arange(4 * 16, dtype=np.uint8).reshape(4, 4, 4, 1)
    path = tmp_path / "model.onnx"
    onnx_export.export_onnx(_Linear(), spec, path, inputs, metadata=metadata)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["class_names"]) == ["normal", "pneumonia", "other"]
    summary = json.loads(props["preprocessing"])
    assert summary["value_range"] == [0.0, 255.0] and summary["channel_rule"] == "replicate"
    assert summary["mean"] == [0.485, 0.456, 0.406] and summary["std"] == [0.229, 0.224, 0.225]
    assert json.loads(props["input"]) == {"name": "pixels", "layout": "NHWC", "height": 4, "width": 4,
                                          "channels": 1, "dtype": "uint8"}
