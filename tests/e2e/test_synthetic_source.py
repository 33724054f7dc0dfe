"""Generated data as the source domain, through the CLI: a simulator writes synth.npz, ``tlc train`` pretrains
on it, ``tlc train real.npz --weights SYNTH_RUN --spectral-reg L`` transfers to real images, ``tlc build``
builds the child run (the README's "Pretraining on generated data" section)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tlc.cli.main import run
from tlc_runtime.manifest import read_manifest

pytestmark = pytest.mark.slow

CLASSES = (0, 1, 2)
TINY = ["--arch", "small_cnn", "--img-size", "16", "--epochs", "1", "--batch-size", "16"]


def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    keep = np.isin(bunch.target, CLASSES)
    return np.rint(bunch.images[keep] * 255 / 16).astype(np.uint8), bunch.target[keep]


def _write_generated(path) -> None:
    """A user's simulator: tlc's cluttered digits (each digit at a random spot of a 16×16 canvas among
    fragments of others), written in the MedMNIST layout with the same class names as the real data."""
    from tlc.data.digits import cluttered

    images, labels = _digits()
    np.savez(path, images=cluttered(images, np.random.default_rng(0)), labels=labels,
             class_names=np.array([f"digit-{d}" for d in CLASSES]))


def _write_real(path, per_class: int) -> None:
    """The real target: plain digits, ``per_class`` labelled training images per class, the rest val/test."""
    images, labels = _digits()
    rng = np.random.default_rng(1)
    train = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(len(CLASSES))])
    rest = np.setdiff1d(np.arange(len(labels)), train)
    val, test = rest[: len(rest) // 2], rest[len(rest) // 2:]
    np.savez(path, **{f"{name}_{kind}": arr[idx] for name, idx in (("train", train), ("val", val), ("test", test))
                      for kind, arr in (("images", images), ("labels", labels))},
             class_names=np.array([f"digit-{d}" for d in CLASSES]))


def test_pretrain_on_generated_data_then_transfer_to_real_with_spectral_reg(tmp_path):
    _write_generated(tmp_path / "synth.npz")
    _write_real(tmp_path / "real.npz", per_class=10)
    synth, real, bundle = tmp_path / "runs" / "synth", tmp_path / "runs" / "real", tmp_path / "bundle"

    assert run(["train", str(tmp_path / "synth.npz"), *TINY, "--out", str(synth)]) == 0
    assert run(["train", str(tmp_path / "real.npz"), "--weights", str(synth), "--spectral-reg", "0.3",
                "--img-size", "16", "--epochs", "2", "--batch-size", "8", "--out", str(real)]) == 0

    child = json.loads((real / "run.json").read_text())
    assert child["arch"] == "small_cnn", "the architecture comes from the source run"
    assert child["weights_init"] == f"run:{synth / 'model.safetensors'}"
    assert child["data"]["split_sizes"]["train"] == 30
    assert child["config"]["spectral_reg"] == 0.3
    assert [e["epoch"] for e in child["epochs"]] == [1, 2]
    assert all(0 < e["spectral_penalty"] <= 0.3 for e in child["epochs"])

    assert run(["build", str(real), "--target", "x86-cpu", "--out", str(bundle)]) == 0
    manifest = read_manifest(bundle)
    assert manifest.provenance["run_id"] == child["run_id"]
    assert manifest.verification["agreement"] == 1.0
