"""A small real model for the quantization tests: a residual CNN trained briefly on sklearn digits.

Digits (8×8, 0..16) become uint8 grey 32×32 images; the exported ONNX takes raw NHWC uint8
``pixels`` and does tlc's preprocessing in the graph (scale, clip, grey→3 channels, mean/std,
NCHW) before the backbone, like the lead's exporter. Training takes a few seconds on 2 cores.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from tlc.bundler.context import BuildContext
from tlc.runs import DataInfo, RunInfo
from tlc.targets import Tolerance, load_target
from tlc.verify.compare import compare_logits
from tlc_runtime.backends import get_backend
from tlc_runtime.integrity import read_artifact
from tlc_runtime.manifest import Artifact, InputSpec, Preprocessing
from tlc_runtime.preprocess import resize
from torch import nn

SIZE = 16
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    raw = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    images = np.stack([resize(img, SIZE, SIZE) for img in raw])[..., None]
    return images, digits.target.astype(np.int64)


def _block(cin: int, cout: int, stride: int = 1, groups: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU())


class Residual(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.a = _block(ch, ch)
        self.b = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch))

    def forward(self, x):
        return torch.relu(self.b(self.a(x)) + x)


class TinyNet(nn.Module):
    """Conv, strided conv, residual add, depthwise conv, global pool, linear head: 8 quantizable layers."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(_block(3, 16), _block(16, 32, 2), Residual(32), _block(32, 32, 2, groups=32),
                                      _block(32, 48), Residual(48))
        self.fc = nn.Linear(48, classes)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


class DeployModel(nn.Module):
    """Raw uint8 NHWC pixels → logits, preprocessing inside (what tlc exports)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, pixels):
        x = (pixels.float() / 255.0).clamp(0.0, 1.0).permute(0, 3, 1, 2).expand(-1, 3, -1, -1)
        return self.net((x - self.mean) / self.std)


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory):
    """(fp32 onnx path, train images, train labels, eval images, eval labels, reference logits)."""
    from sklearn.model_selection import train_test_split

    images, labels = _digits()
    x_tr, x_ev, y_tr, y_ev = train_test_split(images, labels, test_size=0.25, random_state=0, stratify=labels)
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # fastest and deterministic on a shared 2-core machine
    model = DeployModel(TinyNet())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    epochs, batch = 4, 64
    # One-cycle: the learning rate anneals to ~0, so the final weights do not hinge on the last noisy
    # high-LR step. A constant 1e-2 gave 0.78-0.96 depending on seed and CPU; this gives 0.96-0.99
    # over seeds 0-7 at the same cost.
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=epochs * -(-len(xt) // batch))
    model.train()
    for _epoch in range(epochs):
        perm = torch.randperm(len(xt))
        for start in range(0, len(xt), batch):
            idx = perm[start:start + batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
            sched.step()
    model.eval()
    torch.set_num_threads(threads)
    path = tmp_path_factory.mktemp("digits") / "model.fp32.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (xt[:2],), str(path), input_names=["pixels"], output_names=["logits"],
                          opset_version=17, dynamo=False,
                          dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}})
    with torch.inference_mode():
        ref = model(torch.from_numpy(x_ev)).numpy()
    accuracy = float((ref.argmax(1) == y_ev).mean())
    assert accuracy > 0.85, f"the test model did not train (accuracy {accuracy:.2f})"
    return {"onnx": path, "x_train": x_tr, "y_train": y_tr, "x_eval": x_ev, "y_eval": y_ev, "ref": ref,
            "model": model}


def run_info() -> RunInfo:
    pre = Preprocessing(resize="antialias-bilinear", value_range=(0.0, 255.0), mean=MEAN, std=STD,
                        channel_rule="replicate")
    return RunInfo(schema_version=1, run_id="test-digits", arch="tiny-resnet", class_names=tuple(map(str, range(10))),
                   img_size=SIZE, input_channels=1, input_dtype="uint8", preprocessing=pre,
                   data=DataInfo(source="sklearn-digits", kind="digits", content_hash="0" * 64,
                                 split_sizes={"train": 1347, "test": 450}),
                   weights_init="random", seed=0)


INPUT_SPEC = InputSpec(name="pixels", height=SIZE, width=SIZE, channels=1, dtype="uint8")


def make_evaluate(staging: Path, x_eval: np.ndarray, y_eval: np.ndarray, ref: np.ndarray, seen: list | None = None):
    """ctx.evaluate: run the candidate through tlc_runtime's backend, compare with the reference logits."""

    def evaluate(artifact: Artifact):
        session = get_backend(artifact.backend).open(artifact, read_artifact(staging, artifact), INPUT_SPEC,
                                                     device="auto")
        logits = session.infer(x_eval)
        if seen is not None:
            seen.append((artifact, session.info))
        return compare_logits(ref, logits, y_eval, num_classes=ref.shape[1], bootstrap=100)

    return evaluate


@pytest.fixture
def make_ctx(digits_model, tmp_path, small_eval_budget):
    """Factory: BuildContext for (target, precision, tolerance, calibration, options)."""

    def factory(target: str = "x86-cpu", precision: str = "int8", tolerance: Tolerance | None = None,
                calibration: np.ndarray | None = None, options: dict | None = None, seen: list | None = None,
                n_calib: int = 128, train: bool = False):
        """``train``: also give the PyTorch model and the training split (the ladder's QAT rung)."""
        t = load_target(target)
        staging = tmp_path / "bundle"
        staging.mkdir(exist_ok=True)
        calib = digits_model["x_train"][:n_calib] if calibration is None else calibration
        return BuildContext(target=t, precision=precision, run=run_info(), input_spec=INPUT_SPEC,
                            fp32_onnx=digits_model["onnx"], staging=staging, calibration=calib,
                            evaluate=make_evaluate(staging, digits_model["x_eval"], digits_model["y_eval"],
                                                   digits_model["ref"], seen),
                            tolerance=tolerance or small_eval_budget(t.tolerance(precision)), log=lambda _msg: None,
                            options=dict(options or {}), model=digits_model["model"] if train else None,
                            train_split=(lambda: (digits_model["x_train"], digits_model["y_train"])) if train else None)

    return factory


@pytest.fixture
def evaluator_factory():
    """make_evaluate as a fixture: (staging, x, y, reference logits[, seen]) → ctx.evaluate-like callable."""
    return make_evaluate
