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
        grey_clf.predict_batch([np.zeros((8, 8)), np.full((8, 8), np.nan)], value_range=(0, 255))


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
    with pytest.raises(tlc_runtime.InputError,
                       match=r"scan\.dcm: (cannot read DICOM pixels|reading DICOM files needs pydicom)"):
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
def test_float_pixels_outside_the_declared_range_are_refused(grey_clf, value, dtype):
    img = np.full((8, 8), 100.0, dtype)
    img[3, 4] = value
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(tlc_runtime.InputError, match=r"declared value_range 0\.\.255"):
            grey_clf.predict(img, value_range=(0, 255))


def test_float_pixels_on_the_declared_range_edges_are_accepted(grey_clf):
    img = np.zeros((8, 8))
    img[0, 0] = 255.0
    assert grey_clf.predict(img, value_range=(0, 255)) == grey_clf.predict(img.astype(np.uint8))


def test_sixteen_bit_model_applies_its_own_range(make_bundle):
    clf = tlc_runtime.load(make_bundle(bit_depth=12).path, options={"intra_op_num_threads": 1})
    assert clf.predict(np.full((8, 8), 4095, np.uint16)).label in clf.class_names
    assert clf.predict(np.full((8, 8), 4095.0), value_range=(0, 4095)).label in clf.class_names
    with pytest.raises(tlc_runtime.InputError, match=r"range 0\.\.4095"):
        clf.predict(np.full((8, 8), 4096, np.uint16))


def test_pixel_limit_applies_to_predict_and_is_overridable(grey_bundle, image_files):
    path = image_files.npy("nine.npy", np.zeros((9, 9), np.uint8))
    clf = tlc_runtime.load(grey_bundle.path, options={"intra_op_num_threads": 1})
    assert clf.max_pixels == tlc_runtime.images.MAX_PIXELS
    assert clf.predict(path).label in clf.class_names
    clf.max_pixels = 80
    with pytest.raises(tlc_runtime.InputError, match="9×9"):
        clf.predict(path)


def _replace_model(bundle, weights: np.ndarray, bias: np.ndarray) -> None:
    """Give the bundle's linear model other weights W, b (and output width), then re-record the hashes."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(bundle.model_path)
    new = {"W": weights.astype(np.float32), "b": bias.astype(np.float32)}
    for i, init in enumerate(model.graph.initializer):
        if init.name in new:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(new[init.name], init.name))
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = weights.shape[1]
    onnx.checker.check_model(model)
    onnx.save(model, bundle.model_path)
    bundle.rehash()


@pytest.mark.parametrize("poison", [np.nan, np.inf, 1e38], ids=["nan-weight", "inf-weight", "overflow"])
def test_non_finite_logits_are_an_inference_error_not_a_prediction(make_bundle, poison):
    bundle = make_bundle()
    weights = bundle.weights.copy()
    weights[:, 1] = poison  # overflow: 64 pixels × 1e38 exceeds float32 -> inf logits
    _replace_model(bundle, weights, bundle.bias)
    clf = tlc_runtime.load(bundle.path, options={"intra_op_num_threads": 1})
    img = np.full((8, 8), 200, np.uint8)  # every centred pixel > 0, so the poisoned column is ±inf or NaN
    for call in (clf.predict, lambda x: clf.predict_batch([x, x]), lambda x: clf.predict_logits(x[None, :, :, None])):
        with pytest.raises(tlc_runtime.InferenceError, match="NaN or Inf logits") as info:
            call(img)
        assert "\n" not in str(info.value)
    with pytest.raises(tlc_runtime.InferenceError, match="NaN or Inf logits"):
        clf.check()


def test_model_output_width_other_than_the_class_count_is_an_inference_error(make_bundle):
    bundle = make_bundle()  # 3 classes; golden logits keep their 3 columns, so only predict can see it
    _replace_model(bundle, bundle.weights[:, :2], bundle.bias[:2])
    clf = tlc_runtime.load(bundle.path, options={"intra_op_num_threads": 1})
    with pytest.raises(tlc_runtime.InferenceError, match=r"shape \(1, 2\).*3 classes"):
        clf.predict(np.zeros((8, 8), np.uint8))
    with pytest.raises(tlc_runtime.InferenceError, match=r"shape \(2, 2\).*3 classes"):
        clf.predict_batch([np.zeros((8, 8), np.uint8)] * 2)
