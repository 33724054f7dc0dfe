"""Input range rules: integers must lie on the model's bit depth; floats need a declared value_range."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tlc_runtime

pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(7)


@pytest.fixture
def clf12(make_bundle):
    """A 12-bit model (0..4095)."""
    return tlc_runtime.load(make_bundle(bit_depth=12).path, options={"intra_op_num_threads": 1})


@pytest.mark.parametrize("image, match", [
    (np.full((8, 8), 5000, np.uint16), r"5000.*0\.\.4095"),
    (np.full((8, 8), -1, np.int16), r"-1.*0\.\.4095"),
    (np.full((8, 8), 70_000, np.uint32), r"70000.*0\.\.4095"),
    (np.full((8, 8), -1, np.int64), r"-1.*0\.\.4095"),
])
def test_integers_outside_the_models_bit_depth_are_refused(clf12, image, match):
    image = image.copy()
    image[1:, :] = 100  # one bad row is enough
    with pytest.raises(tlc_runtime.InputError, match=match) as info:
        clf12.predict(image)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("image", [np.full((8, 8), 256, np.int32), np.full((8, 8), -1, np.int64),
                                   np.full((8, 8), 300, np.uint32)])
def test_eight_bit_model_refuses_integers_beyond_255(grey_clf, image):
    with pytest.raises(tlc_runtime.InputError, match=r"0\.\.255"):
        grey_clf.predict(image)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64, np.uint32, np.uint64])
def test_in_range_signed_and_wide_integers_are_converted(clf12, grey_clf, dtype):
    img16 = RNG.integers(0, 4096, (8, 8)).astype(np.uint16)
    assert clf12.predict(img16.astype(dtype)) == clf12.predict(img16)
    img8 = RNG.integers(0, 256, (8, 8)).astype(np.uint8)
    assert grey_clf.predict(img8.astype(dtype)) == grey_clf.predict(img8)


def test_float_without_a_declared_range_is_refused_with_how_to_declare_it(grey_clf):
    with pytest.raises(tlc_runtime.InputError, match=r"value_range=\(lo, hi\)") as info:
        grey_clf.predict(RNG.random((8, 8)))  # a 0..1 float image: never guessed to be 0..255
    assert "\n" not in str(info.value)


def test_declared_float_range_maps_onto_the_models_integer_range(grey_clf, clf12):
    unit = RNG.random((8, 8))
    for clf, top, dtype in ((grey_clf, 255, np.uint8), (clf12, 4095, np.uint16)):
        as_ints = np.rint(unit * top).astype(dtype)
        assert clf.predict(unit, value_range=(0, 1)) == clf.predict(as_ints)
        unit32 = unit.astype(np.float32)
        np.testing.assert_array_equal(clf.prepare(unit32, value_range=(0.0, 1.0)),
                                      clf.prepare(np.rint(unit32.astype(np.float64) * top).astype(dtype)))
        shifted = unit * 2000 - 1000  # e.g. Hounsfield units windowed to -1000..1000
        assert clf.predict(shifted, value_range=(-1000, 1000)) == clf.predict(as_ints)


def test_predict_batch_takes_the_declared_range(grey_clf):
    unit = RNG.random((3, 8, 8))
    expected = [grey_clf.predict(np.rint(u * 255).astype(np.uint8)) for u in unit]
    assert grey_clf.predict_batch(unit, value_range=(0, 1)) == expected
    assert grey_clf.predict_batch(list(unit), value_range=(0, 1)) == expected
    with pytest.raises(tlc_runtime.InputError, match="value_range"):
        grey_clf.predict_batch(unit)


def test_declared_range_also_maps_integers(grey_clf):
    img16 = RNG.integers(0, 65536, (8, 8)).astype(np.uint16)
    expected = np.rint(img16 / 65535 * 255).astype(np.uint8)
    assert grey_clf.predict(img16, value_range=(0, 65535)) == grey_clf.predict(expected)


@pytest.mark.parametrize("value", [1.5, -0.25, 1e300])
def test_floats_outside_the_declared_range_are_refused_not_clipped(grey_clf, value):
    img = RNG.random((8, 8))
    img[2, 3] = value
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(tlc_runtime.InputError, match=r"outside the declared value_range 0\.\.1"):
            grey_clf.predict(img, value_range=(0, 1))


@pytest.mark.parametrize("bad", [(1, 1), (2, 1), (0, float("nan")), (0, float("inf")), (0,), "0..1", (0, "1")])
def test_bad_value_range_is_an_input_error(grey_clf, bad):
    with pytest.raises(tlc_runtime.InputError, match="value_range"):
        grey_clf.predict(RNG.random((8, 8)), value_range=bad)


def test_float_file_needs_the_declared_range_too(grey_clf, tmp_path):
    unit = RNG.random((8, 8))
    np.save(tmp_path / "unit.npy", unit)
    with pytest.raises(tlc_runtime.InputError, match=r"unit\.npy: .*value_range=\(lo, hi\)"):
        grey_clf.predict(tmp_path / "unit.npy")
    assert grey_clf.predict(tmp_path / "unit.npy", value_range=(0, 1)) == \
        grey_clf.predict(np.rint(unit * 255).astype(np.uint8))
