"""DICOM files (``.dcm``): the one reader, used by ``predict`` and by tlc's training reader.

pydicom is an optional extra, imported only when a ``.dcm`` file is read: ``pip install
'tlc-runtime[dicom]'``. Compressed transfer syntaxes (JPEG, JPEG-LS, JPEG 2000, RLE) may need
decoders as well: ``pip install 'tlc-runtime[dicom-codecs]'`` (pylibjpeg and its plugins).

A single-frame file becomes the native image in these steps; ``DicomPolicy`` (chosen at training
time, recorded in the bundle manifest as ``preprocessing.dicom``) says which of them run:

1. Stored values: pydicom's ``pixel_array``, in native byte order.
2. MONOCHROME1 (low values bright) without a window: a stored value s becomes
   ``2**BitsStored - 1 - s``, so that bright means dense as in MONOCHROME2.
3. ``rescale``: the modality LUT ``s * RescaleSlope + RescaleIntercept`` (DICOM PS3.3 C.11.1.1.2;
   absent tags mean 1 and 0), e.g. stored CT values to Hounsfield units.
4. ``window`` (center c, width w): the VOI LUT linear function of DICOM PS3.3 C.11.2.1.2.1 with the
   output range 0..65535: values up to c - 0.5 - (w-1)/2 (= c - w/2) become 0, values above
   c - 0.5 + (w-1)/2 (from c + w/2 - 1 on) become 65535, linear in between, rounded. "file" takes
   the file's first WindowCenter/WindowWidth (VOILUTFunction LINEAR). MONOCHROME1 output y then
   becomes 65535 - y.

Output: without a window, the stored (or rescaled, rounded) values as uint8 when BitsAllocated <= 8,
else uint16; negative values and values above the type's range are refused (a window fixes both).
With a window, always uint16 with the window mapped to 0..65535. Colour files (RGB, and YBR, which
pydicom 3 converts to RGB) come back H×W×3 as decoded: the modality LUT applies to grey images only,
and a window is refused. Every failure is a one-line ``InputError`` naming the file.

``WINDOW_PRESETS`` (CT, center/width in HU) are the typical values listed in Radiopaedia's article
"Windowing (CT)" (radiopaedia.org/articles/windowing-ct): lung W 1500 L -600, bone W 1800 L 400,
brain W 80 L 40, soft tissue (mediastinum) W 400 L 40 (the article gives W 350-400, L 20-60).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from .errors import InputError
from .images import MAX_PIXELS, pixel_limit_problem
from .manifest import DicomPolicy

WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "soft-tissue": (40.0, 400.0),
    "brain": (40.0, 80.0),
}
WINDOW_CHOICES = "none, file, " + ", ".join(WINDOW_PRESETS) + " or CENTER,WIDTH"
_WINDOW_FLAG = "tlc train --dicom-window file|" + "|".join(WINDOW_PRESETS) + "|CENTER,WIDTH"
CODECS_HINT = "pip install 'tlc-runtime[dicom-codecs]' installs pylibjpeg's decoders"
_GREY = ("MONOCHROME1", "MONOCHROME2")
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT")
_TOP = 65535


def parse_window(text: str) -> Any:
    """``DicomPolicy.window`` from its words: "none", "file", a preset name, or "CENTER,WIDTH"."""
    word = text.strip().lower()
    if word in ("none", "file"):
        return word
    if word in WINDOW_PRESETS:
        return WINDOW_PRESETS[word]
    try:
        center, width = (float(part) for part in word.split(","))
    except ValueError:
        raise ValueError(f"dicom window {text!r} is not {WINDOW_CHOICES} (e.g. -600,1500)") from None
    if not (math.isfinite(center) and math.isfinite(width) and width >= 1):
        raise ValueError(f"dicom window {text!r}: CENTER,WIDTH must be finite and the width at least 1")
    return (center, width)


def dicom_policy(window: str = "none", rescale: bool | None = None) -> DicomPolicy:
    """Policy from ``tlc train``'s words. ``rescale`` None means on with a window (windows are defined
    on rescaled values, e.g. Hounsfield units) and off without one (the stored values, as before)."""
    parsed = parse_window(window)
    return DicomPolicy(rescale=parsed != "none" if rescale is None else rescale, window=parsed)


def read_dicom(path: str | os.PathLike[str], policy: DicomPolicy | None = None,
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The native image (uint8/uint16, H×W, or H×W×3 for colour) of a single-frame DICOM file under
    ``policy`` (None: ``DicomPolicy()``, the stored values); rules in the module docstring."""
    policy = policy or DicomPolicy()
    pydicom = _pydicom(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # pydicom raises many types for broken or non-DICOM files
        raise InputError(f"{path}: cannot read DICOM pixels ({_reason(exc)}); replace or remove the file") from None
    photometric = _check_header(ds, path, max_pixels)
    stored = _decode(ds, path)
    if photometric in _COLOUR:
        return _colour(stored, photometric, policy, path)
    return _grey(stored, ds, photometric == "MONOCHROME1", policy, path)


def _pydicom(path: Any) -> Any:
    try:
        import pydicom
    except ImportError:
        raise InputError(f"{path}: reading DICOM files needs pydicom: pip install 'tlc-runtime[dicom]' "
                         "(or pip install pydicom)") from None
    return pydicom


def _check_header(ds: Any, path: Any, max_pixels: int) -> str:
    """Refuse what must not be decoded; return the PhotometricInterpretation."""
    if "PixelData" not in ds:
        kind = getattr(ds.get("SOPClassUID"), "name", None) or "no image"
        what = "float pixel data, which is not supported" if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds \
            else f"no pixel data ({kind})"
        raise InputError(f"{path}: the DICOM file has {what}; pass an image file")
    frames = _int_tag(ds, "NumberOfFrames", 1, path)
    if frames > 1:
        raise InputError(f"{path}: multi-frame DICOM ({frames} frames) is not supported; export one frame per file")
    photometric = str(ds.get("PhotometricInterpretation") or "MONOCHROME2").strip().upper()
    if photometric not in _GREY + _COLOUR:
        raise InputError(f"{path}: DICOM photometric interpretation {photometric} is not supported; "
                         "export MONOCHROME2 or RGB")
    shape = tuple(_int_tag(ds, tag, 1, path) for tag in ("Rows", "Columns", "SamplesPerPixel"))
    problem = pixel_limit_problem(shape, max_pixels)
    if problem:
        raise InputError(f"{path}: {problem}")
    return photometric


def _int_tag(ds: Any, tag: str, default: int, path: Any) -> int:
    value = ds.get(tag)
    try:
        return default if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}: DICOM tag {tag} {str(value)!r} is not an integer; replace or remove the file") from None


