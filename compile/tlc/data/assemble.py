"""From a source's raw items to a validated Dataset: splits, channel and bit-depth rules, hash."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from tlc_runtime.manifest import DicomPolicy

from .checks import (
    check_content,
    check_duplicates_policy,
    check_leaks,
    check_train_covers_classes,
    drop_train_copies,
)
from .dataset import SPLITS, Dataset, Split
from .records import Item, RawData
from .splits import auto_split, check_fractions

HASH_VERSION = b"tlc-data-v1"


def assemble(raw: RawData, *, seed: int, val_fraction: float, test_fraction: float,
             dicom: DicomPolicy | None = None, duplicates: str = "error") -> Dataset:
    """Validate ``raw``, split it (given splits as given, else automatically) and build the Dataset
    (``dicom``: the policy its DICOM files were read with, None when it has none).

    ``duplicates`` ("error" or "drop", see ``checks.DUPLICATE_POLICIES``) decides what train copies of
    val/test images do; automatic splits never separate identical images, so it matters for given splits.
    """
    check_duplicates_policy(duplicates)
    check_content(raw)
    if any(item.split is None for item in raw.items):
        splits = auto_split(raw.items, len(raw.class_names), seed=seed, val_fraction=val_fraction,
                            test_fraction=test_fraction)
    else:
        check_fractions(val_fraction, test_fraction)
        splits = [item.split for item in raw.items]
    dropped: tuple[dict[str, str], ...] = ()
    if duplicates == "drop":
        raw, splits, dropped = drop_train_copies(raw, splits)
    check_train_covers_classes(raw, splits)
    duplicate_counts = check_leaks(raw, splits)
    channels = 1 if all(item.image.ndim == 2 for item in raw.items) else 3
    bit_depth = _bit_depth(raw)
    by_split = {name: [it for it, s in zip(raw.items, splits, strict=True) if s == name] for name in SPLITS}
    return Dataset(
        class_names=raw.class_names,
        splits={name: _split(items, channels, raw.has_groups, bool(raw.tasks)) for name, items in by_split.items()},
        kind=raw.kind,
        source=raw.source,
        content_hash=content_hash(raw.class_names, by_split),
        channels=channels,
        bit_depth=bit_depth,
        value_range=(0.0, float(2**bit_depth - 1)),
        duplicates=duplicate_counts,
        dropped_duplicates=dropped,
        dicom=dicom,
        tasks=raw.tasks,
    )


def _split(items: list[Item], channels: int, has_groups: bool, multi_task: bool) -> Split:
    images = [_with_channels(it.image, channels) for it in items]
    groups = tuple(str(it.group) for it in items) if has_groups else None
    labels = np.array([it.label for it in items], dtype=np.int64)
    task_labels = None
    if multi_task:
        task_labels = np.array([(it.label, *it.task_labels) for it in items], dtype=np.int64).reshape(len(items), -1)
    return Split(images=images, labels=labels, ids=tuple(it.id for it in items), groups=groups,
                 task_labels=task_labels)


def _with_channels(image: np.ndarray, channels: int) -> np.ndarray:
    if channels == 3 and image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return image


def _bit_depth(raw: RawData) -> int:
    """8 for uint8 data; for 16-bit data the bit length of the largest value in any split, at least 9,
    at most 16. Every split, not train alone: the runtime refuses values above the model's bit depth
    (``tlc_runtime.preprocess.on_model_range``), so val and test images must lie on it too. The bit
    depth is the storage format of the data, not a statistic learnt from it."""
    if raw.items[0].image.dtype == np.uint8:
        return 8
    top = max(int(it.image.max()) for it in raw.items)
    return min(16, max(9, top.bit_length()))


def content_hash(class_names: tuple[str, ...], by_split: dict[str, list[Item]]) -> str:
    """sha256 over the class names and, per split, the sorted (label, pixel digest) records.

    Independent of file names and listing order; changes when any pixel, label or split changes
    (a multi-task item's record holds every task's label).
    """
    h = hashlib.sha256(HASH_VERSION)
    h.update(json.dumps(list(class_names)).encode())
    for name in SPLITS:
        records = sorted(hashlib.sha256(_label_key(it).encode() + it.digest).digest() for it in by_split[name])
        h.update(f"|{name}:{len(records)}|".encode())
        h.update(b"".join(records))
    return h.hexdigest()


def _label_key(item: Item) -> str:
    """``"label|"``, or ``"label,task,...|"`` with the extra tasks' labels (single-task hashes stay as they were)."""
    return ",".join(map(str, (item.label, *item.task_labels))) + "|"
