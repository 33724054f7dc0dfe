"""CSV manifest sources: header ``path,label[,split][,group]``; other columns are ignored.

Paths are relative to the CSV's folder (absolute paths are allowed). Labels define the classes.
When a ``split`` column exists every row must say train, val or test, and those splits are used as
given. ``group`` (patient/site id) keeps a group on one side of an automatic split.
"""

from __future__ import annotations

import csv
from pathlib import Path

from tlc_runtime.manifest import DicomPolicy

from ..errors import DataError
from .images import IMAGE_SUFFIXES, pixel_digest, read_image
from .progress import track
from .records import SPLIT_NAMES, Item, RawData, sort_class_names

REQUIRED_COLUMNS = ("path", "label")
OPTIONAL_COLUMNS = ("split", "group")

Row = tuple[int, str, str, str | None, str | None]  # line, path, label, split, group


def load_csv(csv_path: Path, dicom: DicomPolicy | None = None) -> RawData:
    """Parse the manifest, check every row, then read the images it lists (``.dcm`` under ``dicom``)."""
    rows = _read_rows(csv_path)
    class_names = sort_class_names({label for _, _, label, _, _ in rows})
    index = {name: i for i, name in enumerate(class_names)}
    base = csv_path.parent
    items = []
    for line, rel, label, split, group in track(rows, f"Reading {csv_path.name}"):
        path = base / rel
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"{csv_path}:{line}: {rel} is not a supported image type "
                            f"({', '.join(IMAGE_SUFFIXES)})")
        if not path.is_file():
            raise DataError(f"{csv_path}:{line}: image file {rel} not found (paths are relative to "
                            f"{base})")
        image = read_image(path, str(path), dicom)
        items.append(Item(rel, image, index[label], split, group, pixel_digest(image)))
    has_groups = bool(rows) and rows[0][4] is not None
    return RawData("csv", str(csv_path), class_names, tuple(items), has_groups=has_groups)


def _read_rows(csv_path: Path) -> list[Row]:
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise DataError(f"{csv_path}: missing column(s) {', '.join(missing)}; the first line must be "
                                f"a header like 'path,label[,split][,group]' (found: {','.join(header) or 'nothing'})")
            col = {name: header.index(name) for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if name in header}
            rows = []
            for line, record in enumerate(reader, start=2):
                if not record or all(not v.strip() for v in record):
                    continue
                rows.append(_parse_row(csv_path, line, record, col))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{csv_path}: cannot read the CSV manifest ({exc})") from None
    return rows


def _parse_row(csv_path: Path, line: int, record: list[str], col: dict[str, int]) -> Row:
    if len(record) <= max(col.values()):
        raise DataError(f"{csv_path}:{line}: has {len(record)} value(s), fewer than the header's columns")
    values = {name: record[i].strip() for name, i in col.items()}
    for name in col:
        if not values[name]:
            raise DataError(f"{csv_path}:{line}: empty {name!r} value")
    split = values.get("split")
    if split is not None:
        split = split.lower()
        if split not in SPLIT_NAMES:
            raise DataError(f"{csv_path}:{line}: bad split value {values['split']!r}; "
                            f"use one of {', '.join(SPLIT_NAMES)}")
    return line, values["path"], values["label"], split, values.get("group")
