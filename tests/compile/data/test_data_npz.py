"""NPZ sources: synthetic MedMNIST-layout files, the real PneumoniaMNIST, and bad arrays."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from tlc.data import DataWarning, load_dataset
from tlc.errors import DataError


def _images(n: int, seed: int, shape=(5, 5), dtype=np.uint8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape)).astype(dtype)


def _medmnist(path, **overrides):
    arrays = {
        "train_images": _images(6, 0), "train_labels": np.array([[0], [1], [2], [0], [1], [2]], np.uint8),
        "val_images": _images(3, 1), "val_labels": np.array([[0], [1], [2]], np.uint8),
        "test_images": _images(3, 2), "test_labels": np.array([2, 1, 0], np.int64),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_synthetic_medmnist_layout(tmp_path):
    path = _medmnist(tmp_path / "tiny.npz")
    ds = load_dataset(path)
    assert ds.kind == "npz" and ds.class_names == ("0", "1", "2")
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 6, "val": 3, "test": 3}
    assert ds.splits["val"].ids == ("npz:val:0", "npz:val:1", "npz:val:2")
    assert ds.splits["test"].labels.tolist() == [2, 1, 0]
    with np.load(path) as raw:
        for i, image in enumerate(ds.splits["train"].images):
            np.testing.assert_array_equal(image, raw["train_images"][i])
    assert (ds.channels, ds.bit_depth) == (1, 8)


def test_class_names_array_and_rgb_images(tmp_path):
    rgb = _images(6, 0, shape=(4, 4, 3))
    path = _medmnist(tmp_path / "c.npz", train_images=rgb, val_images=None, val_labels=None,
                     class_names=np.array(["cat", "dog", "eel"]))
    ds = load_dataset(path)
    assert ds.class_names == ("cat", "dog", "eel")
    assert len(ds.splits["val"]) == 0 and ds.channels == 3
    assert all(im.shape == (5, 5, 3) for im in ds.splits["test"].images)  # grey test images → RGB
    np.testing.assert_array_equal(ds.splits["test"].images[0][:, :, 1], _images(3, 2)[0])


def test_unsplit_npz_is_split_automatically(tmp_path):
    np.savez(tmp_path / "u.npz", images=_images(30, 5), labels=np.arange(30) % 2)
    ds = load_dataset(tmp_path / "u.npz", seed=1)
    assert sum(len(s) for s in ds.splits.values()) == 30
    assert all(set(s.labels.tolist()) == {0, 1} for s in ds.splits.values())
    assert all(i.startswith("npz:images:") for s in ds.splits.values() for i in s.ids)


def test_label_out_of_range_names_the_item(tmp_path):
    path = _medmnist(tmp_path / "bad.npz", val_labels=np.array([[0], [7], [1]], np.uint8))
    with pytest.raises(DataError, match=r"bad\.npz: label 7 of npz:val:1 is not in the class list"):
        load_dataset(path)


def test_class_missing_from_train(tmp_path):
    path = _medmnist(tmp_path / "gap.npz", train_labels=np.array([0, 2, 2, 0, 2, 0]))
    with pytest.raises(DataError, match=r"gap\.npz: label '1' of npz:val:1 \(val\) is not in the class list"):
        load_dataset(path)


def test_missing_train_arrays(tmp_path):
    np.savez(tmp_path / "nt.npz", val_images=_images(2, 0), val_labels=np.array([0, 1]))
    with pytest.raises(DataError, match=r"nt\.npz: no train_images/train_labels"):
        load_dataset(tmp_path / "nt.npz")


def test_multilabel_refused(tmp_path):
    path = _medmnist(tmp_path / "ml.npz", train_labels=np.zeros((6, 3), np.uint8))
    with pytest.raises(DataError, match=r"ml\.npz: train_labels has shape \(6, 3\)"):
        load_dataset(path)


def test_float_images_with_nan_refused(tmp_path):
    images = _images(6, 0).astype(np.float32)
    images[4, 1, 1] = np.nan
    path = _medmnist(tmp_path / "f.npz", train_images=images)
    with pytest.raises(DataError, match=r"f\.npz: npz:train:4: contains NaN or Inf"):
        load_dataset(path)


def test_corrupt_npz(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match=r"x\.npz: cannot read the npz file"):
        load_dataset(tmp_path / "x.npz")


def test_real_pneumoniamnist(pneumonia_npz):
    with pytest.warns(DataWarning, match="identical images in train and val"):
        ds = load_dataset(pneumonia_npz)
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 3882, "val": 524, "test": 624}
    assert ds.class_names == ("0", "1")
    assert (ds.channels, ds.bit_depth, ds.value_range) == (1, 8, (0.0, 255.0))
    assert ds.duplicates == {"train/val": 8}  # MedMNIST's own near-leak, reported not fatal
    summary = ds.summary()
    assert summary["splits"]["train"]["per_class"] == {"0": 388, "1": 3494}
    assert summary["splits"]["test"]["per_class"] == {"0": 234, "1": 390}
    x, y = ds.arrays("test", 28)
    with np.load(pneumonia_npz) as raw:
        np.testing.assert_array_equal(x[:, :, :, 0], raw["test_images"])
        np.testing.assert_array_equal(y, raw["test_labels"][:, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same leak was said on the first load: not again
        assert load_dataset(pneumonia_npz).content_hash == ds.content_hash
