"""Reading one image file or array into tlc's native pixel form (rules in ``tlc.data``'s docstring).

Native form: ``uint8`` or ``uint16``, H×W (grey) or H×W×3 (RGB). Every failure is a DataError
naming the file. Which Pillow files may be decoded at all (the pixel limit, no 16-bit colour or
alpha) is the runtime's rule, ``tlc_runtime.images.pillow_problem``, so deployment and training
refuse the same files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tlc_runtime.images import pillow_problem

from ..errors import DataError

if TYPE_CHECKING:
    from PIL.Image import Image
    from tlc_runtime.manifest import DicomPolicy

PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm",)
IMAGE_SUFFIXES = PILLOW_SUFFIXES + DICOM_SUFFIXES

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_TO_RGB_MODES = ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa")


def read_image(path: Path, name: str, dicom: DicomPolicy | None = None) -> np.ndarray:
    """Read ``path`` (PNG/JPEG/TIFF via Pillow, DICOM via the runtime's reader under ``dicom``);
    ``name`` is used in errors."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        from .dicom import read_dicom

        return read_dicom(path, name, dicom)
    return _read_pillow(path, name)


def _read_pillow(path: Path, name: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            problem = pillow_problem(im)  # the runtime's rules: pixel limit, no 16-bit colour or alpha
            if problem:
                raise DataError(f"{name}: {problem}")
            if getattr(im, "n_frames", 1) > 1:
                raise DataError(f"{name}: has {im.n_frames} frames/pages; save one image per file")
            im.load()
            return _from_pillow(im, name)
    except DataError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBomb...
        reason = str(exc).splitlines()[0].replace(f" '{path}'", "") if str(exc) else type(exc).__name__
        raise DataError(f"{name}: cannot read image ({reason}); replace or remove the file") from None


def _from_pillow(im: Image, name: str) -> np.ndarray:
    mode = im.mode
    if mode == "1":
        im = im.convert("L")
    elif mode == "LA":
        im = im.getchannel("L")
    elif mode in _TO_RGB_MODES:
        im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    array = np.asarray(im)
    if mode in _SIXTEEN_BIT_MODES:
        return _to_uint16(array, name)
    return normalize_array(array, name)


def _to_uint16(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.uint16:
        return np.ascontiguousarray(array)
    lo, hi = int(array.min()), int(array.max())
    if lo < 0 or hi > 65535:
        raise DataError(f"{name}: pixel values {lo}..{hi} do not fit 16 bits unsigned; "
                        "save as 8-bit or 16-bit unsigned")
    return array.astype(np.uint16)


def normalize_array(array: np.ndarray, name: str) -> np.ndarray:
    """Validate an in-memory image and bring it to native form (drop alpha, identical RGB → grey)."""
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise DataError(f"{name}: contains NaN or Inf pixels; fix or remove the image")
        raise DataError(f"{name}: float pixels ({array.dtype}) are not supported; "
                        "store 8-bit or 16-bit unsigned integers")
    if array.dtype.kind == "u" and array.dtype.itemsize in (1, 2):
        array = array.astype(np.uint8 if array.dtype.itemsize == 1 else np.uint16, copy=False)
    else:
        raise DataError(f"{name}: pixel type {array.dtype} is not supported; use uint8 or uint16")
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[:, :, 0] if array.shape[2] == 1 else array[:, :, :3]
    elif array.ndim != 2:
        raise DataError(f"{name}: expected an H×W or H×W×{{1,3,4}} image, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"{name}: image is empty (shape {array.shape})")
    if array.ndim == 3 and (array[:, :, 0] == array[:, :, 1]).all() and (array[:, :, 0] == array[:, :, 2]).all():
        array = array[:, :, 0]
    return np.ascontiguousarray(array)


def pixel_digest(image: np.ndarray) -> bytes:
    """sha256 of an image's dtype, shape and pixels: equal digests mean identical images."""
    h = hashlib.sha256()
    h.update(f"{image.dtype.name}|{'x'.join(map(str, image.shape))}|".encode())
    h.update(np.ascontiguousarray(image, dtype=image.dtype.newbyteorder("<")).tobytes())
    return h.digest()
