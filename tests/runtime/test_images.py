"""Reading image files at their real bit depth, and clear errors when that is impossible."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from tlc_runtime import InputError
from tlc_runtime.images import read_image

Image = pytest.importorskip("PIL.Image")
RNG = np.random.default_rng(3)


def test_npy_roundtrip(tmp_path):
    arr = RNG.integers(0, 65536, (5, 7), dtype=np.uint16)
    np.save(tmp_path / "a.npy", arr)
    np.testing.assert_array_equal(read_image(tmp_path / "a.npy"), arr)


def test_float_files_are_refused_unless_the_caller_allows_floats(tmp_path):
    arr = RNG.random((5, 7)).astype(np.float32)
    np.save(tmp_path / "a.npy", arr)
    Image.fromarray(arr).save(tmp_path / "a.tif")
    for path in (tmp_path / "a.npy", tmp_path / "a.tif"):
        with pytest.raises(InputError, match=rf"^{path}: float pixels \(float32\)"):
            read_image(path)
        np.testing.assert_array_equal(read_image(path, allow_float=True), arr)


def test_png_8_and_16_bit_keep_their_depth(tmp_path):
    grey8 = RNG.integers(0, 256, (9, 6), dtype=np.uint8)
    grey16 = RNG.integers(0, 65536, (9, 6), dtype=np.uint16)
    Image.fromarray(grey8).save(tmp_path / "g8.png")
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    got8, got16 = read_image(tmp_path / "g8.png"), read_image(tmp_path / "g16.png")
    assert got8.dtype == np.uint8 and got16.dtype == np.uint16
    np.testing.assert_array_equal(got8, grey8)
    np.testing.assert_array_equal(got16, grey16)


def test_rgba_becomes_rgb_and_tiff_reads(tmp_path):
    rgba = RNG.integers(0, 256, (4, 5, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "c.png")
    got = read_image(tmp_path / "c.png")
    assert got.shape == (4, 5, 3)
    np.testing.assert_array_equal(got, rgba[..., :3])
    grey = RNG.integers(0, 65536, (3, 4), dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "t.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "t.tif"), grey)


def test_jpeg_reads_as_uint8(tmp_path):
    Image.fromarray(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "x.jpg")
    got = read_image(tmp_path / "x.jpg")
    assert got.shape == (8, 8, 3) and got.dtype == np.uint8


def test_corrupt_and_multiframe_files(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(InputError, match="bad.png"):
        read_image(tmp_path / "bad.png")
    frames = [Image.fromarray(np.full((4, 4), v, np.uint8)) for v in (1, 2)]
    frames[0].save(tmp_path / "stack.tif", save_all=True, append_images=frames[1:])
    with pytest.raises(InputError, match="2 frames"):
        read_image(tmp_path / "stack.tif")


def test_missing_pillow_says_what_to_install(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "x.png")
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(InputError, match="pip install Pillow"):
        read_image(tmp_path / "x.png")



def test_zero_byte_npy_is_an_input_error(image_files):
    with pytest.raises(InputError, match="empty.npy"):
        read_image(image_files.zero_bytes("empty.npy"))


def test_npy_header_over_the_pixel_limit_is_refused_before_reading(image_files):
    with pytest.raises(InputError, match=r"huge.npy: .*200000×200000.*max_pixels"):
        read_image(image_files.npy_header("huge.npy", (200_000, 200_000)))


def test_npy_header_with_huge_channel_axis_is_refused(image_files):
    with pytest.raises(InputError, match="deep.npy"):
        read_image(image_files.npy_header("deep.npy", (4, 4, 2**40)))


def test_png_bomb_is_refused_before_decoding(image_files):
    bomb = image_files.png_bomb("bomb.png")
    assert bomb.stat().st_size < 1_000_000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # Pillow's warning is no guard
        with pytest.raises(InputError, match=r"bomb.png: .*13000×13000.*max_pixels"):
            read_image(bomb)


@pytest.mark.parametrize("suffix", [".npy", ".png", ".tif"])
def test_pixel_limit_is_overridable(tmp_path, suffix):
    img = RNG.integers(0, 256, (8, 8), dtype=np.uint8)
    path = tmp_path / f"x{suffix}"
    np.save(path, img) if suffix == ".npy" else Image.fromarray(img).save(path)
    with pytest.raises(InputError, match="8×8"):
        read_image(path, max_pixels=63)
    np.testing.assert_array_equal(read_image(path, max_pixels=64), img)


@pytest.mark.parametrize("color_type, channels", [(2, 3), (6, 4), (4, 2)])
def test_16bit_colour_or_alpha_png_is_refused(image_files, color_type, channels):
    pixels = RNG.integers(0, 65536, (5, 4, channels)).astype(">u2")
    path = image_files.png("deep.png", 4, 5, 16, color_type, (row.tobytes() for row in pixels))
    with pytest.raises(InputError, match="deep.png: 16-bit colour or alpha images are not supported"):
        read_image(path)
