"""Source-to-target distance: the Fréchet distance itself, and a real source run's features."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tlc.train.source_distance import (
    frechet_distance,
    gaussian_frechet,
    normalised_frechet,
    proxy_a_distance,
    source_distance,
)


def _features(seed: int, n: int = 200, f: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, f)) @ rng.normal(size=(f, f))


def test_identical_feature_sets_are_at_distance_zero():
    a = _features(0)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9 * np.trace(np.cov(a, rowvar=False)))


def test_the_distance_is_symmetric():
    a, b = _features(0), _features(1) + 0.5
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)


def test_one_dimensional_gaussians_match_the_closed_form():
    # FD² of N(m1, s1²) and N(m2, s2²) is (m1 − m2)² + (s1 − s2)²
    assert gaussian_frechet(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]])) == \
        pytest.approx(9.0 + 1.0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, 500), rng.normal(3, 2, 400)
    expected = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert frechet_distance(x[:, None], y[:, None]) == pytest.approx(expected, rel=1e-9)


def test_the_distance_grows_as_the_target_moves_away():
    a = _features(0)
    shifted = [frechet_distance(a, a + step) for step in (0.5, 1.0, 2.0)]
    assert shifted == sorted(shifted) and shifted[0] > 0


def test_normalising_by_the_source_spread_removes_the_feature_scale():
    a, b = _features(0), _features(1)
    assert normalised_frechet(10 * a, 10 * b)[0] == pytest.approx(normalised_frechet(a, b)[0], rel=1e-9)


def test_the_proxy_a_distance_is_near_zero_for_two_samples_of_one_distribution():
    # a linear classifier cannot tell two samples of one Gaussian apart: held-out error ≈ 0.5
    assert proxy_a_distance(_features(0, n=400), _features(0, n=800)[400:]) < 0.4


def test_the_proxy_a_distance_grows_with_the_shift_and_saturates_at_two():
    a, b = _features(0, n=400), _features(0, n=800)[400:]
    scale = np.sqrt(np.trace(np.cov(a, rowvar=False)))
    shifted = [proxy_a_distance(a, b + step * scale) for step in (0.0, 0.3, 1.0, 10.0)]
    assert shifted == sorted(shifted) and shifted[-1] == pytest.approx(2.0)
    assert shifted[1] > shifted[0]


def test_the_proxy_a_distance_does_not_depend_on_the_feature_scale():
    a, b = _features(0), _features(1) + 0.3
    assert proxy_a_distance(100 * a, 100 * b) == pytest.approx(proxy_a_distance(a, b), abs=0.05)


@pytest.fixture(scope="module")
def digits_source(tmp_path_factory, cluttered_digits):
    """A one-epoch run on cluttered digits 0/1 saved as an npz (so its data path is on record)."""
    from tlc.train import TrainConfig, train

    root = tmp_path_factory.mktemp("source")
    data = cluttered_digits(root / "digits.npz", (0, 1), per_class_train=40)
    config = TrainConfig(arch="small_cnn", img_size=16, epochs=1, batch_size=16, patience=None)
    train(data, root / "run", config, progress=False)
    return root / "run", root / "digits.npz"


def _noisy_copy(npz, out, amplitude):
    rng = np.random.default_rng(0)
    arrays = dict(np.load(npz))
    for key in [k for k in arrays if k.endswith("_images")]:
        noise = rng.integers(-amplitude, amplitude + 1, arrays[key].shape)
        arrays[key] = np.clip(arrays[key].astype(int) + noise, 0, 255).astype(np.uint8)
    np.savez(out, **arrays)
    return out


def test_a_noisier_target_is_farther_from_the_source(digits_source, tmp_path):
    from tlc.data import load_dataset

    run_dir, npz = digits_source
    same = source_distance(run_dir, load_dataset(npz))
    noisy = source_distance(run_dir, load_dataset(_noisy_copy(npz, tmp_path / "noisy.npz", 120)))
    assert 0 <= same.distance < noisy.distance
    assert 0 <= same.pad < noisy.pad <= 2
    assert same.n_source == same.n_target == 80


def test_logme_is_higher_for_the_labels_than_for_the_same_labels_shuffled(digits_source, tmp_path):
    from tlc.data import load_dataset

    run_dir, npz = digits_source
    arrays = dict(np.load(npz))
    arrays["train_labels"] = np.random.default_rng(0).permutation(arrays["train_labels"])
    np.savez(tmp_path / "shuffled.npz", **arrays)
    real = source_distance(run_dir, load_dataset(npz))
    shuffled = source_distance(run_dir, load_dataset(tmp_path / "shuffled.npz"))
    assert real.distance == pytest.approx(shuffled.distance)  # the same images: only the labels differ
    assert real.logme > shuffled.logme


def test_a_source_run_without_readable_data_warns_and_gives_none(tmp_path):
    from tlc.data import DataWarning, load_digits
    from tlc.train import TrainConfig, train

    digits = load_digits((0, 1), seed=0)  # made in memory: run.json cannot point to it
    train(digits, tmp_path / "run", TrainConfig(arch="small_cnn", img_size=16, epochs=1, patience=None),
          progress=False)
    with pytest.warns(DataWarning, match="no source distance"):
        assert source_distance(tmp_path / "run", digits) is None


def test_train_from_a_run_prints_and_records_the_distance(digits_source, tmp_path, capsys):
    from tlc.cli.main import run

    run_dir, npz = digits_source
    out = tmp_path / "child"
    assert run(["train", str(npz), "--weights", str(run_dir), "--out", str(out), "--img-size", "16",
                "--epochs", "1", "--no-augment"]) == 0
    err = capsys.readouterr().err
    assert "source distance" in err
    recorded = json.loads((out / "run.json").read_text())["source_distance"]
    assert recorded["distance"] >= 0 and recorded["source"] == str(run_dir)
    assert 0 <= recorded["pad"] <= 2 and f"proxy A-distance {recorded['pad']:.2f}" in err
    assert f"source distance {recorded['distance']:.3f}" in err
    assert np.isfinite(recorded["logme"]) and f"LogME {recorded['logme']:.3f}" in err
