"""Reading image files into numpy arrays: .npy with numpy, PNG/JPEG/TIFF/BMP with Pillow (optional).

Returned arrays keep the file's real bit depth (a 16-bit PNG becomes uint16), are H×W for grey
images and H×W×3 for colour ones (alpha dropped). DICOM is not read here: load it with pydicom,
apply your windowing and pass the array.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

PILLOW_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
_GREY16_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def is_image_path(obj: object) -> bool:
    """True for the things ``read_image`` accepts (str or os.PathLike)."""
    return isinstance(obj, (str, os.PathLike))


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Pixels of an image file; InputError naming the path if it is missing or unreadable."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"image file not found: {p}")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return _read_npy(p)
    if suffix in PILLOW_SUFFIXES:
        return _read_with_pillow(p)
    raise InputError(f"cannot read {p}: unsupported file type {suffix or '(none)'!r}; use .npy, "
                     f"{', '.join(sorted(PILLOW_SUFFIXES))}, or pass a numpy array")


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} as a .npy array: {exc}") from None


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise InputError("reading PNG/JPEG/TIFF files needs Pillow: pip install Pillow "
                         "(or pass the pixels as a numpy array)") from None
    return Image


def _read_with_pillow(path: Path) -> np.ndarray:
    image_mod = _pillow()
    try:
        with image_mod.open(path) as img:
            if getattr(img, "n_frames", 1) > 1:
                raise InputError(f"{path} holds {img.n_frames} frames; pass one frame as a numpy array")
            return _pixels(img)
    except InputError:
        raise
    except (OSError, ValueError, SyntaxError, image_mod.DecompressionBombError) as exc:
        raise InputError(f"cannot read image {path}: {exc}") from None


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
