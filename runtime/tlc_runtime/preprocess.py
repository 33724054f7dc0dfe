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

import math
from collections.abc import Sequence
from functools import lru_cache
from numbers import Real

import numpy as np

from .errors import InputError
from .manifest import InputSpec, Preprocessing
from .native import check_layout
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
    image = check_layout(image)
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise InputError("image contains NaN or Inf pixels")
    return image


def to_model_input(image: np.ndarray, spec: InputSpec, prep: Preprocessing,
                   value_range: tuple[float, float] | None = None,
                   roi: Sequence[int] | None = None) -> np.ndarray:
    """One image → H×W×C array of the graph's input dtype at the model's size.

    The image is first cropped to ``roi`` (x0, y0, x1, y1), else by ``prep.roi`` (``tlc_runtime.roi``).

    The model's range is 0..2**source_bit_depth-1 (0..255 for 8-bit models). Without ``value_range``,
    integer pixels are raw values on that range: anything outside it is refused, and so are uint16
    pixels for an 8-bit model and uint8 for a deeper one (guessing a rescale would silently change
    what the model sees); other integer types (int16, int64, uint32...) are converted when in range.
    Float pixels need a declared ``value_range=(lo, hi)``: lo..hi is mapped linearly onto the model's
    range and rounded to its integers, values outside lo..hi are refused, never clipped; a float
    image without one is refused (never guessed to be 0..1 or 0..255). A declared range maps
    integer pixels the same way.
    """
    image = apply_roi(image, prep.roi, roi)
    image = check_image(image)
    image = on_model_range(image, prep, value_range)
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


def on_model_range(image: np.ndarray, prep: Preprocessing,
                   value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Checked pixels as integers on the model's range: uint8 for 8-bit models, else uint16 (rules in
    ``to_model_input``); InputError for anything the rules refuse."""
    bits = prep.source_bit_depth
    top = 2**bits - 1
    dtype = np.uint8 if bits <= 8 else np.uint16
    if value_range is not None:
        lo, hi = _declared(value_range)
        low, high = _span(image)
        if low < lo or high > hi:
            raise InputError(f"pixels span {low:g}..{high:g}, outside the declared value_range {lo:g}..{hi:g}; "
                             "declare the range your data really has (pixels are never clipped)")
        scaled = (image.astype(np.float64) - lo) * (top / (hi - lo))
        return np.clip(np.rint(scaled), 0, top).astype(dtype)
    if image.dtype.kind == "f":
        raise InputError(f"float pixels ({image.dtype}) need a declared range: predict(image, value_range=(lo, hi)) "
                         f"maps lo..hi onto this model's 0..{top} (or pass integers on 0..{top})")
    _check_bit_depth(image, prep)
    info = np.iinfo(image.dtype)
    if info.min < 0 or info.max > top:
        low, high = _span(image)
        if low < 0 or high > top:
            raise InputError(f"pixel values {low:g}..{high:g} lie outside this {bits}-bit model's range 0..{top}; "
                             "pass raw values on that range, or declare value_range=(lo, hi) to map yours")
    return image.astype(dtype, copy=False)


def _span(image: np.ndarray) -> tuple[float, float]:
    return (image.min().item(), image.max().item())


def _declared(value_range: object) -> tuple[float, float]:
    """(lo, hi) of a declared value_range: two finite real numbers with lo < hi, else InputError."""
    pair = tuple(value_range) if isinstance(value_range, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(v, Real) and not isinstance(v, bool) for v in pair) \
            or not all(math.isfinite(v) for v in pair) or not pair[0] < pair[1]:
        raise InputError(f"value_range must be (lo, hi), two finite numbers with lo < hi, got {value_range!r}")
    return float(pair[0]), float(pair[1])


def _check_bit_depth(image: np.ndarray, prep: Preprocessing) -> None:
    """uint8 means an 8-bit image and uint16 a deeper one: either is refused by a model of the other kind."""
    if prep.source_bit_depth <= 8 and image.dtype == np.uint16:
        raise InputError("this model was trained on 8-bit images; got uint16 pixels (convert to uint8 with "
                         "your windowing, or declare value_range=(lo, hi) to map them onto 0..255)")
    if prep.source_bit_depth > 8 and image.dtype == np.uint8:
        raise InputError(f"this model was trained on {prep.source_bit_depth}-bit images; got "
                         f"{image.dtype} pixels (pass the original 16-bit data)")
