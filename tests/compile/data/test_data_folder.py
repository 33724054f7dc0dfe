"""Image-folder sources: flat and split layouts, grey/RGB rules, 16-bit PNG, DICOM."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from tlc.data import Dataset, load_dataset


def test_flat_folder_is_split_automatically_into_three(make_folder):
    root = make_folder({"normal": 10, "pneumonia": 12})
    ds = load_dataset(root, seed=3)
    assert isinstance(ds, Dataset)
    assert ds.kind == "folder" and ds.source == str(root)
    assert ds.class_names == ("normal", "pneumonia")
    assert sum(len(s) for s in ds.splits.values()) == 22
    for name in ("train", "val", "test"):
        split = ds.splits[name]
        assert set(split.labels.tolist()) == {0, 1}, f"{name} lacks a class"
        assert split.labels.dtype == np.int64 and split.groups is None
        for image_id, label, image in zip(split.ids, split.labels, split.images, strict=True):
            assert image_id.split("/")[0] == ds.class_names[label]
            assert image.shape == (6, 5) and image.dtype == np.uint8
            on_disk = np.asarray(Image.open(root / image_id))
            np.testing.assert_array_equal(image, on_disk)
    assert (ds.channels, ds.bit_depth, ds.value_range) == (1, 8, (0.0, 255.0))
    assert len(ds.splits["train"]) > len(ds.splits["val"])


def test_folder_with_split_dirs_is_used_as_given(make_folder):
    root = make_folder({"a": 4, "b": 3}, split="train", seed=1)
    make_folder({"a": 2, "b": 2}, split="test", root=root, seed=2)
    ds = load_dataset(root)
    sizes = {name: len(s) for name, s in ds.splits.items()}
    assert sizes == {"train": 7, "val": 0, "test": 4}
    assert all(i.startswith("test/") for i in ds.splits["test"].ids)
    assert ds.arrays("val", 8)[0].shape == (0, 8, 8, 1)


def test_nested_files_and_hidden_entries(tmp_path, write_image, rand_image):
    root = tmp_path / "d"
    write_image(root / "a" / "patient1" / "x.png", rand_image(1))
    write_image(root / "a" / "y.PNG", rand_image(2))
    write_image(root / "a" / ".hidden" / "z.png", rand_image(3))
    (root / "a" / "notes.txt").write_text("not an image")
    for i in range(2):
        write_image(root / "b" / f"{i}.png", rand_image(10 + i))
    ds = load_dataset(root, val_fraction=0.2, test_fraction=0.2)
    ids = sorted(i for s in ds.splits.values() for i in s.ids)
    assert ids == ["a/patient1/x.png", "a/y.PNG", "b/0.png", "b/1.png"]


def test_mixed_grey_and_rgb_become_rgb(tmp_path, write_image, rand_image):
    root = tmp_path / "d"
    grey = rand_image(1)
    write_image(root / "a" / "grey.png", grey)
    write_image(root / "a" / "rgb.png", rand_image(2, (6, 5, 3)))
    write_image(root / "b" / "rgba.png", rand_image(3, (6, 5, 4)))
    write_image(root / "b" / "rgb2.jpg", np.full((6, 5, 3), (200, 10, 10), np.uint8))
    ds = load_dataset(root, val_fraction=0.25, test_fraction=0.25)
    assert ds.channels == 3
    images = _all_images(ds)
    assert all(im.shape == (6, 5, 3) for im in images.values())
    np.testing.assert_array_equal(images["a/grey.png"], np.repeat(grey[:, :, None], 3, axis=2))
    rgba = rand_image(3, (6, 5, 4))
    np.testing.assert_array_equal(images["b/rgba.png"], rgba[:, :, :3])


def test_rgb_with_identical_channels_counts_as_grey(tmp_path, write_image, rand_image):
    root = tmp_path / "d"
    for c in ("a", "b"):
        for i in range(3):
            grey = rand_image(ord(c) * 10 + i)
            write_image(root / c / f"{i}.png", np.repeat(grey[:, :, None], 3, axis=2))
    grey_palette = rand_image(99)
    Image.fromarray(grey_palette).convert("P").save(root / "a" / "palette.png")
    ds = load_dataset(root)
    assert ds.channels == 1
    np.testing.assert_array_equal(_all_images(ds)["a/palette.png"], grey_palette)
    assert all(im.ndim == 2 for s in ds.splits.values() for im in s.images)


def test_16bit_png_uses_its_real_bit_depth(tmp_path, write_image, rand_image):
    root = tmp_path / "d"
    originals = {}
    for n, (split, c) in enumerate((s, c) for s in ("train", "val") for c in ("a", "b") for _ in range(2)):
        image = rand_image(n, (6, 6), dtype=np.uint16, high=3000)
        if n == 0:
            image[0, 0] = 4000  # the train maximum: 12 bits
        rel = f"{split}/{c}/{n}.png"
        write_image(root / rel, image)
        originals[rel] = image
    ds = load_dataset(root)
    assert ds.bit_depth == 12 and ds.value_range == (0.0, 4095.0)
    assert all(im.dtype == np.uint16 for s in ds.splits.values() for im in s.images)
    for split in ("train", "val"):
        x, y = ds.arrays(split, 6)  # same size: the shared resize must return the exact values
        assert x.dtype == np.float32 and x.shape == (4, 6, 6, 1)
        for row, image_id in zip(x, ds.splits[split].ids, strict=True):
            np.testing.assert_array_equal(row[:, :, 0], originals[image_id].astype(np.float32))
    assert float(ds.arrays("train", 6)[0].max()) == 4000.0


def test_16bit_tiff_small_values_still_get_nine_bits(tmp_path, write_image, rand_image):
    root = tmp_path / "d"
    for i in range(6):
        write_image(root / "ab"[i % 2] / f"{i}.tif", rand_image(i, dtype=np.uint16, high=200))
    ds = load_dataset(root)
    assert ds.bit_depth == 9 and ds.value_range == (0.0, 511.0)
    np.testing.assert_array_equal(_all_images(ds)["a/0.tif"], rand_image(0, dtype=np.uint16, high=200))


def test_dicom_files_are_read_with_pydicom(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    source = get_testdata_file("CT_small.dcm")
    if source is None:
        pytest.skip("pydicom's CT_small.dcm test file is not available offline")
    ds_in = pydicom.dcmread(source)
    root = tmp_path / "d"
    for c, offset in (("a", 0), ("b", 7)):
        for i in range(3):
            ds_in.PixelData = (ds_in.pixel_array + offset + i).astype(ds_in.pixel_array.dtype).tobytes()
            (root / c).mkdir(parents=True, exist_ok=True)
            ds_in.save_as(root / c / f"{i}.dcm")
    ds = load_dataset(root)
    expected = pydicom.dcmread(source).pixel_array
    assert expected.max() == 2191  # stored values of CT_small: 12 bits whatever lands in train
    assert ds.bit_depth == 12 and ds.channels == 1
    image = _all_images(ds)["a/0.dcm"]
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, expected.astype(np.uint16))


def test_dicom_monochrome1_is_inverted(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    source = get_testdata_file("CT_small.dcm")
    if source is None:
        pytest.skip("pydicom's CT_small.dcm test file is not available offline")
    from tlc.data.images import read_image

    ds_in = pydicom.dcmread(source)
    ds_in.PhotometricInterpretation = "MONOCHROME1"
    ds_in.save_as(tmp_path / "m1.dcm")
    image = read_image(tmp_path / "m1.dcm", "m1.dcm")
    stored = pydicom.dcmread(source).pixel_array.astype(np.int64)
    np.testing.assert_array_equal(image, (2 ** int(ds_in.BitsStored) - 1 - stored).astype(np.uint16))


def _all_images(ds: Dataset) -> dict[str, np.ndarray]:
    return {i: im for s in ds.splits.values() for i, im in zip(s.ids, s.images, strict=True)}


def test_bmp_files_are_training_images_as_the_runtime_reads_them(tmp_path, write_image, rand_image):
    root = tmp_path / "d"
    for c in ("a", "b"):
        for i in range(3):
            write_image(root / c / f"{i}.bmp", rand_image(ord(c) * 10 + i))
    ds = load_dataset(root)
    assert sum(len(s) for s in ds.splits.values()) == 6
    np.testing.assert_array_equal(_all_images(ds)["a/0.bmp"], rand_image(ord("a") * 10))


def test_16bit_depth_covers_every_split_so_the_runtime_accepts_every_image(tmp_path, write_image, rand_image):
    """The runtime refuses values above the model's bit depth: val/test images must lie on it too."""
    root = tmp_path / "d"
    for n, (split, c) in enumerate((s, c) for s in ("train", "val") for c in ("a", "b") for _ in range(2)):
        image = rand_image(n, (6, 6), dtype=np.uint16, high=3000)
        if (split, n) == ("val", 5):
            image[0, 0] = 5000  # above every train value (12 bits): 13 bits
        write_image(root / f"{split}/{c}/{n}.png", image)
    ds = load_dataset(root)
    assert ds.bit_depth == 13 and ds.value_range == (0.0, 8191.0)
    assert float(ds.arrays("val", 6)[0].max()) == 5000.0