def _decode(ds: Any, path: Any) -> np.ndarray:
    """pydicom's pixel_array in native byte order; a missing decoder keeps pydicom's advice."""
    try:
        array = np.asarray(ds.pixel_array)
    except Exception as exc:  # RuntimeError (no decoder), NotImplementedError, ValueError (bad data)...
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        compressed = bool(getattr(syntax, "is_compressed", False))
        advice = CODECS_HINT if compressed else "replace or remove the file"
        raise InputError(f"{path}: cannot read DICOM pixels ({_reason(exc)}); {advice}") from None
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _reason(exc: BaseException) -> str:
    """An exception's text on one line: its first line, then its other lines joined by '; '."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0] + (" " + "; ".join(lines[1:]) if len(lines) > 1 else "")


def _grey(stored: np.ndarray, ds: Any, monochrome1: bool, policy: DicomPolicy, path: Any) -> np.ndarray:
    if stored.ndim != 2:
        raise InputError(f"{path}: expected one grey H×W frame, got pixel shape {stored.shape}")
    values = stored.astype(np.float64 if stored.dtype.kind == "f" else np.int64)
    bits_allocated = _int_tag(ds, "BitsAllocated", 16, path)
    if monochrome1 and policy.window == "none":
        values = (2 ** _int_tag(ds, "BitsStored", bits_allocated, path) - 1) - values
    if policy.rescale:
        values = _modality_lut(values, ds, path)
    if policy.window == "none":
        return _native(values, bits_allocated, path)
    center, width = _window(ds, policy.window, path)
    windowed = _linear_window(values, center, width)
    return _TOP - windowed if monochrome1 else windowed


def _modality_lut(values: np.ndarray, ds: Any, path: Any) -> np.ndarray:
    if "ModalityLUTSequence" in ds:
        raise InputError(f"{path}: a Modality LUT Sequence is not supported; read it without rescale "
                         "(tlc train --no-dicom-rescale)")
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    slope = 1.0 if slope in (None, "") else float(slope)
    intercept = 0.0 if intercept in (None, "") else float(intercept)
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        raise InputError(f"{path}: RescaleSlope/RescaleIntercept {slope:g}/{intercept:g} are not finite; "
                         "read it without rescale (tlc train --no-dicom-rescale)")
    if slope == 1 and intercept == int(intercept) and values.dtype.kind == "i":
        return values + int(intercept)  # exact integers, the common case
    return values * slope + intercept


def _native(values: np.ndarray, bits_allocated: int, path: Any) -> np.ndarray:
    """Unwindowed values as uint8 (BitsAllocated <= 8) or uint16; refuse what does not fit."""
    dtype = np.uint8 if bits_allocated <= 8 else np.uint16
    values = np.rint(values) if values.dtype.kind == "f" else values
    lo, hi = float(values.min()), float(values.max())
    if lo < 0:
        raise InputError(f"{path}: has negative pixel values (min {lo:g}) and the DICOM policy has no "
                         f"window; choose one at training time ({_WINDOW_FLAG})")
    top = int(np.iinfo(dtype).max)
    if hi > top:
        raise InputError(f"{path}: pixel values reach {hi:g}, above {top} ({np.dtype(dtype).name}); "
                         f"choose a DICOM window at training time ({_WINDOW_FLAG})")
    return np.ascontiguousarray(values.astype(dtype))


def _window(ds: Any, window: Any, path: Any) -> tuple[float, float]:
    """(center, width): the policy's fixed pair, or the file's first VOI window for "file"."""
    if window != "file":
        return window
    if "WindowCenter" not in ds or "WindowWidth" not in ds:
        raise InputError(f"{path}: the DICOM file has no WindowCenter/WindowWidth for the 'file' window; "
                         f"train with a fixed window ({_WINDOW_FLAG.replace('file|', '')})")
    function = str(ds.get("VOILUTFunction") or "LINEAR").strip().upper()
    if function != "LINEAR":
        raise InputError(f"{path}: VOILUTFunction {function} is not supported (only LINEAR); "
                         "train with a fixed window (CENTER,WIDTH)")
    center, width = (_first(ds.WindowCenter), _first(ds.WindowWidth))
    if not width >= 1:
        raise InputError(f"{path}: the file's WindowWidth {width:g} is below 1; train with a fixed window")
    return center, width


def _first(value: Any) -> float:
    """The first value of a possibly multi-valued DICOM number."""
    if not isinstance(value, (str, bytes)) and hasattr(value, "__getitem__"):
        value = value[0]
    return float(value)


def _linear_window(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 (LINEAR) onto 0..65535, rounded; width 1 is the standard's threshold."""
    if width == 1:
        return np.where(x > center - 0.5, _TOP, 0).astype(np.uint16)
    y = ((x - (center - 0.5)) / (width - 1) + 0.5) * _TOP
    return np.rint(np.clip(y, 0, _TOP)).astype(np.uint16)


def _colour(stored: np.ndarray, photometric: str, policy: DicomPolicy, path: Any) -> np.ndarray:
    if policy.window != "none":
        raise InputError(f"{path}: a DICOM window applies to MONOCHROME images, not {photometric}; "
                         "train colour files without --dicom-window")
    if stored.ndim != 3 or stored.shape[2] != 3:
        raise InputError(f"{path}: expected one H×W×3 colour frame, got pixel shape {stored.shape}")
    if photometric.startswith("YBR") and _pydicom_major() < 3:
        raise InputError(f"{path}: {photometric} colour needs pydicom 3 (which converts it to RGB); "
                         "pip install -U pydicom")
    if stored.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: DICOM colour pixel type {stored.dtype} is not supported; use 8 or 16 bits")
    return np.ascontiguousarray(stored)


def _pydicom_major() -> int:
    import pydicom

    return int(str(pydicom.__version__).split(".")[0])
