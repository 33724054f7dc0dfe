"""NPZ sources in the MedMNIST layout: ``{train,val,test}_{images,labels}``.

``train_*`` is required; ``val_*``/``test_*`` are optional given splits. A file holding just
``images``/``labels`` (no split) is split automatically. Labels have shape (N,) or (N, 1); class names
are "0", "1", ... unless the file has a ``class_names`` array. Image arrays are (N, H, W) or
(N, H, W, 1|3|4) of uint8/uint16.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .images import normalize_array, pixel_digest
from .progress import track
from .records import SPLIT_NAMES, Item, RawData


def load_npz(path: Path) -> RawData:
    """Read every split's arrays; labels outside the class list are DataErrors naming the item."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: cannot read the npz file ({exc})") from None
    splits = _split_keys(path, arrays)
    for prefix in splits.values():
        shape = arrays[f"{prefix}images"].shape
        if len(shape) not in (3, 4):
            raise DataError(f"{path}: {prefix}images has shape {shape}; expected (N, H, W) or (N, H, W, C)")
    labels = {name: _labels(path, arrays, f"{prefix}labels", len(arrays[f"{prefix}images"]))
              for name, prefix in splits.items()}
    if len(labels["train"]) == 0:
        raise DataError(f"{path}: the train split has no images")
    class_names = _class_names(path, arrays, labels)
    items = []
    for name, prefix in splits.items():
        images = arrays[f"{prefix}images"]
        _check_float(path, name if prefix else "images", images)
        given = name if prefix else None
        for i in track(range(len(images)), f"Checking {path.name} {name}"):
            item_id = f"npz:{name if prefix else 'images'}:{i}"
            label = int(labels[name][i])
            if not 0 <= label < len(class_names):
                raise DataError(f"{path}: label {label} of {item_id} is not in the class list "
                                f"(0..{len(class_names) - 1})")
            image = normalize_array(images[i], f"{path}: {item_id}")
            items.append(Item(item_id, image, label, given, None, pixel_digest(image)))
    return RawData("npz", str(path), class_names, tuple(items))


def _split_keys(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """Split name → key prefix ('train_', ...); {'train': ''} for an unsplit images/labels file."""
    if "train_images" not in arrays and "images" in arrays:
        return {"train": ""}
    splits = {s: f"{s}_" for s in SPLIT_NAMES if f"{s}_images" in arrays or f"{s}_labels" in arrays}
    if "train" not in splits:
        raise DataError(f"{path}: no train_images/train_labels arrays (found: {', '.join(sorted(arrays)) or 'none'}); "
                        "expected the MedMNIST layout {train,val,test}_{images,labels}")
    for prefix in splits.values():
        if f"{prefix}images" not in arrays:
            raise DataError(f"{path}: has {prefix}labels but no {prefix}images array")
    return splits


def _check_float(path: Path, name: str, images: np.ndarray) -> None:
    """Float image arrays are refused; ones with NaN/Inf name their first bad image."""
    if not np.issubdtype(images.dtype, np.floating):
        return
    bad = np.flatnonzero(~np.isfinite(images.reshape(len(images), -1)).all(axis=1))
    if len(bad):
        raise DataError(f"{path}: npz:{name}:{bad[0]}: contains NaN or Inf pixels; fix or remove the image")
    raise DataError(f"{path}: {name} images are float ({images.dtype}); store uint8 or uint16 pixels")


def _labels(path: Path, arrays: dict[str, np.ndarray], key: str, count: int) -> np.ndarray:
    if key not in arrays:
        raise DataError(f"{path}: has images but no {key} array")
    labels = arrays[key]
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(f"{path}: {key} has shape {labels.shape}; expected (N,) or (N, 1) "
                        "(multi-label data is not supported)")
    if len(labels) != count:
        raise DataError(f"{path}: {key} has {len(labels)} labels for {count} images")
    if not np.issubdtype(labels.dtype, np.integer) and not _integral_floats(labels):
        raise DataError(f"{path}: {key} must hold integer class indices (got {labels.dtype})")
    return labels.astype(np.int64)


def _integral_floats(values: np.ndarray) -> bool:
    if not np.issubdtype(values.dtype, np.floating):
        return False
    return bool(np.all(np.isfinite(values) & (values == np.round(values))))


def _class_names(path: Path, arrays: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> tuple[str, ...]:
    if "class_names" in arrays:
        names = arrays["class_names"]
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise DataError(f"{path}: class_names must be a 1-D array of strings")
        result = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist())
        if len(set(result)) != len(result):
            raise DataError(f"{path}: class_names has duplicates: {', '.join(result)}")
        return result
    train = labels["train"]
    count = max(int(train.max()) + 1, 0) if len(train) else 0
    return tuple(str(i) for i in range(count))
