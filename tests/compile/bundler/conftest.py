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
            outputs=(OutputSpec(),),
            artifacts=(Artifact(name="onnx-fp32", format="onnx", backend="onnxruntime", precision="fp32",
                                files={"model": file_entry(directory, "model.onnx")}),),
            default_artifact="onnx-fp32",
            target=TargetInfo(name="x86-cpu", backend="onnxruntime", device="cpu", precision="fp32"),
            golden=GoldenSet(file=file_entry(directory, "golden.npz"), count=1, atol_prob=1e-4))

    return make


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory):
    """A one-epoch resnet18 run at 16 px on sklearn digits 0 and 1, trained from an .npz file so that
    ``tlc build`` finds its data through run.json (a few seconds on 2 CPU cores)."""
    from sklearn.datasets import load_digits
    from tlc.train import TrainConfig, train

    digits = load_digits(n_class=2)
    images = np.rint(digits.images * 255 / 16).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    root = tmp_path_factory.mktemp("tiny")
    np.savez(root / "digits01.npz", train_images=images[:200], train_labels=labels[:200],
             val_images=images[200:280], val_labels=labels[200:280],
             test_images=images[280:], test_labels=labels[280:])
    config = TrainConfig(arch="resnet18", img_size=16, epochs=1, batch_size=16, limit_train=80, patience=None)
    train(root / "digits01.npz", root / "run", config, progress=False)
    return root / "run"


@pytest.fixture(scope="session")
def ten_class_run(tmp_path_factory):
    """One epoch on 160 images of all ten digits at 16 px: far from perfect on validation, so the
    temperature has an interior optimum (ten_class_run's digits 0 and 1 are separated with a margin)."""
    from sklearn.datasets import load_digits
    from tlc.train import TrainConfig, train

    digits = load_digits()
    images = np.rint(digits.images * 255 / 16).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    root = tmp_path_factory.mktemp("ten")
    np.savez(root / "digits.npz", train_images=images[:600], train_labels=labels[:600],
             val_images=images[600:900], val_labels=labels[600:900],
             test_images=images[900:1200], test_labels=labels[900:1200])
    config = TrainConfig(arch="resnet18", img_size=16, epochs=1, batch_size=16, limit_train=160, patience=None)
    train(root / "digits.npz", root / "run", config, progress=False)
    return root / "run"


@pytest.fixture(scope="session")
def ensemble_run(tiny_run_dir, tmp_path_factory):
    """tiny_run_dir and a second member (another seed, same data file) combined into an ensemble run."""
    from tlc.runs import read_run_info
    from tlc.train import TrainConfig, train
    from tlc.train.ensemble import combine_runs

    root = tmp_path_factory.mktemp("ens")
    config = TrainConfig.from_dict({**read_run_info(tiny_run_dir).config, "seed": 1})
    train(tiny_run_dir.parent / "digits01.npz", root / "second", config, progress=False)
    combine_runs([tiny_run_dir, root / "second"], root / "ensemble")
    return root / "ensemble"
