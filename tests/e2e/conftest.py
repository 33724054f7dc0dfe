"""Session fixtures: a small real PneumoniaMNIST subset, a run trained on it, and its FP32 bundle.

Built once through the CLI (the path users take) and shared by the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tlc.cli.main import run


def _stratified(labels: np.ndarray, per_class: dict[int, int], rng) -> np.ndarray:
    picks = [rng.choice(np.flatnonzero(labels == c), n, replace=False) for c, n in per_class.items()]
    return np.sort(np.concatenate(picks))


@pytest.fixture(scope="session")
def pneumonia_small(pneumonia_npz, tmp_path_factory) -> Path:
    """A 900-image stratified subset of the real data, same layout, so tests stay quick."""
    data = np.load(pneumonia_npz)
    rng = np.random.default_rng(0)
    sizes = {"train": {0: 200, 1: 300}, "val": {0: 80, 1: 80}, "test": {0: 100, 1: 140}}
    out = {}
    for split, per_class in sizes.items():
        labels = data[f"{split}_labels"].reshape(-1)
        idx = _stratified(labels, per_class, rng)
        out[f"{split}_images"] = data[f"{split}_images"][idx]
        out[f"{split}_labels"] = data[f"{split}_labels"][idx]
    path = tmp_path_factory.mktemp("data") / "pneumonia-small.npz"
    np.savez(path, **out)
    return path


@pytest.fixture(scope="session")
def pneumonia_run(pneumonia_small, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "a"
    code = run(["train", str(pneumonia_small), "--arch", "resnet18", "--img-size", "32", "--epochs", "3",
                "--batch-size", "32", "--seed", "0", "--out", str(run_dir)])
    assert code == 0
    return run_dir


@pytest.fixture(scope="session")
def fp32_bundle(pneumonia_run, tmp_path_factory) -> Path:
    bundle = tmp_path_factory.mktemp("bundles") / "fp32"
    assert run(["build", str(pneumonia_run), "--target", "x86-cpu", "--out", str(bundle)]) == 0
    return bundle
