"""Tiny real data for training tests: scikit-learn's bundled digits (8×8 grey, uint8)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")


@pytest.fixture(scope="session")
def digits04():
    from tlc.data import load_digits

    return load_digits((0, 1, 2, 3, 4), seed=0)


@pytest.fixture(scope="session")
def tiny_config():
    """resnet18 at 16 px on 80 training images: about a second per epoch on 2 CPU cores."""
    from tlc.train import TrainConfig

    return TrainConfig(arch="resnet18", img_size=16, epochs=1, batch_size=16, limit_train=80, patience=None)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, digits04, tiny_config):
    """One finished one-epoch run directory and its RunInfo."""
    from tlc.train import train

    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    info = train(digits04, run_dir, tiny_config, progress=False)
    return run_dir, info


def make_cluttered_digits(path, classes, *, per_class_train=None, seed=0):
    """tlc's cluttered digits (tlc.data.digits.cluttered: real digits at random spots of a 16×16 canvas
    among dim fragments of others) written as a MedMNIST-style npz with a 60/20/20 split per class and
    loaded back through tlc.data, so runs record a real data path."""
    from sklearn.datasets import load_digits as sklearn_digits
    from tlc.data import load_dataset
    from tlc.data.digits import cluttered

    bunch = sklearn_digits()
    rng = np.random.default_rng(seed)
    pixels = cluttered(np.rint(bunch.images * 255 / 16).astype(np.uint8), rng)
    arrays = {f"{s}_{k}": [] for s in ("train", "val", "test") for k in ("images", "labels")}
    for label, digit in enumerate(classes):
        idx = rng.permutation(np.flatnonzero(bunch.target == digit))
        a, b = int(0.6 * len(idx)), int(0.8 * len(idx))
        for split, members in (("train", idx[:a][:per_class_train]), ("val", idx[a:b]), ("test", idx[b:])):
            arrays[f"{split}_images"] += [pixels[i] for i in members]
            arrays[f"{split}_labels"] += [label] * len(members)
    np.savez(path, **{k: np.array(v) for k, v in arrays.items()},
             class_names=np.array([f"digit-{d}" for d in classes]))
    return load_dataset(path)


@pytest.fixture(scope="session")
def cluttered_digits():
    """The cluttered-digits dataset builder (see make_cluttered_digits)."""
    return make_cluttered_digits
