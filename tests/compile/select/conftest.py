"""Two one-epoch 16 px runs on digits 0 and 1 (one with --mc-dropout) and unlabelled pools beside them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


@dataclass(frozen=True)
class Digits:
    root: Path
    run: Path
    mc_run: Path
    train_images: np.ndarray  # the run's labelled train split
    pool_images: np.ndarray   # unlabelled digits the runs never saw
    pool_npz: Path            # ``images``: pool_images followed by the first 10 train images (labelled copies)


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> Digits:
    from sklearn.datasets import load_digits
    from tlc.train import TrainConfig, train

    data = load_digits(n_class=2)
    images = np.rint(data.images * 255 / 16).astype(np.uint8)
    labels = data.target.astype(np.int64)
    root = tmp_path_factory.mktemp("select")
    np.savez(root / "labelled.npz", train_images=images[:120], train_labels=labels[:120],
             val_images=images[120:180], val_labels=labels[120:180],
             test_images=images[180:220], test_labels=labels[180:220])
    pool = images[220:]
    np.savez(root / "pool.npz", images=np.concatenate([pool, images[:10]]))
    config = TrainConfig(arch="resnet18", img_size=16, epochs=1, batch_size=16, limit_train=60, patience=None)
    train(root / "labelled.npz", root / "run", config, progress=False)
    mc = TrainConfig(arch="resnet18", img_size=16, epochs=1, batch_size=16, limit_train=60, patience=None,
                     mc_dropout=0.3)
    train(root / "labelled.npz", root / "mc_run", mc, progress=False)
    return Digits(root, root / "run", root / "mc_run", images[:120], pool, root / "pool.npz")
