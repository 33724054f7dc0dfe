"""The runtime's resize filters, implemented once and used by training too.

"antialias-bilinear" (bundles made before issue #11): the triangle filter on every pixel.
"area-antialias-bilinear" (default since): exact sums over k×k bins, then the triangle filter on the
bin sums; by construction it is the triangle filter applied to the image whose pixels are replaced
by their bin's mean, which is the independent reference used here.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from tlc_runtime.preprocess import DEFAULT_RESIZE, _area_sums, _resize_weights, reduction, resize

OLD, NEW = "antialias-bilinear", "area-antialias-bilinear"


def triangle(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float64 antialiased triangle weights, written independently of the runtime."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    d = np.abs((np.arange(n_in) + 0.5)[None, :] - (np.arange(n_out) + 0.5)[:, None] * scale) / support
    w = np.clip(1.0 - d, 0.0, None)
    return w / w.sum(axis=1, keepdims=True)


def block_means(image: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """Every pixel replaced by the mean of its kh×kw bin (edge bins hold what is left), float64, by loops."""
    out = np.empty(image.shape, np.float64)
    for y in range(0, image.shape[0], kh):
        for x in range(0, image.shape[1], kw):
            out[y:y + kh, x:x + kw] = image[y:y + kh, x:x + kw].mean(axis=(0, 1), dtype=np.float64)
    return out


def old_sparse_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The runtime's resize as it was before issue #11 (frozen here: old bundles must keep these pixels)."""
    def taps(n_in, n_out):
        dense = _resize_weights(n_in, n_out)
        k = int((dense > 0).sum(axis=1).max())
        first = (dense > 0).argmax(axis=1)
        index = np.minimum(first[:, None] + np.arange(k)[None, :], n_in - 1)
        weights = np.take_along_axis(dense, index, axis=1)
        weights[first[:, None] + np.arange(k)[None, :] >= n_in] = 0.0
        return index, weights

    src = image.astype(np.float32)
    rows, row_w = taps(image.shape[0], height)
    cols, col_w = taps(image.shape[1], width)
    extra = (1,) * (src.ndim - 2)
    tmp = (src[rows] * row_w.reshape(*row_w.shape, 1, *extra)).sum(axis=1)
    out = (tmp[:, cols] * col_w.reshape(1, *col_w.shape, *extra)).sum(axis=2)
    info = np.iinfo(image.dtype)
    return np.clip(np.rint(out), info.min, info.max).astype(image.dtype)


@pytest.mark.parametrize("shape, size", [((256, 256), (64, 64)), ((28, 28), (64, 64)), ((300, 200, 3), (64, 64)),
                                         ((97, 61), (13, 50)), ((8, 8), (32, 32))])
def test_sparse_resize_equals_the_dense_filter(shape, size):
    img = np.random.default_rng(0).random(shape).astype(np.float32) * 255
    dense = np.einsum("oh,hw...,pw->op...", triangle(shape[0], size[0]), img, triangle(shape[1], size[1]),
                      optimize=True)  # pairwise contractions: the naive 3-operand loop takes minutes at 2k
    out = resize(img, *size, OLD)
    assert out.shape == size + shape[2:]
    np.testing.assert_allclose(out, dense, atol=1e-3)


@pytest.mark.parametrize("shape, size", [((2048, 2048), (64, 64)), ((2000, 1800), (64, 64)), ((301, 203, 3), (17, 9)),
                                         ((97, 61), (13, 50)), ((512, 512), (224, 224)), ((28, 28), (64, 64))])
def test_area_filter_is_the_triangle_filter_on_bin_means(shape, size):
    img = np.random.default_rng(1).integers(0, 4096, shape).astype(np.uint16)
    kh, kw = reduction(shape[0], size[0]), reduction(shape[1], size[1])
    expected = np.einsum("oh,hw...,pw->op...", triangle(shape[0], size[0]), block_means(img, kh, kw),
                         triangle(shape[1], size[1]), optimize=True)
    out = resize(img, *size, NEW)
    assert out.shape == size + shape[2:] and out.dtype == np.uint16
    assert np.abs(out - expected).max() <= 0.5 + 1e-3  # only the final rounding differs


