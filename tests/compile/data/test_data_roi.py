"""--roi for training data: boxes CSVs per source kind, the automatic rule, and the digits' true boxes."""

from __future__ import annotations

import numpy as np
import pytest
from tlc.data import load_dataset
from tlc.data.roi import with_boxes, with_roi
from tlc.errors import DataError
from tlc_runtime.manifest import Preprocessing
from tlc_runtime.preprocess import to_model_input
from tlc_runtime.roi import RoiRule, auto_box

SIZE = 8


def _expected(ds, image: np.ndarray) -> np.ndarray:
    """The runtime's preparation of an already cropped image, with no ROI rule."""
    prep = Preprocessing(resize="antialias-bilinear", value_range=ds.value_range, mean=(0.0,) * 3,
                         std=(1.0,) * 3, channel_rule="replicate", source_bit_depth=ds.bit_depth)
    return to_model_input(image, ds.input_spec(SIZE), prep)


def _write_boxes(path, header: str, rows: list[str]):
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _boxes_for(ds, rng) -> dict[str, tuple[int, int, int, int]]:
    boxes = {}
    for split in ds.splits.values():
        for item_id, image in zip(split.ids, split.images, strict=True):
            h, w = image.shape[:2]
            x0, y0 = (int(v) for v in rng.integers(0, 3, 2))
            boxes[item_id] = (x0, y0, int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1)))
    return boxes


def test_folder_boxes_csv_crops_every_split_before_resizing(make_folder, tmp_path):
    root = make_folder({"cat": 6, "dog": 6})
    plain = load_dataset(root, seed=0)
    boxes = _boxes_for(plain, np.random.default_rng(0))
    csv = _write_boxes(tmp_path / "boxes.csv", "path,x0,y0,x1,y1", [f"{k},{','.join(map(str, b))}"
                                                                     for k, b in boxes.items()])
    ds = load_dataset(root, seed=0, roi=csv)
    assert ds.roi == RoiRule("given") and ds.preprocessing((0.0,) * 3, (1.0,) * 3).roi == RoiRule("given")
    assert ds.content_hash == plain.content_hash and ds.summary()["roi"] == "given"
    for name, split in ds.splits.items():
        arrays, _ = ds.arrays(name, SIZE)
        for i, (item_id, image) in enumerate(zip(split.ids, split.images, strict=True)):
            x0, y0, x1, y1 = boxes[item_id]
            assert split.rois[i] == boxes[item_id]
            np.testing.assert_array_equal(arrays[i], _expected(ds, image[y0:y1, x0:x1]))


def test_npz_boxes_csv_names_split_and_index(tmp_path, rand_image):
    images = np.stack([rand_image(i, (10, 12)) for i in range(8)])
    np.savez(tmp_path / "d.npz", train_images=images[:6], train_labels=np.arange(6) % 2,
             val_images=images[6:], val_labels=np.array([0, 1]))
    rows = [f"train,{i},1,2,{5 + i},9" for i in range(6)] + ["val,0,0,0,12,10", "val,1,3,3,4,4"]
    ds = load_dataset(tmp_path / "d.npz", roi=_write_boxes(tmp_path / "b.csv", "split,index,x0,y0,x1,y1", rows))
    assert ds.splits["train"].rois[5] == (1, 2, 10, 9) and ds.splits["val"].rois == ((0, 0, 12, 10), (3, 3, 4, 4))
    np.testing.assert_array_equal(ds.arrays("val", SIZE)[0][1], _expected(ds, images[7][3:4, 3:4]))


