"""Native pixel form: the one array form an image takes in training and at prediction time.

Native form is ``uint8`` or ``uint16`` (the dtype is the bit depth: no other dtype is guessed at),
H×W for grey or H×W×3 for RGB. ``to_native`` turns a decoded array into it, or says why it cannot:

- H×W×1 becomes H×W; H×W×4 drops its alpha channel; any other shape, or an empty image, is refused.
- An RGB image whose three channels are identical is grey (H×W), whatever format it came in.
- Float pixels are refused (NaN/Inf with their own message): an image file stores integers. At
  prediction time an array of floats is usable only with a declared ``value_range`` (see
  ``tlc_runtime.preprocess.to_model_input``); training has no such declaration and refuses them.
- Other integer dtypes (int32, uint32, int64...) are refused: their bit depth is unknown. Decoders
  that hold 16-bit data in a wider type convert it with ``to_uint16`` first.

``check_layout`` is the shape rule alone, shared with ``preprocess.check_image``.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError


def to_native(array: np.ndarray) -> np.ndarray:
    """``array`` in native form (contiguous, a copy only where a rule changes it); InputError if impossible."""
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise InputError("contains NaN or Inf pixels")
        raise InputError(f"float pixels ({array.dtype}) are not supported in image data; "
                         "store 8-bit or 16-bit unsigned integers")
    if array.dtype.kind != "u" or array.dtype.itemsize not in (1, 2):
        raise InputError(f"pixel type {array.dtype} is not supported; use uint8 or uint16")
    array = check_layout(array.astype(np.uint8 if array.dtype.itemsize == 1 else np.uint16, copy=False))
    if array.ndim == 3 and _channels_identical(array):
        array = array[:, :, 0]
    return np.ascontiguousarray(array)


def check_layout(array: np.ndarray) -> np.ndarray:
    """H×W or H×W×{1,3,4} → H×W or H×W×3 (alpha dropped); InputError for any other or an empty shape."""
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[:, :, 0] if array.shape[2] == 1 else array[:, :, :3]
    elif array.ndim != 2:
        raise InputError(f"expected an H×W or H×W×C (C in 1, 3, 4) image, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"image is empty (shape {array.shape})")
    return array


def to_uint16(array: np.ndarray) -> np.ndarray:
    """Integer pixels held in a wider or signed type (Pillow's 32-bit mode "I") → uint16, values kept."""
    if array.dtype == np.uint16:
        return array
    lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if lo < 0 or hi > 65535:
        raise InputError(f"pixel values {lo}..{hi} do not fit 16 bits unsigned; save as 8-bit or 16-bit unsigned")
    return array.astype(np.uint16)


def _channels_identical(rgb: np.ndarray) -> bool:
    first = rgb[:, :, 0]
    return bool((first == rgb[:, :, 1]).all() and (first == rgb[:, :, 2]).all())
