"""Region-of-interest cropping before resizing, implemented once for training and the runtime.

A box is ``(x0, y0, x1, y1)`` in pixel coordinates of the native image: x is the column, y the row,
(0, 0) the top-left pixel, x1/y1 exclusive. ``crop(image, box)`` is ``image[y0:y1, x0:x1]``.

A bundle's ``Preprocessing.roi`` (a ``RoiRule``, or None for no cropping) says where the box comes
from:

- ``mode="given"``: the training boxes came from a file, so the caller must pass the box of each
  image (``predict(image, roi=box)``). A call without one is refused: a model trained on crops that
  sees the whole frame gets an object far smaller than it learnt, and answers with no sign of it.
- ``mode="auto"``: ``auto_box`` finds the imaged region with the recorded parameters. A box passed
  by the caller takes precedence over the automatic one (and is used by a bundle without a rule too).

Automatic rule (``auto_box``), meant to drop black borders and shuttered (blacked-out) collimation:

1. intensity = the pixel values (a colour image: the float32 mean of its first three channels), so
   an image and its float copy (the same values) get the same box;
2. robust range ``lo..hi`` = the 1st and 99th percentiles (float64) of the intensity, taken on a regular
   sub-grid of at most ``PERCENTILE_SAMPLES`` pixels (every k-th row and column) for large images
   (so a bright region under 1 % of the frame is not found: step 7);
3. a pixel is foreground when its intensity exceeds ``lo + threshold * (hi - lo)``;
4. the box spans the first to last row (column) in which the fraction of foreground pixels is more
   than ``min_fraction`` (0: any foreground pixel);
5. the box grows by ``margin`` × the frame's height (width) on each side, clipped to the frame;
6. a side shorter than ``min_size`` × the frame's side grows about its centre to that length
   (rounded up, shifted to stay inside the frame);
7. a flat image (``hi <= lo``), or one with no row or no column over ``min_fraction``, gives the full
   frame.

Bright, unshuttered collimation edges are imaged region to this rule and are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np

from .errors import InputError

Box = tuple[int, int, int, int]
PERCENTILE_SAMPLES = 65_536


@dataclass(frozen=True)
class RoiRule:
    """How images are cropped before resizing (module docstring: the modes and the auto algorithm).

    ``threshold``, ``min_fraction``, ``margin`` and ``min_size`` are the automatic rule's parameters
    (fractions, see ``auto_box``); with ``mode="given"`` they are not used and keep their defaults.
    """

    mode: Literal["auto", "given"]
    threshold: float = 0.1
    min_fraction: float = 0.05
    margin: float = 0.02
    min_size: float = 0.25

    def __post_init__(self) -> None:
        for name in ("threshold", "min_fraction", "margin", "min_size"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"roi {name} {value:g} is not within 0..1")
        if self.mode == "given" and any(getattr(self, f.name) != f.default for f in fields(self)[1:]):
            raise ValueError("roi mode 'given' takes no automatic-rule parameters")


def check_box(box: object, height: int, width: int) -> Box:
    """``box`` as four ints if it is a non-empty box inside an H×W image; else a one-line InputError."""
    try:
        values = tuple(box)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"roi must be (x0, y0, x1, y1), got {box!r}") from None
    if len(values) != 4 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise InputError(f"roi must be four integer pixel coordinates (x0, y0, x1, y1), got {box!r}")
    x0, y0, x1, y1 = (int(v) for v in values)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise InputError(f"roi {(x0, y0, x1, y1)} is empty or outside the {height}×{width} image "
                         f"(need 0 ≤ x0 < x1 ≤ {width}, 0 ≤ y0 < y1 ≤ {height}; x1, y1 exclusive)")
    return x0, y0, x1, y1


def crop(image: np.ndarray, box: object) -> np.ndarray:
    """``image[y0:y1, x0:x1]`` (a view) after checking that ``box`` is a non-empty box inside it."""
    x0, y0, x1, y1 = check_box(box, image.shape[0], image.shape[1])
    return image[y0:y1, x0:x1]


def auto_box(image: np.ndarray, rule: RoiRule) -> Box:
    """The box of the imaged region of an H×W or H×W×C image (module docstring, steps 1-7)."""
    height, width = image.shape[:2]
    grey = image if image.ndim == 2 else image[:, :, :3].mean(axis=2, dtype=np.float32)
    step = max(1, math.ceil(math.sqrt(grey.size / PERCENTILE_SAMPLES)))
    lo, hi = (float(v) for v in np.percentile(grey[::step, ::step].astype(np.float64), [1, 99]))
    if not hi > lo:  # flat image (or NaN pixels, which the input checks refuse afterwards)
        return 0, 0, width, height
    threshold = lo + rule.threshold * (hi - lo)
    if grey.dtype.kind in "ui":  # the same pixels as "> threshold", compared without a float copy
        threshold = math.floor(threshold)
    foreground = grey > threshold
    rows = np.flatnonzero(foreground.sum(axis=1, dtype=np.int64) > rule.min_fraction * width)
    cols = np.flatnonzero(foreground.sum(axis=0, dtype=np.int64) > rule.min_fraction * height)
    if rows.size == 0 or cols.size == 0:
        return 0, 0, width, height
    y0, y1 = _grow(int(rows[0]), int(rows[-1]) + 1, height, rule)
    x0, x1 = _grow(int(cols[0]), int(cols[-1]) + 1, width, rule)
    return x0, y0, x1, y1


def apply(image: object, rule: RoiRule | None, box: object = None) -> object:
    """The image cropped to ``box``, else to the rule's automatic box; unchanged without either.

    A "given" rule without a box is an InputError. Anything that is not a non-empty 2-D or 3-D numeric
    array is returned unchanged for the input checks to refuse with their own message.
    """
    if box is None and (rule is None or rule.mode == "given"):
        if rule is not None:
            raise InputError("this model was trained on cropped regions: pass the image's box as "
                             "roi=(x0, y0, x1, y1) (pixel coordinates, x1 and y1 exclusive)")
        return image
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.dtype.kind not in "uif" \
            or 0 in image.shape:
        return image  # refused by the input checks, every such array is
    return crop(image, auto_box(image, rule) if box is None else box)  # type: ignore[arg-type]


def _grow(start: int, stop: int, size: int, rule: RoiRule) -> tuple[int, int]:
    """Add the margin, then widen to the minimum size about the centre, all inside 0..size."""
    pad = round(rule.margin * size)
    start, stop = max(0, start - pad), min(size, stop + pad)
    need = min(size, math.ceil(rule.min_size * size))
    if stop - start < need:
        start = max(0, min(size - need, (start + stop - need) // 2))
        stop = start + need
    return start, stop
