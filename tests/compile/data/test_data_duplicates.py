"""Duplicates policy: identical images across splits are refused (``error``) or their train copies
dropped (``drop``); val and test always stay as published."""

from __future__ import annotations

import numpy as np
import pytest
from tlc.data import DataWarning, load_dataset
from tlc.errors import ConfigError, DataError


def _leaky_npz(path, *, val_copy: bool = False):
    """A MedMNIST-layout file whose test image 1 is train image 4 (and, with ``val_copy``, val image 0
    is train image 2), like the official BreastMNIST file."""
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (8, 6, 6)).astype(np.uint8)
    val = rng.integers(0, 256, (3, 6, 6)).astype(np.uint8)
    test = rng.integers(0, 256, (3, 6, 6)).astype(np.uint8)
    test[1] = train[4]
    if val_copy:
        val[0] = train[2]
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    np.savez(path, train_images=train, train_labels=labels, val_images=val, val_labels=np.array([0, 1, 0]),
             test_images=test, test_labels=np.array([1, 0, 1]))
    return path


def test_train_test_duplicate_is_an_error_that_names_the_way_out(tmp_path):
    with pytest.raises(DataError, match=r"npz:train:4 \(train\) and npz:test:1 \(test\)") as info:
        load_dataset(_leaky_npz(tmp_path / "leak.npz"))
    assert "--duplicates drop" in str(info.value) and "\n" not in str(info.value)


def test_drop_removes_the_train_copy_and_keeps_test_as_published(tmp_path):
    path = _leaky_npz(tmp_path / "leak.npz")
    ds = load_dataset(path, duplicates="drop")
    assert "npz:train:4" not in ds.splits["train"].ids and len(ds.splits["train"]) == 7
    assert ds.splits["test"].ids == ("npz:test:0", "npz:test:1", "npz:test:2")
    assert ds.dropped_duplicates == ({"id": "npz:train:4", "split": "train", "same_as": "npz:test:1 (test)"},)
    assert ds.duplicates == {}
    assert ds.summary()["dropped_duplicates"] == [dict(d) for d in ds.dropped_duplicates]


def test_train_val_duplicate_only_warns_by_default(tmp_path):
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (4, 6, 6)).astype(np.uint8)
    np.savez(tmp_path / "v.npz", train_images=train, train_labels=np.array([0, 1, 0, 1]),
             val_images=train[:1].copy(), val_labels=np.array([0]))
    with pytest.warns(DataWarning, match="identical images in train and val"):
        ds = load_dataset(tmp_path / "v.npz")
    assert ds.duplicates == {"train/val": 1} and ds.dropped_duplicates == ()


def test_drop_also_removes_train_copies_of_val_images(tmp_path):
    ds = load_dataset(_leaky_npz(tmp_path / "leak.npz", val_copy=True), duplicates="drop")
    assert [d["id"] for d in ds.dropped_duplicates] == ["npz:train:2", "npz:train:4"]
    assert len(ds.splits["val"]) == 3 and len(ds.splits["train"]) == 6


def test_drop_that_empties_a_class_of_train_is_a_data_error(tmp_path):
    rng = np.random.default_rng(2)
    train = rng.integers(0, 256, (3, 6, 6)).astype(np.uint8)
    np.savez(tmp_path / "x.npz", train_images=train, train_labels=np.array([0, 0, 1]),
             test_images=train[2:].copy(), test_labels=np.array([1]))
    with pytest.raises(DataError, match=r"label '1' of npz:test:0 \(test\) is not in the class list of train"):
        load_dataset(tmp_path / "x.npz", duplicates="drop")


def test_drop_changes_the_content_hash_and_is_a_no_op_without_duplicates(tmp_path):
    leaky = load_dataset(_leaky_npz(tmp_path / "leak.npz"), duplicates="drop")
    rng = np.random.default_rng(3)
    clean = tmp_path / "clean.npz"
    np.savez(clean, images=rng.integers(0, 256, (12, 6, 6)).astype(np.uint8), labels=np.arange(12) % 2)
    assert load_dataset(clean, duplicates="drop").content_hash == load_dataset(clean).content_hash
    assert load_dataset(clean, duplicates="drop").dropped_duplicates == ()
    assert leaky.content_hash != load_dataset(clean).content_hash


def test_unknown_policy_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"duplicates must be one of error, drop, got 'keep'"):
        load_dataset(_leaky_npz(tmp_path / "leak.npz"), duplicates="keep")


def test_the_same_duplicates_are_reported_once_not_on_every_load(tmp_path, monkeypatch):
    import warnings

    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (4, 6, 6)).astype(np.uint8)
    np.savez(tmp_path / "v.npz", train_images=train, train_labels=np.array([0, 1, 0, 1]),
             val_images=train[:1].copy(), val_labels=np.array([0]))
    with pytest.warns(DataWarning, match="said once"):
        first = load_dataset(tmp_path / "v.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # train, build and verify load the same data again: silence
        again = load_dataset(tmp_path / "v.npz")
    assert first.duplicates == again.duplicates == {"train/val": 1}  # still recorded in the dataset
    other = train.copy()
    other[3] = 255 - other[3]
    np.savez(tmp_path / "w.npz", train_images=other, train_labels=np.array([0, 1, 0, 1]),
             val_images=other[3:].copy(), val_labels=np.array([1]))
    with pytest.warns(DataWarning):  # other copies: said again
        load_dataset(tmp_path / "w.npz")


def test_an_unwritable_cache_says_it_every_time(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("TLC_CACHE_DIR", str(blocker / "tlc"))
    rng = np.random.default_rng(2)
    train = rng.integers(0, 256, (4, 6, 6)).astype(np.uint8)
    np.savez(tmp_path / "v.npz", train_images=train, train_labels=np.array([0, 1, 0, 1]),
             val_images=train[:1].copy(), val_labels=np.array([0]))
    for _ in range(2):
        with pytest.warns(DataWarning):
            load_dataset(tmp_path / "v.npz")
