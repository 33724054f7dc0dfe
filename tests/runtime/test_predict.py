"""load → predict on real tiny bundles, checked against onnxruntime directly and a numpy forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import tlc_runtime
from tlc_runtime.preprocess import resize, to_model_input
from tlc_runtime.results import softmax

ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(42)


def _probs(pred: tlc_runtime.Prediction) -> np.ndarray:
    return np.array(list(pred.probabilities.values()))


def _image(h: int = 8, w: int = 8, *extra: int, dtype=np.uint8, hi: int = 255) -> np.ndarray:
    return RNG.integers(0, hi + 1, (h, w, *extra)).astype(dtype)


def test_single_array_matches_direct_onnxruntime_and_numpy(grey_bundle, grey_clf):
    img = _image(8, 8)
    pred = grey_clf.predict(img)
    m = grey_bundle.manifest
    x = to_model_input(img, m.input, m.preprocessing)[None]
    direct = ort.InferenceSession(str(grey_bundle.model_path), providers=["CPUExecutionProvider"]).run(
        None, {"pixels": x})[0]
    np.testing.assert_allclose(_probs(pred), softmax(direct)[0], rtol=0, atol=1e-7)
    expected = softmax(grey_bundle.reference_logits(img[None, :, :, None]))[0]
    np.testing.assert_allclose(_probs(pred), expected, rtol=0, atol=1e-5)
    assert pred.index == int(np.argmax(expected))
    assert pred.label == grey_clf.class_names[pred.index]
    assert pred.confidence == max(pred.probabilities.values())
    assert list(pred.probabilities) == list(grey_clf.class_names)
    assert sum(pred.probabilities.values()) == pytest.approx(1.0)
    assert pred.to_dict()["label"] == pred.label


def test_larger_image_is_resized_with_the_shared_resize(grey_bundle, grey_clf):
    img = _image(23, 17)
    method = grey_bundle.manifest.preprocessing.resize
    expected = softmax(grey_bundle.reference_logits(resize(img, 8, 8, method)[None, :, :, None]))[0]
    np.testing.assert_allclose(_probs(grey_clf.predict(img)), expected, atol=1e-5)


def test_npy_and_png_paths_give_the_array_result(grey_clf, tmp_path):
    pil = pytest.importorskip("PIL.Image")
    img = _image(12, 12)
    np.save(tmp_path / "x.npy", img)
    pil.fromarray(img).save(tmp_path / "x.png")
    ref = grey_clf.predict(img)
    assert grey_clf.predict(tmp_path / "x.npy") == ref
    assert grey_clf.predict(str(tmp_path / "x.png")) == ref


def test_batch_list_and_array_match_single_predictions(grey_bundle, grey_clf):
    imgs = np.stack([_image(8, 8) for _ in range(5)])
    singles = [grey_clf.predict(i) for i in imgs]
    for got in (grey_clf.predict_batch(list(imgs)), grey_clf.predict_batch(imgs),
                grey_clf.predict_batch(imgs[..., None]), grey_clf.predict_batch(iter(list(imgs)))):
        assert [p.index for p in got] == [p.index for p in singles]
        np.testing.assert_allclose([_probs(p) for p in got], [_probs(p) for p in singles], atol=1e-6)
    expected = softmax(grey_bundle.reference_logits(imgs[..., None]))
    np.testing.assert_allclose(softmax(grey_clf.predict_logits(imgs[..., None])), expected, atol=1e-5)


def test_rgb_image_into_grey_model_uses_bt601_luminance(grey_bundle, grey_clf):
    rgb = _image(8, 8, 3)
    luminance = np.clip(np.rint(rgb.astype(np.float64) @ [0.299, 0.587, 0.114]), 0, 255)
    prepared = grey_clf.prepare(rgb)
    assert prepared.shape == (8, 8, 1) and prepared.dtype == np.uint8
    assert np.abs(prepared[..., 0].astype(int) - luminance).max() <= 1  # float32 vs float64 rounding
    expected = softmax(grey_bundle.reference_logits(luminance[None, :, :, None]))[0]
    np.testing.assert_allclose(_probs(grey_clf.predict(rgb)), expected, atol=1e-2)
    grey = _image(8, 8)
    assert grey_clf.predict(np.repeat(grey[..., None], 3, axis=2)) == grey_clf.predict(grey)
    rgba = np.concatenate([rgb, _image(8, 8, 1)], axis=2)
    assert grey_clf.predict(rgba) == grey_clf.predict(rgb)


def test_grey_image_into_rgb_model_is_replicated(make_bundle):
    bundle = make_bundle(channels=3)
    clf = tlc_runtime.load(bundle.path, options={"intra_op_num_threads": 1})
    grey = _image(8, 8)
    replicated = np.repeat(grey[..., None], 3, axis=2)
    assert clf.prepare(grey).shape == (8, 8, 3)
    assert clf.predict(grey) == clf.predict(replicated)
    expected = softmax(bundle.reference_logits(replicated[None]))[0]
    np.testing.assert_allclose(_probs(clf.predict(grey)), expected, atol=1e-5)


def test_sixteen_bit_model_takes_uint16_arrays_and_png(make_bundle, tmp_path):
    bundle = make_bundle(bit_depth=12)
    clf = tlc_runtime.load(bundle.path, options={"intra_op_num_threads": 1})
    assert clf.input_spec.dtype == "float32"
    img = _image(8, 8, dtype=np.uint16, hi=4095)
    expected = softmax(bundle.reference_logits(img[None, :, :, None]))[0]
    np.testing.assert_allclose(_probs(clf.predict(img)), expected, atol=1e-5)
    pil = pytest.importorskip("PIL.Image")
    pil.fromarray(img).save(tmp_path / "x16.png")
    assert clf.predict(tmp_path / "x16.png") == clf.predict(img)
    with pytest.raises(tlc_runtime.InputError, match="12-bit"):
        clf.predict(img.astype(np.uint8))


def test_max_batch_splits_one_call_into_chunks(make_bundle, monkeypatch):
    from tlc_runtime.backends.onnxruntime import OnnxRuntimeSession

    bundle = make_bundle()
    clf = tlc_runtime.load(bundle.path, options={"max_batch": 3, "intra_op_num_threads": 1})
    sizes: list[int] = []
    original = OnnxRuntimeSession.infer_impl
    monkeypatch.setattr(OnnxRuntimeSession, "infer_impl", lambda self, b: sizes.append(len(b)) or original(self, b))
    imgs = np.stack([_image(8, 8) for _ in range(7)])[..., None]
    logits = clf.predict_logits(imgs)
    assert sizes == [3, 3, 1]
    np.testing.assert_allclose(logits, bundle.reference_logits(imgs), atol=1e-4)


def test_info_reports_what_runs(grey_clf):
    info = grey_clf.info
    assert (info.backend, info.device, info.precision) == ("onnxruntime", "cpu", "fp32")
    assert info.details["providers"] == ["CPUExecutionProvider"]
    assert "onnxruntime" in repr(grey_clf)


def test_predict_batch_resizes_same_shape_images_in_one_call(grey_clf, monkeypatch, tmp_path):
    from tlc_runtime import preprocess

    calls: list[int] = []
    original = preprocess.resize
    monkeypatch.setattr(preprocess, "resize", lambda images, *a, **k: calls.append(len(images)) or original(images, *a, **k))
    big = [_image(64, 48) for _ in range(5)]
    np.save(tmp_path / "big.npy", big[0])
    small = [_image(20, 30) for _ in range(2)]
    images = [big[0], small[0], big[1], big[2], tmp_path / "big.npy", small[1], big[3], big[4]]
    got = grey_clf.predict_batch(images)
    assert sorted(calls) == [2, 6]  # one call per (shape, dtype), a file joining the arrays of its shape
    singles = [grey_clf.predict(image) for image in images]
    np.testing.assert_array_equal([_probs(p) for p in got], [_probs(p) for p in singles])
    calls.clear()
    grey_clf.predict_batch(np.stack(big))
    assert calls == [5]


def test_runtime_applies_the_resize_filter_the_bundle_names(make_bundle):
    """Old bundles ("antialias-bilinear") keep their exact pixels; new ones get the area filter."""
    import dataclasses

    bundle = make_bundle(height=16, width=16)
    img = _image(200, 160)
    old_pixels = resize(img, 16, 16, "antialias-bilinear")
    new_pixels = resize(img, 16, 16, "area-antialias-bilinear")
    assert not np.array_equal(old_pixels, new_pixels)  # this image tells the two filters apart
    clf = tlc_runtime.load(bundle.path, options={"intra_op_num_threads": 1})
    np.testing.assert_array_equal(clf.prepare(img)[:, :, 0], old_pixels)
    assert clf.predict_batch([img, img])[0] == clf.predict(img)
    m = bundle.manifest
    bundle.write_manifest(dataclasses.replace(
        m, preprocessing=dataclasses.replace(m.preprocessing, resize="area-antialias-bilinear")))
    clf = tlc_runtime.load(bundle.path, options={"intra_op_num_threads": 1})
    np.testing.assert_array_equal(clf.prepare(img)[:, :, 0], new_pixels)
