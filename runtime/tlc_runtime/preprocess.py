"""Image preparation shared by training (tlc) and deployment (tlc_runtime), implemented once.

The runtime's only preprocessing job is resizing an image to the model's input size and casting it
to the graph's input dtype; scaling, mean/std and channel replication run inside the model graph.
Training resizes its data with the very same function, so the pixels a deployed model sees equal
the pixels it was trained on.

Resize rule ("antialias-bilinear"): separable triangle filter whose support grows with the
down-scaling factor (like Pillow's BILINEAR with antialiasing), computed in float32, then rounded
and clipped back to integer dtypes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from .errors import InputError
from .manifest import InputSpec, Preprocessing
from .roi import apply as apply_roi

_BT601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@lru_cache(maxsize=64)
def _resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) row-normalised triangle-filter weights for one axis."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centers = (np.arange(n_out, dtype=np.float64) + 0.5) * scale
    positions = np.arange(n_in, dtype=np.float64) + 0.5
    weights = np.clip(1.0 - np.abs(positions[None, :] - centers[:, None]) / support, 0.0, None)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights.astype(np.float32)


@lru_cache(maxsize=64)
def _resize_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The same filter as (n_out, taps) source indices and weights: each output pixel reads only the
    few input pixels under its triangle, so resizing is a small gather, not a dense matrix product
    (which would start BLAS threads that fight the inference backend's threads for the cores)."""
    dense = _resize_weights(n_in, n_out)
    taps = int((dense > 0).sum(axis=1).max())
    first = (dense > 0).argmax(axis=1)
    index = np.minimum(first[:, None] + np.arange(taps)[None, :], n_in - 1)
    weights = np.take_along_axis(dense, index, axis=1)
    weights[first[:, None] + np.arange(taps)[None, :] >= n_in] = 0.0
    index.setflags(write=False)
    weights.setflags(write=False)
    return index, weights


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Antialiased bilinear resize of an H×W or H×W×C array to height×width, dtype preserved."""
    if image.shape[0] == height and image.shape[1] == width:
        return image.copy()
    src = image.astype(np.float32, copy=False)
    rows, row_w = _resize_taps(image.shape[0], height)
    cols, col_w = _resize_taps(image.shape[1], width)
    channel_axes = (1,) * (src.ndim - 2)
    tmp = (src[rows] * row_w.reshape(*row_w.shape, 1, *channel_axes)).sum(axis=1)
    out = (tmp[:, cols] * col_w.reshape(1, *col_w.shape, *channel_axes)).sum(axis=2)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(image.dtype)
    return out.astype(image.dtype, copy=False)


def to_grey(image: np.ndarray) -> np.ndarray:
    """H×W×3 → H×W by ITU-R BT.601 luminance, dtype preserved."""
    grey = image.astype(np.float32, copy=False) @ _BT601
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        return np.clip(np.rint(grey), info.min, info.max).astype(image.dtype)
    return grey.astype(image.dtype, copy=False)


def dtype_problem(dtype: np.dtype) -> str | None:
    """Why pixels of ``dtype`` are not accepted (anything but integers and floats), or None."""
    if dtype.kind in "uif":  # not bool (b), complex, strings, objects or records
        return None
    return f"unsupported pixel dtype {dtype}; use uint8, uint16 or float"


def check_image(image: object) -> np.ndarray:
    """Validate one image array: 2-D grey or H×W×{1,3,4}, numeric, non-empty, finite."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a numpy array or an image path, got {type(image).__name__}")
    problem = dtype_problem(image.dtype)
    if problem:
        raise InputError(problem)
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        image = image[:, :, 0] if image.shape[2] == 1 else image[:, :, :3]
    elif image.ndim != 2:
        raise InputError(f"expected an H×W or H×W×C (C in 1, 3, 4) image, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f"image is empty (shape {image.shape})")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise InputError("image contains NaN or Inf pixels")
    return image


def to_model_input(image: np.ndarray, spec: InputSpec, prep: Preprocessing,
                   roi: Sequence[int] | None = None) -> np.ndarray:
    """One image → H×W×C array of the graph's input dtype at the model's size.

    The image is first cropped to ``roi`` (x0, y0, x1, y1), else by ``prep.roi`` (``tlc_runtime.roi``).

    Integer inputs must match the model's source bit depth (an 8-bit model refuses uint16 and a
    16-bit model refuses uint8, because guessing a rescale would silently change what the model
    sees). Float inputs are taken as raw intensities on the model's value range (0..255 for 8-bit)
    and refused outside it, never clipped.
    """
    image = apply_roi(image, prep.roi, roi)
    image = check_image(image)
    _check_bit_depth(image, prep)
    _check_float_range(image, prep)
    if image.ndim == 3 and spec.channels == 1:
        image = to_grey(image)
    image = resize(image, spec.height, spec.width)
    if image.ndim == 2:
        image = image[:, :, None]
    if spec.channels == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if spec.dtype == "uint8":
        if image.dtype != np.uint8:
            image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        return image
    return image.astype(np.float32)


def _check_bit_depth(image: np.ndarray, prep: Preprocessing) -> None:
    if not np.issubdtype(image.dtype, np.integer):
        return
    bits = image.dtype.itemsize * 8
    if prep.source_bit_depth <= 8 and bits > 8:
        raise InputError(f"this model was trained on 8-bit images; got {image.dtype} pixels "
                         "(convert to uint8 with your windowing, or pass floats on 0..255)")
    if prep.source_bit_depth > 8 and bits <= 8:
        raise InputError(f"this model was trained on {prep.source_bit_depth}-bit images; got "
                         f"{image.dtype} pixels (pass the original 16-bit data)")


def _check_float_range(image: np.ndarray, prep: Preprocessing) -> None:
    """Float pixels must lie on the manifest's value_range (check_image has refused NaN/Inf)."""
    if not np.issubdtype(image.dtype, np.floating):
        return
    lo, hi = prep.value_range
    low, high = float(image.min()), float(image.max())
    if low < lo or high > hi:
        raise InputError(f"float pixels span {low:g}..{high:g}, outside this model's value range {lo:g}..{hi:g}; "
                         "pass raw intensities on that range (or integers at the model's bit depth)")
