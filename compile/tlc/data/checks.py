"""Dataset-wide validation: emptiness, class list, bit-depth mix, leaks between splits."""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..said import first_time
from .records import RawData

DUPLICATE_POLICIES = ("error", "drop")
"""What identical images in train and val/test do: "error" refuses a train/test copy (train/val only
warns); "drop" removes every train copy of a val or test image (val and test stay as published)."""

EXPECTED_LAYOUT = {
    "folder": "ROOT/CLASS/*.png|jpg|jpeg|tif|tiff|dcm or ROOT/{train,val,test}/CLASS/...",
    "csv": "rows 'path,label[,split][,group]' after the header",
    "npz": "{train,val,test}_{images,labels} arrays",
}


class DataWarning(UserWarning):
    """A dataset problem that does not stop loading (e.g. identical images in train and val)."""


def check_content(raw: RawData) -> None:
    """Non-empty, at least two classes, a single bit depth."""
    if not raw.items:
        layout = EXPECTED_LAYOUT.get(raw.kind, "")
        raise DataError(f"{raw.source}: no images found" + (f" (expected {layout})" if layout else ""))
    if len(raw.class_names) < 2:
        only = f" {raw.class_names[0]!r}" if raw.class_names else ""
        raise DataError(f"{raw.source}: only one class{only} found; a classifier needs at least 2 classes")
    eight = next((it for it in raw.items if it.image.dtype == np.uint8), None)
    sixteen = next((it for it in raw.items if it.image.dtype == np.uint16), None)
    if eight is not None and sixteen is not None:
        raise DataError(f"{raw.source}: mixes 8-bit and 16-bit images ({eight.id} is 8-bit, {sixteen.id} "
                        "is 16-bit); convert all images to one bit depth")


def check_train_covers_classes(raw: RawData, splits: Sequence[str]) -> None:
    """Every class needs training images; a val/test label never seen in train is a DataError."""
    in_train = {it.label for it, s in zip(raw.items, splits, strict=True) if s == "train"}
    for label, name in enumerate(raw.class_names):
        if label in in_train:
            continue
        example = next(((it, s) for it, s in zip(raw.items, splits, strict=True) if it.label == label), None)
        if example is None:
            raise DataError(f"{raw.source}: class {name!r} has no images; add some or remove it from the class list")
        item, split = example
        raise DataError(f"{raw.source}: label {name!r} of {item.id} ({split}) is not in the class list of "
                        "train; add train images of that class or drop it")


def check_leaks(raw: RawData, splits: Sequence[str]) -> dict[str, int]:
    """Identical images across splits: train/test is a DataError; train/val and val/test warn.

    Returns the number of duplicated images per split pair (e.g. {"train/val": 8}).
    """
    first: dict[str, dict[bytes, str]] = {"train": {}, "val": {}, "test": {}}
    for item, split in zip(raw.items, splits, strict=True):
        first[split].setdefault(item.digest, item.id)
    counts: dict[str, int] = {}
    for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
        shared = [d for d in first[b] if d in first[a]]
        if not shared:
            continue
        counts[f"{a}/{b}"] = len(shared)
        pair = f"{first[a][shared[0]]} ({a}) and {first[b][shared[0]]} ({b})"
        more = f" and {len(shared) - 1} more" if len(shared) > 1 else ""
        if (a, b) == ("train", "test"):
            raise DataError(f"{raw.source}: the same image is in train and test: {pair}{more}; they inflate "
                            "test scores: remove the copies, or drop the train copies (tlc train --duplicates drop)")
        key = hashlib.sha256(f"{a}/{b}".encode() + b"".join(sorted(shared))).hexdigest()
        if first_time(key):  # the same copies in the same data: said once, not on every train, build, verify
            warnings.warn(f"{raw.source}: identical images in {a} and {b}: {pair}{more} "
                          "(said once for these images)", DataWarning, stacklevel=4)
    return counts


def check_duplicates_policy(policy: str) -> None:
    """ConfigError unless ``policy`` is one of DUPLICATE_POLICIES."""
    if policy not in DUPLICATE_POLICIES:
        raise ConfigError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {policy!r}")


def drop_train_copies(raw: RawData, splits: Sequence[str]) -> tuple[RawData, list[str], tuple[dict[str, str], ...]]:
    """Remove every train image whose pixels also appear in val or test.

    Returns the reduced RawData, its splits and one record per dropped image:
    ``{"id": train id, "split": "train", "same_as": "<id> (<split>)"}`` (its first val/test twin).
    """
    evaluation: dict[bytes, str] = {}
    for item, split in zip(raw.items, splits, strict=True):
        if split != "train":
            evaluation.setdefault(item.digest, f"{item.id} ({split})")
    keep, dropped = [], []
    for index, (item, split) in enumerate(zip(raw.items, splits, strict=True)):
        twin = evaluation.get(item.digest) if split == "train" else None
        if twin is None:
            keep.append(index)
        else:
            dropped.append({"id": item.id, "split": "train", "same_as": twin})
    if not dropped:
        return raw, list(splits), ()
    items = tuple(raw.items[i] for i in keep)
    return dataclasses.replace(raw, items=items), [splits[i] for i in keep], tuple(dropped)
