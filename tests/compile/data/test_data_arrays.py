"""Dataset.arrays uses the runtime's resize; content_hash and summary behave."""

from __future__ import annotations

import numpy as np
import pytest
from tlc.data import load_dataset
from tlc.errors import ConfigError
from tlc_runtime.preprocess import resize, to_model_input


@pytest.fixture
def odd_sizes(tmp_path, write_image, rand_image):
    root = tmp_path / "d"
    shapes = [(10, 7), (13, 13), (5, 9), (16, 12)]
    for i in range(8):
        write_image(root / "ab"[i % 2] / f"{i}.png", rand_image(i, shapes[i % 4]))
    return root


def test_arrays_match_the_shared_resize(odd_sizes):
    ds = load_dataset(odd_sizes, val_fraction=0.25, test_fraction=0.25)
    x, y = ds.arrays("train", 8)
    split = ds.splits["train"]
    assert x.shape == (len(split), 8, 8, 1) and x.dtype == np.uint8
    np.testing.assert_array_equal(y, split.labels)
    for row, image in zip(x, split.images, strict=True):
        np.testing.assert_array_equal(row[:, :, 0], resize(image, 8, 8))
        np.testing.assert_array_equal(row, to_model_input(image, ds.input_spec(8), ds.preprocessing((0.5,) * 3, (0.2,) * 3)))


def test_rgb_arrays_match_the_shared_resize(tmp_path, write_image, rand_image):
    root = tmp_path / "d"
    for i in range(6):
        write_image(root / "ab"[i % 2] / f"{i}.png", rand_image(i, (9 + i, 11, 3)))
    ds = load_dataset(root)
    x, _ = ds.arrays("test", 4)
    assert x.shape[1:] == (4, 4, 3)
    for row, image in zip(x, ds.splits["test"].images, strict=True):
        np.testing.assert_array_equal(row, resize(image, 4, 4))


def test_16bit_arrays_resize_native_then_cast(tmp_path, write_image, rand_image):
    root = tmp_path / "d"
    for i in range(6):
        write_image(root / "ab"[i % 2] / f"{i}.png", rand_image(i, (11, 9), dtype=np.uint16, high=4096))
    ds = load_dataset(root)
    assert ds.graph_dtype == "float32" and ds.bit_depth == 12
    x, _ = ds.arrays("train", 6)
    assert x.dtype == np.float32
    for row, image in zip(x, ds.splits["train"].images, strict=True):
        expected = resize(image, 6, 6)
        assert expected.dtype == np.uint16
        np.testing.assert_array_equal(row[:, :, 0], expected.astype(np.float32))


def test_arrays_are_cached_but_callers_get_their_own_copy(odd_sizes):
    ds = load_dataset(odd_sizes)
    x1, y1 = ds.arrays("train", 8)
    x1[:] = 0
    y1[:] = 99
    x2, y2 = ds.arrays("train", 8)
    np.testing.assert_array_equal(y2, ds.splits["train"].labels)
    assert x2.any() and x2.flags.writeable
    assert ds.arrays("train", 9)[0].shape[1] == 9


def test_arrays_bad_arguments(odd_sizes):
    ds = load_dataset(odd_sizes)
    with pytest.raises(ConfigError, match="unknown split 'dev'"):
        ds.arrays("dev", 8)
    with pytest.raises(ConfigError, match="positive integer"):
        ds.arrays("train", 0)


def test_preprocessing_record_follows_the_data(odd_sizes):
    ds = load_dataset(odd_sizes)
    prep = ds.preprocessing((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert prep.channel_rule == "replicate" and prep.value_range == (0.0, 255.0) and prep.source_bit_depth == 8
    spec = ds.input_spec(32)
    assert (spec.height, spec.width, spec.channels, spec.dtype) == (32, 32, 1, "uint8")


def test_content_hash_tracks_pixels_and_labels_not_names(odd_sizes, write_image):
    first = load_dataset(odd_sizes, seed=2).content_hash
    assert len(first) == 64 and load_dataset(odd_sizes, seed=2).content_hash == first
    (odd_sizes / "a" / "0.png").rename(odd_sizes / "a" / "renamed.png")
    assert load_dataset(odd_sizes, seed=2).content_hash == first
    image = np.asarray(__import__("PIL.Image").Image.open(odd_sizes / "a" / "renamed.png")).copy()
    image[0, 0] ^= 1
    write_image(odd_sizes / "a" / "renamed.png", image)
    changed_pixel = load_dataset(odd_sizes, seed=2).content_hash
    assert changed_pixel != first
    (odd_sizes / "a" / "renamed.png").rename(odd_sizes / "b" / "renamed.png")
    assert load_dataset(odd_sizes, seed=2).content_hash not in (first, changed_pixel)


def test_content_hash_is_a_fixed_function_of_the_data(tmp_path):
    # No RNG involved: this digest must be the same on every machine and numpy version.
    images = np.arange(4 * 3 * 3, dtype=np.uint16).reshape(4, 3, 3) * 100
    np.savez(tmp_path / "g.npz", train_images=images[2:], train_labels=np.array([0, 1]),
             test_images=images[:2], test_labels=np.array([1, 0]))
    ds = load_dataset(tmp_path / "g.npz")
    assert ds.bit_depth == 12  # train maximum 3500
    # sha256("tlc-data-v1", class names, per split the sorted sha256(label|pixel digest)): see assemble.py
    assert ds.content_hash == "dcbcd32a9c2b734139780838c77920183afed94f11e6f7641bde98ac25f084e6"


def test_summary_lists_sizes_counts_and_facts(odd_sizes):
    ds = load_dataset(odd_sizes)
    s = ds.summary()
    assert s["kind"] == "folder" and s["channels"] == 1 and s["bit_depth"] == 8
    assert s["content_hash"] == ds.content_hash and s["class_names"] == ["a", "b"]
    assert {k: v["size"] for k, v in s["splits"].items()} == {k: len(v) for k, v in ds.splits.items()}
    assert sum(sum(v["per_class"].values()) for v in s["splits"].values()) == 8


def test_training_records_and_uses_the_runtime_default_resize(tmp_path, write_image, rand_image):
    """A dataset records the current filter, and its arrays are that filter's pixels (large factors,
    where the area filter and the old one differ)."""
    from tlc_runtime.preprocess import DEFAULT_RESIZE

    root = tmp_path / "d"
    for i in range(6):
        write_image(root / "ab"[i % 2] / f"{i}.png", rand_image(i, (96, 80), dtype=np.uint16, high=4096))
    ds = load_dataset(root)
    prep = ds.preprocessing((0.5,) * 3, (0.2,) * 3)
    assert prep.resize == DEFAULT_RESIZE == "area-antialias-bilinear"
    x, _ = ds.arrays("train", 8)
    for row, image in zip(x, ds.splits["train"].images, strict=True):
        np.testing.assert_array_equal(row[:, :, 0], resize(image, 8, 8, prep.resize).astype(np.float32))
