"""A tiny but real classifier for the TensorRT/FP16 tests: a small CNN trained briefly on sklearn digits,
exported like tlc's FP32 ONNX (input ``pixels`` NHWC uint8 with dynamic batch, preprocessing ops first,
output ``logits``). Shared by tests/compile/tensorrt and tests/compile/quantize/test_fp16.py (loaded by path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tlc.runs import DataInfo, RunInfo
from tlc_runtime.manifest import InputSpec, Preprocessing

SIZE = 16
MEAN, STD = 0.2, 0.3


def input_spec() -> InputSpec:
    return InputSpec(name="pixels", height=SIZE, width=SIZE, channels=1, dtype="uint8")


def run_info() -> RunInfo:
    """The run.json contents a build of the tiny model would see."""
    prep = Preprocessing(resize="antialias-bilinear", value_range=(0.0, 255.0), mean=(MEAN,) * 3,
                         std=(STD,) * 3, channel_rule="replicate")
    return RunInfo(schema_version=1, run_id="tiny", arch="tiny-cnn", class_names=tuple(map(str, range(10))),
                   img_size=SIZE, input_channels=1, input_dtype="uint8", preprocessing=prep,
                   data=DataInfo(source="sklearn digits", kind="digits", content_hash="0" * 64,
                                 split_sizes={"test": 397}),
                   weights_init="random", seed=0)


def digits_uint8() -> tuple[np.ndarray, np.ndarray]:
    """sklearn digits as N×16×16×1 uint8 (8×8 upscaled by 2, 0..16 mapped to 0..240) and labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.kron(data.images, np.ones((2, 2))) * 15.0
    return images.astype(np.uint8)[..., None], data.target.astype(np.int64)


def build_tiny_onnx(path: Path, steps: int = 300, seed: int = 0) -> tuple[Path, np.ndarray, np.ndarray]:
    """Train the tiny CNN (a second or two on CPU) and export it; returns (path, test images, labels)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    images, labels = digits_uint8()
    order = np.random.default_rng(seed).permutation(len(images))
    train, test = order[:1400], order[1400:]

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Linear(16, 10)

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            x = pixels.float() / 255.0
            x = (x - MEAN) / STD
            x = x.permute(0, 3, 1, 2).expand(-1, 3, -1, -1)
            return self.head(self.features(x))

    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    x_all, y_all = torch.from_numpy(images[train]), torch.from_numpy(labels[train])
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(train), (128,), generator=gen)
        loss = nn.functional.cross_entropy(model(x_all[idx]), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    example = torch.from_numpy(images[test[:2]])
    torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=17,
                      input_names=["pixels"], output_names=["logits"],
                      dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}})
    return path, images[test], labels[test]


def run_onnx(path: Path, batch: np.ndarray) -> np.ndarray:
    """Logits of an ONNX model on ONNX Runtime's CPU provider (one thread)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {sess.get_inputs()[0].name: batch})[0]
