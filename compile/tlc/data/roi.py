"""ROI for training data: ``--roi auto`` or ``--roi BOXES.csv`` attached to a loaded Dataset.

The crop itself is ``tlc_runtime.roi`` (one implementation for training and the runtime); this
module only reads the boxes and records them on the Dataset, whose ``arrays`` crops before resizing.

Boxes file (CSV, UTF-8, a header line, one row per image of every split):

- image folders and CSV manifests: ``path,x0,y0,x1,y1``; ``path`` as the dataset names the image:
  for a CSV manifest exactly its ``path`` value, for a folder the path relative to the folder with
  "/" separators (``pneumonia/p1.png``, or ``train/pneumonia/p1.png`` in the split layout);
- ``.npz`` files: ``split,index,x0,y0,x1,y1``; ``split`` is train, val or test (``images`` for a file
  without splits) and ``index`` the 0-based position in that split's image array.

Coordinates are integer pixels of the native image: x the column, y the row, (0, 0) the top-left
pixel, x1 and y1 exclusive (the box is ``image[y0:y1, x0:x1]``). Every image needs exactly one
box inside it; a missing, repeated or unknown row is a DataError naming it.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tlc_runtime.errors import InputError
from tlc_runtime.roi import Box, RoiRule, check_box

from ..errors import DataError
from .dataset import Dataset

if TYPE_CHECKING:
    from ..runs import RunInfo

COORDS = ("x0", "y0", "x1", "y1")
KEY_COLUMNS = {"path": ("path",), "npz": ("split", "index")}


def with_roi(dataset: Dataset, roi: str | Path | RoiRule | None) -> Dataset:
    """``dataset`` cropped by ``roi``: None (unchanged), "auto" or an auto RoiRule, or a boxes CSV path."""
    if roi is None:
        return dataset
    if isinstance(roi, RoiRule):
        if roi.mode == "given":
            raise DataError("a 'given' ROI rule needs the boxes: pass the boxes CSV (or use with_boxes)")
        return _replace(dataset, roi, None)
    if str(roi) == "auto":
        return _replace(dataset, RoiRule("auto"), None)
    return with_boxes(dataset, read_boxes(Path(roi), dataset.kind), str(roi))


def with_boxes(dataset: Dataset, boxes: Mapping[str, Box], where: str = "boxes") -> Dataset:
    """``dataset`` with the "given" rule and one box per image id (every id, every split)."""
    known = {i for split in dataset.splits.values() for i in split.ids}
    unknown = sorted(set(boxes) - known)
    if unknown:
        raise DataError(f"{where}: box for {unknown[0]!r}, which is not an image of {dataset.source} "
                        f"({len(unknown)} such row(s)); images are named like {min(known)!r}")
    rois = {}
    for name, split in dataset.splits.items():
        missing = [i for i in split.ids if i not in boxes]
        if missing:
            raise DataError(f"{where}: no box for {missing[0]!r} ({len(missing)} image(s) without one); "
                            "every image of every split needs a box")
        rois[name] = tuple(_checked(boxes[i], image, i, where) for i, image in zip(split.ids, split.images,
                                                                                   strict=True))
    return _replace(dataset, RoiRule("given"), rois)


def read_boxes(path: Path, kind: str) -> dict[str, Box]:
    """Image id → box from a boxes CSV (module docstring); ``kind`` is the dataset's kind."""
    key_columns = KEY_COLUMNS["npz" if kind == "npz" else "path"]
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            missing = [c for c in key_columns + COORDS if c not in header]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)}; the first line must be "
                                f"{','.join(key_columns + COORDS)} for a {kind} dataset")
            col = {name: header.index(name) for name in key_columns + COORDS}
            boxes: dict[str, Box] = {}
            for line, record in enumerate(reader, start=2):
                if not record or all(not v.strip() for v in record):
                    continue
                key, box = _row(path, line, record, col, kind)
                if key in boxes:
                    raise DataError(f"{path}:{line}: a second box for {key!r}")
                boxes[key] = box
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the ROI boxes ({getattr(exc, 'strerror', None) or exc})") from None
    return boxes


def _row(path: Path, line: int, record: list[str], col: dict[str, int], kind: str) -> tuple[str, Box]:
    if len(record) <= max(col.values()):
        raise DataError(f"{path}:{line}: has {len(record)} value(s), fewer than the header's columns")
    values = {name: record[i].strip() for name, i in col.items()}
    try:
        box = tuple(int(values[c]) for c in COORDS)
        key = f"npz:{values['split']}:{int(values['index'])}" if kind == "npz" else values["path"]
    except ValueError:
        raise DataError(f"{path}:{line}: index and x0, y0, x1, y1 must be integers (pixels), "
                        f"got {', '.join(values[c] for c in col)}") from None
    return key, box  # type: ignore[return-value]


def _checked(box: Box, image, item_id: str, where: str) -> Box:
    try:
        return check_box(box, image.shape[0], image.shape[1])
    except InputError as exc:
        raise DataError(f"{where}: {item_id}: {exc}") from None


def _replace(dataset: Dataset, rule: RoiRule, rois: dict[str, tuple[Box, ...]] | None) -> Dataset:
    splits = {name: dataclasses.replace(split, rois=None if rois is None else rois[name])
              for name, split in dataset.splits.items()}
    return dataclasses.replace(dataset, splits=splits, roi=rule)


def run_roi(run: RunInfo) -> str | RoiRule | None:
    """What to reload a run's data with: its recorded automatic rule (parameters included), or the
    boxes file it was trained with (``config["roi"]``), or None."""
    rule = run.preprocessing.roi
    return rule if rule is not None and rule.mode == "auto" else run.config.get("roi")


def check_same_roi(dataset: Dataset, rule: RoiRule | None, run: str) -> None:
    """ConfigError unless ``dataset`` crops by ``rule``, the ROI rule run ``run`` was trained with."""
    if dataset.roi != rule:
        from ..errors import ConfigError

        def say(r: RoiRule | None) -> str:
            return "no ROI" if r is None else f"ROI {r.mode!r}"
        raise ConfigError(f"run {run} was trained with {say(rule)} but the data has {say(dataset.roi)}; "
                          "pass the data with the run's ROI (tlc.data.roi.with_roi / with_boxes)")
