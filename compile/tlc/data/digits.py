"""scikit-learn's bundled handwritten digits as a tiny real dataset for tests and few-label demos."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError
from .assemble import assemble
from .dataset import Dataset
from .images import pixel_digest
from .records import Item, RawData
from .splits import auto_split

VAL_FRACTION = 0.2
TEST_FRACTION = 0.2


def load_digits(classes: Sequence[int], *, per_class_train: int | None = None, seed: int = 0,
                clutter: bool = False) -> Dataset:
    """Digits ``classes`` (8×8 grey, 0..16 → uint8 by round(v*255/16)), class names "digit-<k>" in the
    given order, split 60/20/20 stratified with ``seed``; ``per_class_train`` keeps only that many
    (seeded random) training images per class. kind="digits".

    ``clutter=True`` places each real digit at a random spot of a 16×16 canvas among dim fragments of
    other digits (seeded): one domain with nuisances (position, clutter) that labelled source data can
    teach and a few target labels cannot — the setting where same-domain transfer pays. On plain 8×8
    digits a randomly initialised network is already about as good as a transferred one.
    """
    wanted = _check_classes(classes)
    if per_class_train is not None and (isinstance(per_class_train, bool) or per_class_train < 1):
        raise ConfigError(f"per_class_train must be a positive integer or None, got {per_class_train!r}")
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    pixels = np.rint(bunch.images * 255.0 / 16.0).astype(np.uint8)
    if clutter:
        pixels = cluttered(pixels, np.random.default_rng([seed, 2]))
    index = {digit: i for i, digit in enumerate(wanted)}
    items = [Item(f"digits:{n}", img, index[int(t)], None, None, pixel_digest(img))
             for n, (img, t) in enumerate(zip(pixels, bunch.target, strict=True)) if int(t) in index]
    splits = auto_split(items, len(wanted), seed=seed, val_fraction=VAL_FRACTION, test_fraction=TEST_FRACTION)
    keep = _train_subset(items, splits, len(wanted), per_class_train, seed)
    items = [dataclasses.replace(it, split=s) for i, (it, s) in enumerate(zip(items, splits, strict=True))
             if s != "train" or i in keep]
    raw = RawData("digits", "sklearn:digits" + (":cluttered" if clutter else ""), tuple(f"digit-{d}" for d in wanted), tuple(items))
    return assemble(raw, seed=seed, val_fraction=VAL_FRACTION, test_fraction=TEST_FRACTION)


def _check_classes(classes: Sequence[int]) -> list[int]:
    wanted = list(classes)
    if len(wanted) < 2 or len(set(wanted)) != len(wanted) or any(
            isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= d <= 9 for d in wanted):
        raise ConfigError(f"digits classes must be at least 2 distinct digits 0..9, got {wanted!r}")
    return [int(d) for d in wanted]


def _train_subset(items: list[Item], splits: list[str], n_classes: int, per_class: int | None,
                  seed: int) -> set[int]:
    """Indices of the training items to keep: all, or ``per_class`` seeded picks per class."""
    train = [i for i, s in enumerate(splits) if s == "train"]
    if per_class is None:
        return set(train)
    rng = np.random.default_rng([seed, 1])
    keep: set[int] = set()
    for cls in range(n_classes):
        members = [i for i in train if items[i].label == cls]
        keep.update(members[k] for k in rng.permutation(len(members))[:per_class])
    return keep


def cluttered(pixels: np.ndarray, rng: np.random.Generator, canvas: int = 16, fragments: int = 2) -> np.ndarray:
    """Each 8×8 digit at a random position of a canvas×canvas image, over dim 4×4 fragments of others."""
    return cluttered_with_boxes(pixels, rng, canvas, fragments)[0]


def cluttered_with_boxes(pixels: np.ndarray, rng: np.random.Generator, canvas: int = 16,
                         fragments: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``cluttered``'s images (the same for the same rng) and each digit's true box, an N×4 int array of
    (x0, y0, x1, y1) pixels, x1/y1 exclusive: where the digit's 8×8 patch was placed."""
    out = np.zeros((len(pixels), canvas, canvas), np.uint8)
    boxes = np.zeros((len(pixels), 4), np.int64)
    for image, box, digit in zip(out, boxes, pixels, strict=True):
        for _ in range(fragments):
            y, x = rng.integers(0, 5, 2)
            fragment = pixels[rng.integers(len(pixels))][y:y + 4, x:x + 4] // 2
            py, px = rng.integers(0, canvas - 4, 2)
            np.maximum(image[py:py + 4, px:px + 4], fragment, out=image[py:py + 4, px:px + 4])
        py, px = rng.integers(0, canvas - 8, 2)
        np.maximum(image[py:py + 8, px:px + 8], digit, out=image[py:py + 8, px:px + 8])
        box[:] = (px, py, px + 8, py + 8)
    return out, boxes
