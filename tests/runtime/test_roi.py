"""ROI cropping (tlc_runtime.roi): boxes, the automatic rule, the manifest record and the runtime API."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tlc_runtime.errors import InputError, SchemaError
from tlc_runtime.manifest import Preprocessing, parse_manifest
from tlc_runtime.preprocess import to_model_input
from tlc_runtime.roi import RoiRule, auto_box, crop
from tlc_runtime.schema import to_dict

RNG = np.random.default_rng(7)
EXACT = RoiRule("auto", margin=0.0, min_size=0.0)


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 3), (20, 30, 1)])
@pytest.mark.parametrize("box", [(0, 0, 30, 20), (3, 5, 4, 6), (10, 2, 30, 19), (np.int64(1), 1, 29, 2)])
def test_crop_equals_numpy_slicing(shape, box):
    image = RNG.integers(0, 256, shape).astype(np.uint8)
    x0, y0, x1, y1 = box
    np.testing.assert_array_equal(crop(image, box), image[y0:y1, x0:x1])


@pytest.mark.parametrize("box", [(0, 0, 31, 20), (-1, 0, 5, 5), (5, 5, 5, 9), (6, 2, 4, 9), (0, 0, 30, 21),
                                 (0, 0, 3), (0.0, 0, 3, 3), (True, 0, 3, 3), "0,0,3,3", 7])
def test_a_box_outside_the_image_empty_or_malformed_is_a_one_line_input_error(box):
    with pytest.raises(InputError) as info:
        crop(np.zeros((20, 30), np.uint8), box)
    assert "\n" not in str(info.value) and "roi" in str(info.value)


def test_auto_box_finds_a_bright_rectangle_on_a_black_border():
    image = np.zeros((100, 80), np.uint16)
    image[12:70, 9:61] = RNG.integers(900, 4000, (58, 52))
    assert auto_box(image, EXACT) == (9, 12, 61, 70)
    # the default margin (2 % of the side) widens it on each side, clipped to the frame
    assert auto_box(image, RoiRule("auto")) == (7, 10, 63, 72)


def test_auto_box_ignores_sparse_specks_and_keeps_the_minimum_size():
    image = np.zeros((64, 64), np.uint8)
    image[28:36, 40:48] = 200  # an 8×8 object ...
    image[2, 3] = image[60, 5] = 255  # ... and two single hot pixels, rows/cols at 1/64 < min_fraction 0.05
    assert auto_box(image, RoiRule("auto", margin=0.0, min_size=0.0, min_fraction=0.05)) == (40, 28, 48, 36)
    assert auto_box(image, RoiRule("auto", margin=0.0, min_size=0.25)) == (36, 24, 52, 40)  # 16 = 64/4, centred


def test_auto_box_is_the_same_for_an_image_and_its_float_copy():
    image = np.zeros((300, 260), np.uint16)
    image[40:250, 30:200] = RNG.integers(0, 4096, (210, 170))
    rule = RoiRule("auto", threshold=0.37, min_fraction=0.2, margin=0.0, min_size=0.0)
    assert auto_box(image, rule) == auto_box(image.astype(np.float32), rule) == auto_box(image.astype(float), rule)
    rgb = np.repeat(image[:, :, None], 3, axis=2)
    assert auto_box(rgb, rule) == auto_box(rgb.astype(np.float32), rule) == auto_box(image, rule)


def test_auto_box_is_the_full_frame_for_a_blank_or_flat_image():
    assert auto_box(np.zeros((40, 50), np.uint8), EXACT) == (0, 0, 50, 40)
    assert auto_box(np.full((40, 50, 3), 7.5, np.float32), EXACT) == (0, 0, 50, 40)


def test_auto_box_of_a_colour_image_uses_its_first_three_channels():
    grey = np.zeros((30, 40), np.uint8)
    grey[5:20, 10:35] = 180
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    rgba = np.concatenate([rgb, np.full((30, 40, 1), 255, np.uint8)], axis=2)
    assert auto_box(grey, EXACT) == auto_box(rgb, EXACT) == auto_box(rgba, EXACT) == (10, 5, 35, 20)


def _prep(roi: RoiRule | None) -> Preprocessing:
    return Preprocessing(resize="antialias-bilinear", value_range=(0.0, 255.0), mean=(0.5,) * 3, std=(0.25,) * 3,
                         channel_rule="replicate", roi=roi)


def test_roi_rule_is_recorded_and_parsed_strictly_in_the_manifest(grey_bundle):
    assert "roi" not in to_dict(grey_bundle.manifest)["preprocessing"]  # manifests without ROI as before
    data = to_dict(dataclasses.replace(grey_bundle.manifest, preprocessing=_prep(RoiRule("auto", threshold=0.3))))
    assert data["preprocessing"]["roi"] == {"mode": "auto", "threshold": 0.3, "min_fraction": 0.05,
                                            "margin": 0.02, "min_size": 0.25}
    assert parse_manifest(data).preprocessing.roi == RoiRule("auto", threshold=0.3)
    for bad in ({"mode": "auto", "treshold": 0.3}, {"mode": "crop"}, {"mode": "auto", "margin": 2.0},
                {"mode": "given", "threshold": 0.5}, {"threshold": 0.5}):
        data["preprocessing"]["roi"] = bad
        with pytest.raises(SchemaError, match="preprocessing.roi"):
            parse_manifest(data)


def _bundle_with_roi(make_bundle, roi: RoiRule | None):
    import tlc_runtime

    bundle = make_bundle("roi", height=8, width=8)
    m = bundle.manifest
    bundle.write_manifest(dataclasses.replace(m, preprocessing=dataclasses.replace(m.preprocessing, roi=roi)))
    return tlc_runtime.load(bundle.path, backend="onnxruntime", device="cpu", options={"intra_op_num_threads": 1})


def test_predict_with_a_box_equals_predicting_the_cropped_image(make_bundle):
    pytest.importorskip("onnxruntime")
    clf = _bundle_with_roi(make_bundle, RoiRule("given"))
    plain = _bundle_with_roi(make_bundle, None)
    image = RNG.integers(0, 256, (40, 50)).astype(np.uint8)
    box = (11, 6, 35, 30)
    cropped = image[6:30, 11:35]
    np.testing.assert_array_equal(clf.prepare(image, roi=box), plain.prepare(cropped))
    assert clf.predict(image, roi=box).probabilities == plain.predict(cropped).probabilities
    both = clf.predict_batch([image, image], rois=[box, (0, 0, 50, 40)])
    assert both[0].probabilities == plain.predict(cropped).probabilities
    assert both[1].probabilities == plain.predict(image).probabilities


def test_a_given_box_bundle_called_without_a_box_is_a_one_line_input_error(make_bundle):
    pytest.importorskip("onnxruntime")
    clf = _bundle_with_roi(make_bundle, RoiRule("given"))
    image = np.zeros((20, 20), np.uint8)
    for call in (lambda: clf.predict(image), lambda: clf.predict_batch([image, image], rois=[(0, 0, 5, 5), None]),
                 lambda: clf.predict(image, roi=(0, 0, 21, 20)),
                 lambda: clf.predict_batch([image, image], rois=[(0, 0, 5, 5)])):
        with pytest.raises(InputError) as info:
            call()
        assert "\n" not in str(info.value)


def test_an_auto_bundle_crops_in_the_runtime_exactly_as_the_rule_says(make_bundle):
    pytest.importorskip("onnxruntime")
    rule = RoiRule("auto", threshold=0.2)
    clf = _bundle_with_roi(make_bundle, rule)
    image = np.zeros((60, 90), np.uint8)
    image[20:50, 30:70] = RNG.integers(100, 256, (30, 40))
    box = auto_box(image, rule)
    assert box != (0, 0, 90, 60)
    expected = to_model_input(crop(image, box), clf.input_spec, _prep(None))
    np.testing.assert_array_equal(clf.prepare(image), expected)
    # a caller's box takes precedence over the automatic one
    np.testing.assert_array_equal(clf.prepare(image, roi=(0, 0, 90, 60)), to_model_input(image, clf.input_spec,
                                                                                       _prep(None)))
