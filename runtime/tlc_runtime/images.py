"""Reading image files into numpy arrays: .npy with numpy, PNG/JPEG/TIFF/BMP with Pillow (optional).

Returned arrays keep the file's real bit depth (a 16-bit PNG becomes uint16), are H×W for grey
images and H×W×3 for colour ones (alpha dropped). Files that cannot be read at their real depth
(16-bit colour or alpha: Pillow would cut them to 8 bits) are refused, and so is any file whose
header claims more than ``MAX_PIXELS`` pixels, before a pixel is decoded. DICOM is not read here:
load it with pydicom, apply your windowing and pass the array.

tlc's training reader applies the same rules through ``pixel_limit_problem`` and ``pillow_problem``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .preprocess import dtype_problem

MAX_PIXELS = 8192 * 8192
"""Largest image (height × width pixels) read from a file, by default: 64 Mi pixels, far above any
classifier input or a mammogram (about 4000×5000). It is checked from the file's header, so a small
file that claims a huge image (a decompression bomb) is refused before it can fill memory. Callers
raise it with ``max_pixels=``; for Pillow formats Pillow's own ``PIL.Image.MAX_IMAGE_PIXELS`` (twice
that is a hard error) still applies."""

PILLOW_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
IMAGE_SUFFIXES = PILLOW_SUFFIXES | {".npy"}
"""Every file suffix ``read_image`` reads (lower case); ``files.find_images`` walks folders for these."""
_GREY16_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def is_image_path(obj: object) -> bool:
    """True for the things ``read_image`` accepts (str or os.PathLike)."""
    return isinstance(obj, (str, os.PathLike))


def read_image(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Pixels of an image file; InputError naming the path if it is missing, unreadable, or claims
    more than ``max_pixels`` pixels (default ``MAX_PIXELS``)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"image file not found: {p}")
    if p.stat().st_size == 0:
        raise InputError(f"cannot read {p}: the file is empty (0 bytes)")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return _read_npy(p, max_pixels)
    if suffix in PILLOW_SUFFIXES:
        return _read_with_pillow(p, max_pixels)
    raise InputError(f"cannot read {p}: unsupported file type {suffix or '(none)'!r}; use .npy, "
                     f"{', '.join(sorted(PILLOW_SUFFIXES))}, or pass a numpy array")


def pixel_limit_problem(shape: tuple[int, ...], max_pixels: int = MAX_PIXELS) -> str | None:
    """Why an image of ``shape`` (H, W[, C], from a file header) is too large to decode, or None.
    Beyond H×W ≤ max_pixels, at most 4 values per pixel (a header may claim any channel count)."""
    if math.prod(shape[:2]) <= max_pixels and math.prod(shape) <= 4 * max_pixels:
        return None
    return (f"a {'×'.join(map(str, shape))} image has more pixels than the limit of {max_pixels} "
            "(tlc_runtime.images.MAX_PIXELS or the caller's max_pixels); a decompression bomb?")


def _read_npy(path: Path, max_pixels: int) -> np.ndarray:
    """The array in a .npy file; its header's shape and dtype are checked before any data is read."""
    try:
        with open(path, "rb") as fp:
            shape, dtype = _npy_header(fp)
            problem = dtype_problem(dtype) or pixel_limit_problem(shape, max_pixels)
            if problem:
                raise InputError(f"{path}: {problem}")
            fp.seek(0)
            return np.load(fp, allow_pickle=False)
    except InputError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read {path} as a .npy array: {exc}") from None


def _npy_header(fp: Any) -> tuple[tuple[int, ...], np.dtype]:
    fmt = np.lib.format
    version = fmt.read_magic(fp)
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _fortran_order, dtype = read_header(fp)
    return shape, dtype


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise InputError("reading PNG/JPEG/TIFF files needs Pillow: pip install Pillow "
                         "(or pass the pixels as a numpy array)") from None
    return Image


def _read_with_pillow(path: Path, max_pixels: int) -> np.ndarray:
    image_mod = _pillow()
    try:
        with image_mod.open(path) as img:  # reads the header only; pixels are decoded by _pixels
            problem = pillow_problem(img, max_pixels)
            if problem:
                raise InputError(f"{path}: {problem}")
            if getattr(img, "n_frames", 1) > 1:
                raise InputError(f"{path} holds {img.n_frames} frames; pass one frame as a numpy array")
            return _pixels(img)
    except InputError:
        raise
    except (OSError, ValueError, SyntaxError, image_mod.DecompressionBombError,
            image_mod.DecompressionBombWarning) as exc:  # the warning is raised when warnings are errors
        raise InputError(f"cannot read image {path}: {exc}") from None


def pillow_problem(img: Any, max_pixels: int = MAX_PIXELS) -> str | None:
    """Why an opened, not yet decoded Pillow image must not be read, or None: it is over the pixel
    limit, or it is 16-bit colour or alpha, which Pillow would silently cut to 8 bits."""
    width, height = img.size
    problem = pixel_limit_problem((height, width), max_pixels)
    if problem:
        return problem
    if img.mode in ("RGB", "RGBA", "LA") and "16" in _rawmode(img):
        return ("16-bit colour or alpha images are not supported (Pillow would cut them to 8 bits); "
                "save as 16-bit grey without alpha, or as 8-bit RGB")
    return None


def _rawmode(img: Any) -> str:
    """The decoder's raw mode (e.g. 'RGB;16B'), which tells 16-bit colour files apart."""
    tile = getattr(img, "tile", None) or []
    if not tile:
        return ""
    args = tile[0][3]
    if isinstance(args, tuple):
        args = args[0] if args else ""
    return str(args)


def _pixels(img: Any) -> np.ndarray:
    """Array of a Pillow image at its real bit depth: grey H×W, colour H×W×3."""
    mode = img.mode
    if mode in _GREY16_MODES:
        return np.asarray(img).astype(np.uint16)
    if mode == "I":  # 32-bit integer grey; 16-bit PNGs open in this mode on some Pillow versions
        arr = np.asarray(img)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise InputError(f"{img.filename}: 32-bit integer pixels outside 0..65535 are not supported")
        return arr.astype(np.uint16)
    if mode == "F":
        return np.asarray(img, dtype=np.float32)
    if mode in ("L", "1", "LA"):
        return np.asarray(img.convert("L"))
    return np.asarray(img.convert("RGB"))  # RGB, RGBA, P, CMYK, YCbCr, ... → 8-bit RGB, alpha dropped