@pytest.mark.parametrize("dtype, low, high", [(np.uint8, 0, 256), (np.uint16, 0, 65536), (np.int16, -32768, 32768)])
@pytest.mark.parametrize("shape, k", [((64, 96), (8, 8)), ((60, 90, 3), (6, 5)), ((67, 71), (8, 16))])
def test_area_sums_are_exact(dtype, low, high, shape, k):
    img = np.random.default_rng(2).integers(low, high, shape).astype(dtype)
    kh, kw = k
    out = np.empty((-(-shape[0] // kh), -(-shape[1] // kw), *shape[2:]), np.int64)
    _area_sums(img, kh, kw, out)
    wide = img.astype(np.int64)
    if shape[0] % kh == 0 and shape[1] % kw == 0:  # exact factor: the bins of a plain reshape
        expected = wide.reshape(shape[0] // kh, kh, shape[1] // kw, kw, *shape[2:]).sum(axis=(1, 3))
    else:  # edge bins hold what is left
        expected = np.array([[wide[y:y + kh, x:x + kw].sum(axis=(0, 1)) for x in range(0, shape[1], kw)]
                             for y in range(0, shape[0], kh)])
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("shape, size", [((2048, 2048), (64, 64)), ((2000, 1800), (64, 64)), ((1000, 700), (37, 50)),
                                         ((300, 200), (28, 28))])
def test_area_filter_is_within_one_grey_level_of_the_old_filter_on_smooth_images(shape, size):
    """Bins are small against the triangle (at least REDUCING_GAP bins under it), so on smooth images the
    two filters' float results differ by well under one grey level: rounded, by at most one."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    smooth = np.rint(127.5 + 120 * np.sin(xx * 6 / shape[1]) * np.cos(yy * 5 / shape[0])).astype(np.uint8)
    diff = resize(smooth, *size, NEW).astype(int) - resize(smooth, *size, OLD).astype(int)
    assert np.abs(diff).max() <= 1


@pytest.mark.parametrize("method", [OLD, NEW])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_constant_image_stays_constant_and_dtype_is_kept(method, dtype):
    img = np.full((1000, 800), 100, dtype)
    for size in [(33, 17), (64, 64), (1000, 800), (1500, 900)]:
        out = resize(img, *size, method)
        assert out.dtype == dtype and out.shape == size
        np.testing.assert_allclose(out, 100, rtol=1e-6)


@pytest.mark.parametrize("method", [OLD, NEW])
def test_downscaling_is_antialiased(method):
    stripes = np.zeros((64, 64), np.uint8)
    stripes[:, ::2] = 255  # the finest pattern there is: a plain subsample would keep 0 or 255
    out = resize(stripes, 16, 16, method)
    deviation = np.abs(out.astype(int) - 128)
    assert deviation[:, 1:-1].max() <= 2  # interior: the stripes average out to mid-grey
    assert deviation.max() <= 12  # borders: the filter is renormalised over fewer pixels


@pytest.mark.parametrize("method", [OLD, NEW])
@pytest.mark.parametrize("shape, size", [((2048, 2048), (64, 64)), ((301, 203, 3), (17, 9)), ((28, 28), (64, 64)),
                                         ((512, 512), (224, 224)), ((40, 30), (40, 30))])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_batch_resize_equals_resizing_each_image(method, shape, size, dtype):
    batch = (np.random.default_rng(4).random((3, *shape)) * 4095).astype(dtype)
    one_by_one = np.stack([resize(image, *size, method) for image in batch])
    for images in (batch, list(batch)):  # an N×H×W(×C) array, or a list of same-shape arrays
        out = resize(images, *size, method, batched=True)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, one_by_one)


def test_old_filter_keeps_its_exact_pixels():
    img = np.random.default_rng(5).integers(0, 65536, (700, 500)).astype(np.uint16)
    for size in [(64, 64), (224, 224), (13, 50)]:
        np.testing.assert_array_equal(resize(img, *size, OLD), old_sparse_resize(img, *size))


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="antialias-bilinear"):
        resize(np.zeros((8, 8), np.uint8), 4, 4, "nearest")


def test_default_is_the_area_filter():
    assert DEFAULT_RESIZE == NEW


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_a_large_frame_is_resized_without_a_float_copy(dtype):
    """Peak extra memory while resizing a 2048×2048 frame to 64×64 stays under half the frame (a
    float32 copy alone would be 1× to 4× the frame); the old filter's gather took ~10×."""
    frame = np.random.default_rng(6).integers(0, 256, (2048, 2048)).astype(dtype)
    resize(frame, 64, 64)  # warm the weight caches
    tracemalloc.start()
    try:
        resize(frame, 64, 64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < frame.nbytes / 2


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32])
@pytest.mark.parametrize("size", [(32, 32), (8, 8)])  # bins of 16×16 (the edge of uint8's 16-bit sums) and 64×64
def test_area_sums_never_overflow(dtype, size):
    info = np.iinfo(dtype)
    for value in (info.max, info.min):
        out = resize(np.full((1024, 1024), value, dtype), *size)
        assert out.dtype == dtype and (out == value).all()
