"""Calibration sampling (stratified, seeded) and the onnxruntime batch reader."""

from __future__ import annotations

import numpy as np
import pytest
from tlc.errors import ConfigError
from tlc.quantize.calibration import ArrayDataReader, select_calibration


def _data(counts):
    labels = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
    images = np.arange(len(labels), dtype=np.int64).reshape(-1, 1, 1, 1) * np.ones((1, 2, 2, 1), np.int64)
    return images, labels


def _labels_of(selected, labels):
    return labels[selected[:, 0, 0, 0]]


def test_sample_is_stratified_and_seeded():
    images, labels = _data([900, 80, 20])
    chosen = select_calibration(images, labels, n=100, seed=3, min_samples=16)
    assert len(chosen) == 100 and len(np.unique(chosen[:, 0, 0, 0])) == 100
    assert np.bincount(_labels_of(chosen, labels)).tolist() == [90, 8, 2]
    again = select_calibration(images, labels, n=100, seed=3, min_samples=16)
    other = select_calibration(images, labels, n=100, seed=4, min_samples=16)
    np.testing.assert_array_equal(chosen, again)
    assert not np.array_equal(chosen, other)


def test_rare_class_is_still_represented():
    images, labels = _data([995, 5])
    chosen = select_calibration(images, labels, n=20, seed=0, min_samples=16)
    counts = np.bincount(_labels_of(chosen, labels), minlength=2)
    assert len(chosen) == 20 and counts[1] >= 1


def test_fewer_images_than_asked_uses_them_all():
    images, labels = _data([10, 10])
    chosen = select_calibration(images, labels, n=300, seed=0, min_samples=16)
    np.testing.assert_array_equal(chosen, images)


@pytest.mark.parametrize("counts, n, message", [
    ([], 300, "calibration set is empty.*at least 16"),
    ([5, 4], 300, "has 9 images; INT8 quantization needs at least 16"),
    ([50, 50], 8, "calibration.samples is 8, below calibration.min_samples 16"),
])
def test_too_little_calibration_data_is_config_error(counts, n, message):
    images, labels = _data(counts) if counts else (np.zeros((0, 2, 2, 1)), np.zeros(0))
    with pytest.raises(ConfigError, match=message):
        select_calibration(images, labels, n=n, seed=0, min_samples=16)


def test_label_count_mismatch_is_config_error():
    images, labels = _data([20, 20])
    with pytest.raises(ConfigError, match="40 images but 39 labels"):
        select_calibration(images, labels[:-1], n=30, seed=0, min_samples=16)


def test_reader_yields_all_images_in_batches_and_rewinds():
    images = np.arange(50 * 4, dtype=np.float32).reshape(50, 2, 2, 1)
    reader = ArrayDataReader(images, "pixels", batch_size=16)
    batches = list(reader)
    assert [len(b["pixels"]) for b in batches] == [16, 16, 16, 2]
    np.testing.assert_array_equal(np.concatenate([b["pixels"] for b in batches]), images)
    assert reader.get_next() is None
    reader.rewind()
    assert len(reader.get_next()["pixels"]) == 16
    from onnxruntime.quantization import CalibrationDataReader

    assert isinstance(reader, CalibrationDataReader)