@pytest.mark.parametrize("rows, said", [
    (["train,0,0,0,4,4"], "no box for 'npz:train:1'"),
    (["train,0,0,0,4,4", "train,1,0,0,4,4", "train,0,1,1,2,2"], "b.csv:4: a second box for 'npz:train:0'"),
    (["train,0,0,0,4,4", "train,1,0,0,4,4", "test,0,0,0,4,4"], "box for 'npz:test:0', which is not an image"),
    (["train,0,0,0,4,4", "train,1,0,0,4.5,4"], "b.csv:3: index and x0, y0, x1, y1 must be integers"),
    (["train,0,0,0,4,4", "train,1,0,0,13,4"], "npz:train:1: roi (0, 0, 13, 4) is empty or outside"),
    (["train,0,0,0,4,4", "train,1,2,0,2,4"], "npz:train:1: roi (2, 0, 2, 4) is empty or outside"),
])
def test_bad_boxes_are_one_line_data_errors_naming_the_row_or_image(tmp_path, rand_image, rows, said):
    np.savez(tmp_path / "d.npz", train_images=np.stack([rand_image(i, (10, 12)) for i in range(2)]),
             train_labels=np.array([0, 1]))
    with pytest.raises(DataError, match=said.replace("(", r"\(").replace(")", r"\)")) as info:
        load_dataset(tmp_path / "d.npz", roi=_write_boxes(tmp_path / "b.csv", "split,index,x0,y0,x1,y1", rows))
    assert "\n" not in str(info.value)


def test_boxes_csv_with_the_wrong_header_says_which_columns_it_needs(make_folder, tmp_path):
    csv = _write_boxes(tmp_path / "b.csv", "split,index,x0,y0,x1,y1", ["train,0,0,0,1,1"])
    with pytest.raises(DataError, match="missing column.*path.*path,x0,y0,x1,y1 for a folder dataset"):
        load_dataset(make_folder({"cat": 3, "dog": 3}), roi=csv)


def test_auto_roi_crops_each_image_by_the_runtime_rule(tmp_path):
    rng = np.random.default_rng(3)
    images = np.zeros((6, 30, 40), np.uint8)
    for k, image in enumerate(images):
        image[3 + k:20 + k, 5 + 2 * k:30] = rng.integers(60, 256, (17, 25 - 2 * k))
    np.savez(tmp_path / "d.npz", train_images=images[:4], train_labels=np.array([0, 1, 0, 1]),
             val_images=images[4:], val_labels=np.array([0, 1]))
    ds = load_dataset(tmp_path / "d.npz", roi="auto")
    assert ds.roi == RoiRule("auto") and ds.splits["train"].rois is None
    arrays, _ = ds.arrays("train", SIZE)
    for array, image in zip(arrays, images[:4], strict=True):
        x0, y0, x1, y1 = auto_box(image, RoiRule("auto"))
        assert (x1 - x0, y1 - y0) != (40, 30)
        np.testing.assert_array_equal(array, _expected(ds, image[y0:y1, x0:x1]))


def test_a_given_rule_needs_boxes(make_folder):
    ds = load_dataset(make_folder({"cat": 3, "dog": 3}))
    with pytest.raises(DataError, match="needs the boxes"):
        with_roi(ds, RoiRule("given"))
    assert with_roi(ds, None) is ds


def test_cluttered_digits_can_return_each_digits_true_box():
    from sklearn.datasets import load_digits as sklearn_digits
    from tlc.data.digits import cluttered, cluttered_with_boxes

    pixels = np.rint(sklearn_digits().images[:50] * 255 / 16).astype(np.uint8)
    images, boxes = cluttered_with_boxes(pixels, np.random.default_rng(5), canvas=24)
    np.testing.assert_array_equal(images, cluttered(pixels, np.random.default_rng(5), canvas=24))
    for image, (x0, y0, x1, y1), digit in zip(images, boxes, pixels, strict=True):
        assert (x1 - x0, y1 - y0) == (8, 8) and min(x0, y0) >= 0 and max(x1, y1) <= 24
        assert (image[y0:y1, x0:x1] >= digit).all()  # the digit is drawn there (over the clutter)
    ds = with_boxes(_digits_dataset(images, boxes), {f"d:{i}": tuple(b) for i, b in enumerate(boxes)})
    assert ds.roi == RoiRule("given")


def _digits_dataset(images, boxes):
    from tlc.data.assemble import assemble
    from tlc.data.images import pixel_digest
    from tlc.data.records import Item, RawData

    items = tuple(Item(f"d:{i}", im, i % 2, None, None, pixel_digest(im)) for i, im in enumerate(images))
    return assemble(RawData("arrays", "test", ("a", "b"), items), seed=0, val_fraction=0.2, test_fraction=0.2)
