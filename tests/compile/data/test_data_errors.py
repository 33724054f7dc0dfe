"""Every bad input is a one-line DataError that names the file (or a DataWarning where not fatal)."""

from __future__ import annotations

import struct
import sys
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image
from tlc.data import DataWarning, load_dataset
from tlc.errors import ConfigError, DataError


def _load_error(source, match: str) -> str:
    with pytest.raises(DataError, match=match) as info:
        load_dataset(source)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_path(tmp_path):
    _load_error(tmp_path / "nope", r"nope: dataset not found")


def test_unsupported_source_type(tmp_path):
    (tmp_path / "data.json").write_text("{}")
    _load_error(tmp_path / "data.json", r"data\.json: unsupported dataset type '\.json'")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    _load_error(tmp_path / "empty", r"empty: no images found \(expected ROOT/CLASS/")


def test_single_class(make_folder):
    _load_error(make_folder({"only": 5}), r"data: only one class 'only' found")


def test_empty_class_folder(make_folder):
    root = make_folder({"a": 3, "b": 3})
    (root / "c").mkdir()
    _load_error(root, r"data/c: class folder has no images")


def test_loose_images_beside_class_folders(make_folder, write_image, rand_image):
    root = make_folder({"a": 3, "b": 3})
    write_image(root / "stray.png", rand_image(99))
    _load_error(root, r"stray\.png: images must sit in a class folder")


def test_split_folders_mixed_with_class_folders(make_folder):
    root = make_folder({"train": 2, "cats": 2})
    _load_error(root, r"data: mixes split folders \(train\) with class folders \(cats\)")


def test_truncated_image(make_folder):
    root = make_folder({"a": 3, "b": 3})
    png = root / "b" / "b_001.png"
    png.write_bytes(png.read_bytes()[:50])
    _load_error(root, r"data/b/b_001\.png: cannot read image \(")


def test_not_an_image(make_folder):
    root = make_folder({"a": 3, "b": 3})
    (root / "a" / "fake.jpg").write_text("hello")
    _load_error(root, r"data/a/fake\.jpg: cannot read image")


def test_float_tiff_with_nan(make_folder):
    root = make_folder({"a": 3, "b": 3})
    pixels = np.ones((6, 5), np.float32)
    pixels[2, 2] = np.nan
    Image.fromarray(pixels).save(root / "a" / "scan.tif")
    _load_error(root, r"data/a/scan\.tif: contains NaN or Inf pixels")


def test_finite_float_tiff_is_refused(make_folder):
    root = make_folder({"a": 3, "b": 3})
    Image.fromarray(np.full((6, 5), 0.5, np.float32)).save(root / "a" / "scan.tiff")
    _load_error(root, r"data/a/scan\.tiff: float pixels \(float32\) are not supported")


def test_mixed_8_and_16_bit(make_folder, write_image, rand_image):
    root = make_folder({"a": 3, "b": 3})
    write_image(root / "b" / "deep.png", rand_image(7, dtype=np.uint16, high=4000))
    message = _load_error(root, r"mixes 8-bit and 16-bit images")
    assert "a/a_000.png is 8-bit" in message and "b/deep.png is 16-bit" in message


def test_16bit_rgb_png_is_refused(make_folder):
    root = make_folder({"a": 3, "b": 3})
    _write_png_rgb16(root / "a" / "rgb16.png", np.full((4, 4, 3), 1000, np.uint16))
    _load_error(root, r"data/a/rgb16\.png: 16-bit colour or alpha images are not supported")


def test_same_image_in_train_and_test(make_folder, write_image, rand_image):
    root = make_folder({"a": 3, "b": 3}, split="train")
    make_folder({"a": 2, "b": 2}, split="test", root=root, seed=5)
    write_image(root / "test" / "b" / "copy.png", rand_image(1001))  # = train/b/b_001.png
    message = _load_error(root, r"the same image is in train and test")
    assert "train/b/b_001.png (train)" in message and "test/b/copy.png (test)" in message


