"""Image preparation shared by training (tlc) and deployment (tlc_runtime), implemented once.

The runtime's only preprocessing job is resizing an image to the model's input size and casting it
to the graph's input dtype; scaling, mean/std and channel replication run inside the model graph.
Training resizes its data with the very same function, so the pixels a deployed model sees equal
the pixels it was trained on.

Resize rules (the manifest's ``Preprocessing.resize`` names one; the runtime applies the one named):

- "area-antialias-bilinear" (bundles since issue #11): where the image shrinks by 2·REDUCING_GAP or
  more along an axis, pixels are first summed exactly over bins of k = ⌊n_in / (n_out·REDUCING_GAP)⌋
  (integer accumulator, a strip of rows at a time: no float copy of the frame), then the triangle
  filter below runs on the bin sums, each bin weighted by the mean of the triangle over its pixels.
  That is exactly the triangle filter applied to the image with each bin replaced by its mean; on
  smooth images it differs from "antialias-bilinear" by at most one grey level (benchmarks/README.md
  reports the differences). Without a reduction (k = 1) both apply the same float32 weights.
- "antialias-bilinear" (older bundles, kept pixel for pixel): separable triangle filter whose
  support grows with the down-scaling factor (like Pillow's BILINEAR with antialiasing), computed in
  float32 on every pixel.

Both round and clip back to integer dtypes. ``resize(..., batched=True)`` takes N same-shape images
and equals resizing each alone, exactly; ``fit_to_model`` uses it for a whole batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from numbers import Real

import numpy as np

from .errors import InputError
from .manifest import InputSpec, Preprocessing, ResizeMethod
from .native import check_layout
from .roi import apply as apply_roi

_BT601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)


DEFAULT_RESIZE: ResizeMethod = "area-antialias-bilinear"
REDUCING_GAP = 2  # area-reduce only while the triangle filter still spans >= this many reduced pixels
_ROW_SUMS_BYTES = 1 << 20  # area sums go a strip of source rows at a time, whose row sums fit in 1 MiB


@lru_cache(maxsize=64)
def _triangle_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) row-normalised triangle-filter weights for one axis, float64."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centers = (np.arange(n_out, dtype=np.float64) + 0.5) * scale
    positions = np.arange(n_in, dtype=np.float64) + 0.5
    weights = np.clip(1.0 - np.abs(positions[None, :] - centers[:, None]) / support, 0.0, None)
    weights /= weights.sum(axis=1, keepdims=True)
    weights.setflags(write=False)
    return weights


def _resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) row-normalised triangle-filter weights for one axis, float32 ("antialias-bilinear")."""
    return _triangle_weights(n_in, n_out).astype(np.float32)


