"""Bad inputs and backend failures surface as tlc_runtime errors with one-line messages."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tlc_runtime

pytest.importorskip("onnxruntime")


def _is_ours(exc: BaseException) -> bool:
    return type(exc).__module__ == "tlc_runtime.errors"


@pytest.mark.parametrize("bad, match", [
    (np.full((8, 8), np.nan, np.float32), "NaN or Inf"),
    (np.array([[0.0, np.inf], [1.0, 2.0]]), "NaN or Inf"),
    (np.zeros((2, 8, 8, 1), np.uint8), "shape"),
    (np.zeros(8, np.uint8), "shape"),
    (np.zeros((8, 8, 2), np.uint8), "shape"),
    (np.zeros((0, 8), np.uint8), "empty"),
    (np.zeros((8, 8), np.uint16), "8-bit"),
    (np.zeros((8, 8), bool), "dtype"),
    (np.zeros((8, 8), np.complex64), "dtype"),
    ([[1, 2], [3, 4]], "numpy array"),
])
def test_bad_single_image(grey_clf, bad, match):
    with pytest.raises(tlc_runtime.InputError, match=match) as info:
        grey_clf.predict(bad)
    assert _is_ours(info.value)


@pytest.mark.parametrize("batch", [[], np.zeros((0, 8, 8), np.uint8)])
def test_empty_batch(grey_clf, batch):
    with pytest.raises(tlc_runtime.InputError, match="empty batch"):
        grey_clf.predict_batch(batch)


def test_batch_argument_shapes(grey_clf):
    with pytest.raises(tlc_runtime.InputError, match="N×H×W"):
        grey_clf.predict_batch(np.zeros((8, 8), np.uint8))
    with pytest.raises(tlc_runtime.InputError, match="predict\\(\\)"):
        grey_clf.predict_batch("one.png")
    with pytest.raises(tlc_runtime.InputError, match="NaN"):
        grey_clf.predict_batch([np.zeros((8, 8)), np.full((8, 8), np.nan)])


@pytest.mark.parametrize("batch, match", [
    (np.zeros((2, 8, 8, 1), np.float32), "dtype"),
    (np.zeros((2, 8, 8), np.uint8), "shape"),
    (np.zeros((2, 9, 8, 1), np.uint8), "shape"),
    (np.zeros((0, 8, 8, 1), np.uint8), "empty batch"),
])
def test_predict_logits_validates_prepared_batches(grey_clf, batch, match):
    with pytest.raises(tlc_runtime.InputError, match=match):
        grey_clf.predict_logits(batch)


def test_unreadable_paths_name_the_path(grey_clf, tmp_path):
    with pytest.raises(tlc_runtime.InputError, match="not found: .*missing.png"):
        grey_clf.predict(tmp_path / "missing.png")
    (tmp_path / "scan.dcm").write_bytes(b"DICM")
    with pytest.raises(tlc_runtime.InputError, match="unsupported file type '.dcm'"):
        grey_clf.predict(tmp_path / "scan.dcm")
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    with pytest.raises(tlc_runtime.InputError, match="broken.npy"):
        grey_clf.predict(str(tmp_path / "broken.npy"))


def test_backend_failure_at_run_time_is_a_one_line_inference_error(make_bundle):
    bundle = make_bundle(batch1_only=True)  # the graph reshapes to [1, -1]: batches > 1 fail inside ORT
    clf = tlc_runtime.load(bundle.path, options={"intra_op_num_threads": 1})
    img = np.zeros((8, 8), np.uint8)
    assert clf.predict(img).label in clf.class_names
    with pytest.raises(tlc_runtime.InferenceError, match="^onnxruntime failed: ") as info:
        clf.predict_batch([img, img])
    assert "\n" not in str(info.value)
    assert _is_ours(info.value)


def test_hostile_files_are_one_line_input_errors(grey_clf, hostile_file):
    Image = pytest.importorskip("PIL.Image")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way (overflow, invalid cast)
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # Pillow's, from Image.open
        with pytest.raises(tlc_runtime.InputError, match=hostile_file.name) as info:
            grey_clf.predict(hostile_file)
    assert _is_ours(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value, dtype", [(1e300, np.float64), (-1e300, np.float64), (3e38, np.float32),
                                          (255.5, np.float64), (255.5, np.float32), (-0.5, np.float32)])
def test_float_pixels_outside_the_value_range_are_refused(grey_clf, value, dtype):
    img = np.full((8, 8), 100.0, dtype)
    img[3, 4] = value
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(tlc_runtime.InputError, match=r"value range 0\.\.255"):
            grey_clf.predict(img)


def test_float_pixels_on_the_value_range_edges_are_accepted(grey_clf):
    img = np.zeros((8, 8))
    img[0, 0] = 255.0
    assert grey_clf.predict(img).label == grey_clf.predict(img.astype(np.uint8)).label


def test_sixteen_bit_model_applies_its_own_value_range(make_bundle):
    clf = tlc_runtime.load(make_bundle(bit_depth=12).path, options={"intra_op_num_threads": 1})
    assert clf.predict(np.full((8, 8), 4095.0)).label in clf.class_names
    with pytest.raises(tlc_runtime.InputError, match=r"value range 0\.\.4095"):
        clf.predict(np.full((8, 8), 4096.0))


def test_pixel_limit_applies_to_predict_and_is_overridable(grey_bundle, image_files):
    path = image_files.npy("nine.npy", np.zeros((9, 9), np.uint8))
    clf = tlc_runtime.load(grey_bundle.path, options={"intra_op_num_threads": 1})
    assert clf.max_pixels == tlc_runtime.images.MAX_PIXELS
    assert clf.predict(path).label in clf.class_names
    clf.max_pixels = 80
    with pytest.raises(tlc_runtime.InputError, match="9×9"):
        clf.predict(path)