def test_same_image_in_train_and_val_warns(make_folder, write_image, rand_image):
    root = make_folder({"a": 3, "b": 3}, split="train")
    make_folder({"a": 2, "b": 2}, split="val", root=root, seed=5)
    write_image(root / "val" / "a" / "copy.png", rand_image(0))  # = train/a/a_000.png
    with pytest.warns(DataWarning, match=r"identical images in train and val: train/a/a_000\.png \(train\) "
                                         r"and val/a/copy\.png \(val\)"):
        ds = load_dataset(root)
    assert ds.duplicates == {"train/val": 1}


def test_dicom_without_pydicom(make_folder, monkeypatch):
    root = make_folder({"a": 3, "b": 3})
    (root / "a" / "scan.dcm").write_bytes(b"\0" * 200)
    monkeypatch.setitem(sys.modules, "pydicom", None)
    _load_error(root, r"data/a/scan\.dcm: reading DICOM files needs pydicom")


def test_broken_dicom(make_folder):
    pytest.importorskip("pydicom")
    root = make_folder({"a": 3, "b": 3})
    (root / "a" / "scan.dcm").write_bytes(b"\0" * 200)
    _load_error(root, r"data/a/scan\.dcm: cannot read DICOM pixels")


@pytest.mark.parametrize("fractions", [(0.0, 0.2), (0.2, 1.0), (0.5, 0.5), (-0.1, 0.2)])
def test_bad_fractions_are_config_errors(make_folder, fractions):
    with pytest.raises(ConfigError, match="fraction"):
        load_dataset(make_folder({"a": 3, "b": 3}), val_fraction=fractions[0], test_fraction=fractions[1])


def _write_png_rgb16(path, rgb: np.ndarray) -> None:
    """A 48-bit RGB PNG written by hand (Pillow cannot write one)."""
    _write_png(path, rgb.shape[1], rgb.shape[0], 16, 2, (row.astype(">u2").tobytes() for row in rgb))


def _write_png(path, width: int, height: int, bit_depth: int, color_type: int, rows) -> None:
    """A PNG from raw rows, streamed through zlib (so a huge black image costs little memory)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj()
    idat = b"".join(packer.compress(b"\x00" + row) for row in rows) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))


def _deep_png(path, color_type: int, channels: int) -> None:
    pixels = np.random.default_rng(color_type).integers(0, 65536, (5, 4, channels)).astype(">u2")
    _write_png(path, 4, 5, 16, color_type, (row.tobytes() for row in pixels))


def _png_bomb(path, side: int = 13_000) -> None:
    row = bytes((side + 7) // 8)
    _write_png(path, side, side, 1, 0, (row for _ in range(side)))


@pytest.mark.parametrize("write", [
    lambda p: _deep_png(p, 2, 3), lambda p: _deep_png(p, 6, 4), lambda p: _deep_png(p, 4, 2), _png_bomb,
], ids=["rgb48", "rgba64", "grey-alpha32", "bomb-13000x13000"])
def test_training_and_runtime_refuse_the_same_file_for_the_same_reason(tmp_path, write):
    from tlc.data.images import read_image as training_read
    from tlc_runtime import InputError
    from tlc_runtime.images import read_image as runtime_read

    path = tmp_path / "x.png"
    write(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(DataError, match=r"^x\.png: ") as training:
            training_read(path, "x.png")
        with pytest.raises(InputError) as runtime:
            runtime_read(path)
    assert str(runtime.value) == f"{path}: {str(training.value).removeprefix('x.png: ')}"


@pytest.mark.parametrize("array", [
    np.random.default_rng(1).integers(0, 256, (5, 4), dtype=np.uint8),
    np.random.default_rng(2).integers(0, 65536, (5, 4), dtype=np.uint16),
    np.random.default_rng(3).integers(0, 256, (5, 4, 3), dtype=np.uint8),
], ids=["grey8", "grey16", "rgb24"])
def test_training_and_runtime_read_the_same_pixels(tmp_path, array):
    from tlc.data.images import read_image as training_read
    from tlc_runtime.images import read_image as runtime_read

    Image.fromarray(array).save(tmp_path / "x.png")
    np.testing.assert_array_equal(training_read(tmp_path / "x.png", "x.png"), runtime_read(tmp_path / "x.png"))
