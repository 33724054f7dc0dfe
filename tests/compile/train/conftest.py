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


def make_cluttered_digits(path, classes, *, per_class_train=None, seed=0, canvas=16, fragments=2):
    """Real digits placed at random positions on a 16×16 canvas among dim fragments of other digits.

    One domain with nuisances (position, clutter) that labelled source data can teach and a few
    target labels cannot: the setting where same-domain transfer pays. (On plain 8×8 digits a
    randomly initialised network is already about as good as a transferred one.) Written as a
    MedMNIST-style npz with a 60/20/20 split per class and loaded through tlc.data.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from tlc.data import load_dataset

    bunch = sklearn_digits()
    pixels = np.rint(bunch.images * 255 / 16).astype(np.uint8)
    rng = np.random.default_rng(seed)

    def place(digit):
        image = np.zeros((canvas, canvas), np.uint8)
        for _ in range(fragments):
            y, x = rng.integers(0, 5, 2)
            fragment = pixels[rng.integers(len(pixels))][y:y + 4, x:x + 4] // 2
            py, px = rng.integers(0, canvas - 4, 2)
            image[py:py + 4, px:px + 4] = np.maximum(image[py:py + 4, px:px + 4], fragment)
        py, px = rng.integers(0, canvas - 8, 2)
        image[py:py + 8, px:px + 8] = np.maximum(image[py:py + 8, px:px + 8], digit)
        return image

    arrays = {f"{s}_{k}": [] for s in ("train", "val", "test") for k in ("images", "labels")}
    for label, digit in enumerate(classes):
        idx = rng.permutation(np.flatnonzero(bunch.target == digit))
        a, b = int(0.6 * len(idx)), int(0.8 * len(idx))
        for split, members in (("train", idx[:a][:per_class_train]), ("val", idx[a:b]), ("test", idx[b:])):
            arrays[f"{split}_images"] += [place(pixels[i]) for i in members]
            arrays[f"{split}_labels"] += [label] * len(members)
    np.savez(path, **{k: np.array(v) for k, v in arrays.items()},
             class_names=np.array([f"digit-{d}" for d in classes]))
    return load_dataset(path)


@pytest.fixture(scope="session")
def cluttered_digits():
    """The cluttered-digits dataset builder (see make_cluttered_digits)."""
    return make_cluttered_digits