def _sparse(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A dense (n_out, n_in) filter as (n_out, taps) source indices and weights (read-only)."""
    n_in = dense.shape[1]
    taps = int((dense > 0).sum(axis=1).max())
    first = (dense > 0).argmax(axis=1)
    index = np.minimum(first[:, None] + np.arange(taps)[None, :], n_in - 1)
    weights = np.take_along_axis(dense, index, axis=1)
    weights[first[:, None] + np.arange(taps)[None, :] >= n_in] = 0.0
    index.setflags(write=False)
    weights.setflags(write=False)
    return index, weights


@lru_cache(maxsize=64)
def _resize_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The same filter as (n_out, taps) source indices and weights: each output pixel reads only the
    few input pixels under its triangle, so resizing is a small gather, not a dense matrix product
    (which would start BLAS threads that fight the inference backend's threads for the cores)."""
    return _sparse(_resize_weights(n_in, n_out))


def reduction(n_in: int, n_out: int) -> int:
    """The integer factor "area-antialias-bilinear" sums ``n_in`` pixels by before its triangle filter."""
    return max(1, n_in // (n_out * REDUCING_GAP))


@lru_cache(maxsize=64)
def _bin_taps(n_in: int, n_out: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Taps of the triangle filter applied to sums of ``k`` consecutive pixels (the last bin may be
    shorter): a bin's weight is the mean of the pixel weights it covers, so a bin whose pixels are
    equal contributes exactly what they did; with k = 1 these are the "antialias-bilinear" weights."""
    starts = np.arange(0, n_in, k)
    sizes = np.diff(np.append(starts, n_in))
    return _sparse(np.add.reduceat(_triangle_weights(n_in, n_out), starts, axis=1) / sizes)


def resize(image: np.ndarray | Sequence[np.ndarray], height: int, width: int,
           method: ResizeMethod = DEFAULT_RESIZE, *, batched: bool = False) -> np.ndarray:
    """Resize an H×W or H×W×C array to height×width with the manifest's ``method``, dtype preserved.

    ``batched=True``: ``image`` is an N×H×W(×C) array or a sequence of arrays of one shape and dtype;
    the result is N×height×width(×C) and equals resizing each image alone, exactly.
    """
    if method not in _METHODS:
        raise ValueError(f"unknown resize method {method!r}; valid: {', '.join(_METHODS)}")
    images = image if batched else (image,)
    if len(images) == 0:
        raise ValueError("resize got an empty batch")
    out = _METHODS[method](images, height, width)
    return out if batched else out[0]


def _antialias_bilinear(images: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    return np.stack([_triangle_resize(image, height, width) for image in images])


def _triangle_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """"antialias-bilinear" on one image: the gather of every tap at once, in float32 (kept as it
    was so that bundles recorded with this filter keep their exact pixels)."""
    if image.shape[0] == height and image.shape[1] == width:
        return image.copy()
    src = image.astype(np.float32, copy=False)
    rows, row_w = _resize_taps(image.shape[0], height)
    cols, col_w = _resize_taps(image.shape[1], width)
    channel_axes = (1,) * (src.ndim - 2)
    tmp = (src[rows] * row_w.reshape(*row_w.shape, 1, *channel_axes)).sum(axis=1)
    out = (tmp[:, cols] * col_w.reshape(1, *col_w.shape, *channel_axes)).sum(axis=2)
    return _cast_back(out, image.dtype)


def _area_antialias_bilinear(images: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """"area-antialias-bilinear" on N images of one shape: exact integer sums over k×k bins, then the
    triangle filter on the bin sums (k = 1, no reduction, where the factor is under 2·REDUCING_GAP)."""
    first = images[0]
    (h, w), dtype = first.shape[:2], first.dtype
    if (h, w) == (height, width):
        return np.array(images, copy=True)
    kh, kw = reduction(h, height), reduction(w, width)
    if kh == kw == 1:
        sums = np.asarray(images)
    else:
        sums = np.empty((len(images), -(-h // kh), -(-w // kw), *first.shape[2:]), _accumulator(dtype, kh * kw))
        for image, out in zip(images, sums, strict=True):
            _area_sums(image, kh, kw, out)
    work = np.result_type(sums.dtype, np.float32)
    out = _apply_taps(sums, *_bin_taps(h, height, kh), axis=1, dtype=work)
    out = _apply_taps(out, *_bin_taps(w, width, kw), axis=2, dtype=work)
    return _cast_back(out, dtype)


def _accumulator(dtype: np.dtype, count: int) -> np.dtype:
    """The narrowest integer dtype (16, 32 or 64 bits) that holds the sum of ``count`` values of
    ``dtype`` exactly, else float64: uint8 frames sum 2.5× faster in uint16 than in uint32."""
    if dtype.kind == "f":
        return np.dtype(np.float64)
    info = np.iinfo(dtype)
    prefix = "u" if dtype.kind == "u" else ""
    for bits in (16, 32, 64):
        acc = np.iinfo(f"{prefix}int{bits}")
        if acc.min <= info.min * count and info.max * count <= acc.max:
            return np.dtype(acc.dtype)
    return np.dtype(np.float64)  # 64-bit pixels: sums that could overflow any integer type


def _area_sums(image: np.ndarray, kh: int, kw: int, out: np.ndarray) -> None:
    """Write into ``out`` the sums of ``image`` over kh×kw bins (edge bins cover what is left), a strip
    of source rows at a time, so that no float or widened copy of the whole frame is ever made."""
    h, w, rest = image.shape[0], image.shape[1], image.shape[2:]
    col_starts = np.arange(0, w, kw)
    step = max(1, _ROW_SUMS_BYTES // (image[0].size * out.itemsize)) * kh
    for start in range(0, h, step):
        stop = min(start + step, h)
        n_full = (stop - start) // kh
        full = start + n_full * kh
        rows = np.empty((n_full + (full < stop), w, *rest), out.dtype)
        np.add.reduce(image[start:full].reshape(n_full, kh, w, *rest), axis=1, dtype=out.dtype, out=rows[:n_full])
        if full < stop:
            np.add.reduce(image[full:stop], axis=0, dtype=out.dtype, out=rows[n_full])
        np.add.reduceat(rows, col_starts, axis=1, out=out[start // kh:start // kh + len(rows)])


def _apply_taps(src: np.ndarray, index: np.ndarray, weights: np.ndarray, axis: int,
                dtype: np.dtype) -> np.ndarray:
    """Filter axis ``axis`` of an N×H×W(×C) array: out[..., i, ...] = Σ_t weights[i, t]·src[..., index[i, t], ...],
    summed tap by tap in a fixed order (the same rounding whatever the batch size)."""
    shape = [1] * src.ndim
    shape[axis] = len(index)
    weights = weights.astype(dtype)
    out = np.multiply(src.take(index[:, 0], axis=axis), weights[:, 0].reshape(shape), dtype=dtype)
    for t in range(1, index.shape[1]):
        out += np.multiply(src.take(index[:, t], axis=axis), weights[:, t].reshape(shape), dtype=dtype)
    return out


def _cast_back(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Filtered float values → ``dtype`` (integers rounded to nearest and clipped to the dtype's range)."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype, copy=False)


_METHODS = {"antialias-bilinear": _antialias_bilinear, "area-antialias-bilinear": _area_antialias_bilinear}


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
    return fit_to_model([checked_pixels(image, spec, prep, value_range, roi)], spec, prep)[0]


def checked_pixels(image: np.ndarray, spec: InputSpec, prep: Preprocessing,
                   value_range: tuple[float, float] | None = None,
                   roi: Sequence[int] | None = None) -> np.ndarray:
    """One image cropped and validated for this model (the rules of ``to_model_input``), grey if the
    model is grey; not resized yet."""
    image = apply_roi(image, prep.roi, roi)
    image = check_image(image)
    image = on_model_range(image, prep, value_range)
    if image.ndim == 3 and spec.channels == 1:
        image = to_grey(image)
    return image


def fit_to_model(pixels: Sequence[np.ndarray], spec: InputSpec, prep: Preprocessing) -> np.ndarray:
    """Checked images (``checked_pixels``) → N×H×W×C batch of the graph's dtype at the model's size.

    Images of one shape and dtype are resized together in one vectorised call; the result equals
    preparing each image alone.
    """
    out = np.empty((len(pixels), spec.height, spec.width, spec.channels), np.dtype(spec.dtype))
    groups: dict[tuple[tuple[int, ...], str], list[int]] = {}
    for i, image in enumerate(pixels):
        groups.setdefault((image.shape, image.dtype.str), []).append(i)
    for members in groups.values():
        same = [pixels[i] for i in members]
        resized = resize(same, spec.height, spec.width, prep.resize, batched=True)
        out[members] = _graph_values(resized if resized.ndim == 4 else resized[..., None], spec)
    return out


def _graph_values(batch: np.ndarray, spec: InputSpec) -> np.ndarray:
    """N×H×W×C resized pixels → the graph's dtype (uint8 rounded and clipped), channels replicated
    to 3 when a 3-channel model gets grey pixels."""
    if spec.channels == 3 and batch.shape[3] == 1:
        batch = np.repeat(batch, 3, axis=3)
    if spec.dtype == "uint8":
        return batch if batch.dtype == np.uint8 else np.clip(np.rint(batch), 0, 255).astype(np.uint8)
    return batch.astype(np.float32)


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
