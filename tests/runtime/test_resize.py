"""The runtime's resize is the antialiased triangle filter, computed sparsely; training uses the same."""

from __future__ import annotations

import numpy as np
import pytest
from tlc_runtime.preprocess import _resize_weights, resize


@pytest.mark.parametrize("shape, size", [((256, 256), (64, 64)), ((28, 28), (64, 64)), ((300, 200, 3), (64, 64)),
                                         ((97, 61), (13, 50)), ((8, 8), (32, 32))])
def test_sparse_resize_equals_the_dense_filter(shape, size):
    img = np.random.default_rng(0).random(shape).astype(np.float32) * 255
    dense = np.einsum("oh,hw...,pw->op...", _resize_weights(shape[0], size[0]), img,
                      _resize_weights(shape[1], size[1]))
    out = resize(img, *size)
    assert out.shape == size + shape[2:]
    np.testing.assert_allclose(out, dense, atol=1e-3)


def test_constant_image_stays_constant_and_dtype_is_kept():
    img = np.full((100, 80), 4000, np.uint16)
    out = resize(img, 33, 17)
    assert out.dtype == np.uint16 and (out == 4000).all()


def test_downscaling_is_antialiased():
    stripes = np.zeros((64, 64), np.uint8)
    stripes[:, ::2] = 255  # the finest pattern there is: a plain subsample would keep 0 or 255
    out = resize(stripes, 16, 16)
    deviation = np.abs(out.astype(int) - 128)
    assert deviation[:, 1:-1].max() <= 2  # interior: the stripes average out to mid-grey
    assert deviation.max() <= 12  # borders: the filter is renormalised over fewer pixels
