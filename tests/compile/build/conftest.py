from __future__ import annotations

import numpy as np
import pytest
from tlc_runtime.integrity import file_entry
from tlc_runtime.manifest import (
    SCHEMA_VERSION,
    Artifact,
    GoldenSet,
    InputSpec,
    Manifest,
    OutputSpec,
    Preprocessing,
    TargetInfo,
)


@pytest.fixture
def tiny_manifest():
    """A manifest over placeholder files written into a directory (enough for the writer's checks)."""

    def make(directory) -> Manifest:
        (directory / "model.onnx").write_bytes(b"not really onnx")
        np.savez(directory / "golden.npz", inputs=np.zeros((1, 8, 8, 1), np.uint8), logits=np.zeros((1, 2), np.float32))
        return Manifest(
            schema_version=SCHEMA_VERSION, model_name="m", arch="resnet18", class_names=("a", "b"),
            input=InputSpec(name="pixels", height=8, width=8, channels=1, dtype="uint8"),
            preprocessing=Preprocessing(resize="antialias-bilinear", value_range=(0.0, 255.0),
                                        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), channel_rule="replicate"),
            output=OutputSpec(),
            artifacts=(Artifact(name="onnx-fp32", format="onnx", backend="onnxruntime", precision="fp32",
                                files={"model": file_entry(directory, "model.onnx")}),),
            default_artifact="onnx-fp32",
            target=TargetInfo(name="x86-cpu", backend="onnxruntime", device="cpu", precision="fp32"),
            golden=GoldenSet(file=file_entry(directory, "golden.npz"), count=1, atol_prob=1e-4))

    return make
