"""Reading image files into native pixel form: the one reader, used by training (``tlc.data``) and prediction.

Every file becomes the array ``native.to_native`` defines (uint8 or uint16, H×W grey or H×W×3 RGB),
so a file is the same array at training time and at prediction time. Decoding: ``.npy`` with numpy,
PNG/JPEG/TIFF/BMP with Pillow (optional), ``.dcm`` through ``tlc_runtime.dicom.read_dicom`` (the one
DICOM hook, ``_read_dicom``). Rules, format by format:

- 8-bit grey (L) stays uint8 H×W; 1-bit becomes uint8 0/255 (Pillow's "1" → "L").
- 16-bit grey (modes I;16*) stays uint16. Mode "I" (32-bit integers: 16-bit PNGs on some Pillow
  versions, int32 TIFFs) becomes uint16 when every value fits 0..65535, else it is refused.
- Grey with alpha (LA) keeps its grey channel; RGBA and H×W×4 arrays drop alpha.
- Palette (P, PA, also with a transparency entry), CMYK, YCbCr and other colour modes become 8-bit
  RGB: the palette's colours, transparency ignored (never composited onto a background).
- An RGB image whose three channels are identical is grey (H×W): a grey palette PNG, a grey JPEG
  saved as RGB, an RGB ``.npy`` of copies.
- BMP is read like any Pillow format (training reads and lists ``.bmp`` files too).
- Float pixels (TIFF mode F, float ``.npy``) are refused (NaN/Inf with their own message): native
  images are integers. Prediction can still take them with a declared range: ``Classifier.prepare``
  reads with ``allow_float=True`` and ``preprocess.to_model_input`` maps ``value_range`` or refuses.
- ``.npy`` arrays of other integer types (int64, uint32...) are refused: their bit depth is unknown.
- 16-bit colour or alpha files are refused (Pillow would cut them to 8 bits), so are multi-frame
  files, and any file whose header claims more than ``MAX_PIXELS`` pixels, before a pixel is decoded.

Every failure is an ``InputError`` whose message starts with the path (``"{path}: reason"``), so
training's wrapper can name the file its own way.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError
from .native import to_native, to_uint16
from .preprocess import check_image, dtype_problem

if TYPE_CHECKING:
    from .manifest import DicomPolicy

MAX_PIXELS = 8192 * 8192
"""Largest image (height × width pixels) read from a file, by default: 64 Mi pixels, far above any
classifier input or a mammogram (about 4000×5000). It is checked from the file's header, so a small
file that claims a huge image (a decompression bomb) is refused before it can fill memory. Callers
raise it with ``max_pixels=``; for Pillow formats Pillow's own ``PIL.Image.MAX_IMAGE_PIXELS`` (twice
that is a hard error) still applies."""

PILLOW_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
DICOM_SUFFIXES = frozenset({".dcm"})
SUFFIXES = PILLOW_SUFFIXES | DICOM_SUFFIXES | {".npy"}
"""Every file suffix ``read_image`` reads (lower case); ``files.find_images`` walks folders for these."""


def is_image_path(obj: object) -> bool:
    """True for the things ``read_image`` accepts (str or os.PathLike)."""
    return isinstance(obj, (str, os.PathLike))


def read_image(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS, *,
               allow_float: bool = False, dicom: DicomPolicy | None = None) -> np.ndarray:
    """Native pixels of an image file; InputError naming the path if it is missing, unreadable, claims
    more than ``max_pixels`` pixels (default ``MAX_PIXELS``) or breaks a rule of the module docstring.
    ``allow_float`` returns float pixels as stored (finite, H×W or H×W×3) instead of refusing them.
    ``.dcm`` files are read under ``dicom`` (None: ``DicomPolicy()``, the stored values)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"image file not found: {p}")
    try:
        return _read(p, p.suffix.lower(), max_pixels, allow_float, dicom)
    except InputError as exc:
        raise InputError(f"{p}: {exc}") from None


def _read(path: Path, suffix: str, max_pixels: int, allow_float: bool,
          dicom: DicomPolicy | None) -> np.ndarray:
    """``read_image`` without the path in its messages."""
    if path.stat().st_size == 0:
        raise InputError("the file is empty (0 bytes)")
    if suffix in DICOM_SUFFIXES:
        return _read_dicom(path, max_pixels, dicom)
    if suffix == ".npy":
        pixels = _read_npy(path, max_pixels)
    elif suffix in PILLOW_SUFFIXES:
        pixels = _read_with_pillow(path, max_pixels)
    else:
        raise InputError(f"unsupported file type {suffix or '(none)'!r}; use {', '.join(sorted(SUFFIXES))}, "
                         "or pass a numpy array")
    if allow_float and pixels.dtype.kind == "f":
        return check_image(pixels)
    return to_native(pixels)


def _read_dicom(path: Path, max_pixels: int, policy: DicomPolicy | None) -> np.ndarray:
    """The one place DICOM enters the reader: ``tlc_runtime.dicom.read_dicom`` (pydicom, optional)."""
    from .dicom import read_dicom

    try:
        return to_native(read_dicom(path, policy, max_pixels))
    except InputError as exc:  # its messages name the path; read_image adds it once
        raise InputError(str(exc).removeprefix(f"{path}: ")) from None


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
                raise InputError(problem)
            fp.seek(0)
            return np.load(fp, allow_pickle=False)
    except InputError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read it as a .npy array ({_first_line(exc)})") from None


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
                raise InputError(problem)
            if getattr(img, "n_frames", 1) > 1:
                raise InputError(f"holds {img.n_frames} frames; save one image per file, or pass one frame "
                                 "as a numpy array")
            return _pixels(img)
    except InputError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBomb*, and more
        reason = _first_line(exc).replace(f" '{path}'", "").replace(f" {str(path)!r}", "")
        raise InputError(f"cannot read image ({reason})") from None


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


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
    """Decoded array of a Pillow image before the native-form rules: integer grey at its real depth,
    float32 for mode F, the grey channel of LA, 8-bit RGB for every colour mode."""
    mode = img.mode
    if mode == "F":
        return np.asarray(img, dtype=np.float32)
    if mode == "I" or mode.startswith("I;16"):
        return to_uint16(np.asarray(img))
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"))
    if mode in ("LA", "La"):
        return np.asarray(img.getchannel("L"))
    return np.asarray(img.convert("RGB"))  # RGB, RGBA, P, PA, CMYK, YCbCr, ... → 8-bit RGB, alpha dropped
