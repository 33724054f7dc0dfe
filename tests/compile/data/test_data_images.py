"""One reader: whatever a file becomes at training time (tlc.data) it becomes at prediction time
(tlc_runtime), format by format, and a bundle predicts the same from the path as from that array."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tlc.data.images import read_image as training_read
from tlc.errors import DataError
from tlc_runtime import InputError
from tlc_runtime.images import read_image as runtime_read

RNG = np.random.default_rng(11)
GREY8 = RNG.integers(0, 256, (7, 9), dtype=np.uint8)
GREY16 = RNG.integers(0, 65536, (7, 9), dtype=np.uint16)
RGB = RNG.integers(0, 256, (7, 9, 3), dtype=np.uint8)
RGBA = RNG.integers(0, 256, (7, 9, 4), dtype=np.uint8)


def _pil(array: np.ndarray, mode: str | None = None, convert: str | None = None, **save) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        image = Image.fromarray(array, mode=mode) if mode else Image.fromarray(array)
        (image.convert(convert) if convert else image).save(path, **save)
    return write


def _npy(array: np.ndarray) -> Callable[[Path], None]:
    return lambda path: np.save(path, array)


# name: (file name, writer, native dtype, native ndim)
FORMATS: dict[str, tuple[str, Callable[[Path], None], type, int]] = {
    "png-grey8": ("x.png", _pil(GREY8), np.uint8, 2),
    "png-grey16": ("x.png", _pil(GREY16), np.uint16, 2),
    "png-rgb": ("x.png", _pil(RGB), np.uint8, 3),
    "png-rgb-identical-channels": ("x.png", _pil(np.repeat(GREY8[..., None], 3, axis=2)), np.uint8, 2),
    "png-rgba": ("x.png", _pil(RGBA, mode="RGBA"), np.uint8, 3),
    "png-grey-alpha": ("x.png", _pil(RGBA[..., :2], mode="LA"), np.uint8, 2),
    "png-palette": ("x.png", _pil(RGB, convert="P"), np.uint8, 3),
    "png-palette-grey": ("x.png", _pil(GREY8, convert="P"), np.uint8, 2),
    "png-palette-transparency": ("x.png", _pil(RGB, convert="P", transparency=0), np.uint8, 3),
    "png-1bit": ("x.png", _pil(GREY8, convert="1"), np.uint8, 2),
    "jpeg-grey": ("x.jpg", _pil(GREY8), np.uint8, 2),
    "jpeg-rgb": ("x.jpeg", _pil(RGB), np.uint8, 3),
    "jpeg-cmyk": ("x.jpg", _pil(RGB, convert="CMYK"), np.uint8, 3),
    "tiff-grey8": ("x.tif", _pil(GREY8), np.uint8, 2),
    "tiff-grey16": ("x.tiff", _pil(GREY16), np.uint16, 2),
    "tiff-int32-in-16-bit-range": ("x.tif", _pil(GREY16.astype(np.int32)), np.uint16, 2),
    "tiff-rgb": ("x.tif", _pil(RGB), np.uint8, 3),
    "bmp-grey": ("x.bmp", _pil(GREY8), np.uint8, 2),
    "bmp-rgb": ("x.bmp", _pil(RGB), np.uint8, 3),
    "npy-uint8": ("x.npy", _npy(GREY8), np.uint8, 2),
    "npy-uint16": ("x.npy", _npy(GREY16), np.uint16, 2),
    "npy-rgb": ("x.npy", _npy(RGB), np.uint8, 3),
    "npy-rgba": ("x.npy", _npy(RGBA), np.uint8, 3),
    "npy-hw1": ("x.npy", _npy(GREY8[..., None]), np.uint8, 2),
    "npy-uint16-big-endian": ("x.npy", _npy(GREY16.astype(">u2")), np.uint16, 2),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_training_and_runtime_read_identical_arrays(tmp_path, fmt):
    name, write, dtype, ndim = FORMATS[fmt]
    path = tmp_path / name
    write(path)
    training, runtime = training_read(path, name), runtime_read(path)
    assert (training.dtype, training.ndim) == (np.dtype(dtype), ndim)
    assert (runtime.dtype, runtime.shape) == (training.dtype, training.shape)
    np.testing.assert_array_equal(runtime, training)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_bundle_predicts_the_same_from_the_path_and_the_training_array(tmp_path, fmt, tiny_classifiers):
    name, write, dtype, _ = FORMATS[fmt]
    path = tmp_path / name
    write(path)
    clf = tiny_classifiers[8 if dtype == np.uint8 else 16]
    assert clf.predict(path) == clf.predict(training_read(path, name))


def test_native_form_keeps_values_and_drops_alpha(tmp_path):
    """The rules themselves, beyond agreement: alpha dropped, identical RGB is grey, 1-bit is 0/255."""
    for fmt, expected in (("png-rgba", RGBA[..., :3]), ("png-grey-alpha", RGBA[..., 0]),
                          ("png-rgb-identical-channels", GREY8), ("png-palette-grey", GREY8),
                          ("npy-rgba", RGBA[..., :3]), ("tiff-int32-in-16-bit-range", GREY16)):
        name, write, _, _ = FORMATS[fmt]
        write(tmp_path / name)
        np.testing.assert_array_equal(runtime_read(tmp_path / name), expected, err_msg=fmt)
    FORMATS["png-1bit"][1](tmp_path / "one.png")
    assert set(np.unique(runtime_read(tmp_path / "one.png")).tolist()) <= {0, 255}


# name: (file name, writer, what both readers say)
REFUSED: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "tiff-float32": ("x.tif", _pil(np.full((4, 5), 0.5, np.float32)), r"float pixels \(float32\)"),
    "tiff-float-nan": ("x.tif", _pil(np.full((4, 5), np.nan, np.float32)), "NaN or Inf"),
    "tiff-int32-negative": ("x.tif", _pil(np.full((4, 5), -3, np.int32)), "do not fit 16 bits"),
    "tiff-int32-over-16-bits": ("x.tif", _pil(np.full((4, 5), 70_000, np.int32)), "do not fit 16 bits"),
    "npy-float64": ("x.npy", _npy(np.full((4, 5), 0.5)), r"float pixels \(float64\)"),
    "npy-int64": ("x.npy", _npy(np.full((4, 5), 7, np.int64)), "pixel type int64"),
    "npy-4d": ("x.npy", _npy(np.zeros((2, 4, 5, 1), np.uint8)), "shape"),
    "npy-empty": ("x.npy", _npy(np.zeros((0, 5), np.uint8)), "empty"),
    "multi-frame-tiff": ("x.tif", lambda p: Image.fromarray(GREY8).save(
        p, save_all=True, append_images=[Image.fromarray(GREY8)]), "2 frames"),
}


@pytest.mark.parametrize("fmt", list(REFUSED))
def test_training_and_runtime_refuse_the_same_files_with_the_same_reason(tmp_path, fmt):
    name, write, reason = REFUSED[fmt]
    path = tmp_path / name
    write(path)
    with pytest.raises(DataError, match=rf"^data/{name}: .*{reason}") as training:
        training_read(path, f"data/{name}")
    with pytest.raises(InputError, match=reason) as runtime:
        runtime_read(path)
    assert str(runtime.value) == f"{path}: {str(training.value).removeprefix(f'data/{name}: ')}"
    assert "\n" not in str(training.value)
