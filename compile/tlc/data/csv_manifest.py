"""CSV manifest sources: header ``path,label[,split][,group]``; other columns are ignored.

Paths are relative to the CSV's folder (absolute paths are allowed). Labels define the classes.
When a ``split`` column exists every row must say train, val or test, and those splits are used as
given. ``group`` (patient/site id) keeps a group on one side of an automatic split.

Multi-task (``tasks=("finding", "view", ...)``): the header names one label column per task
(``path,finding,view[,split][,group]``; no ``label`` column needed). The first task is the primary
one: it defines ``class_names`` and the split stratification, so every row needs its label. Any other
task's cell may be empty: that image has no label for that task (-1, masked out of its loss and metrics).
"""

from __future__ import annotations

import csv
from pathlib import Path

from tlc_runtime.manifest import DicomPolicy

from ..errors import DataError
from .images import IMAGE_SUFFIXES, pixel_digest, read_image
from .progress import track
from .records import SPLIT_NAMES, Item, RawData, Task, sort_class_names

REQUIRED_COLUMNS = ("path", "label")
OPTIONAL_COLUMNS = ("split", "group")

Row = tuple[int, str, str, str | None, str | None, tuple[str, ...]]  # line, path, label, split, group, extra tasks


def load_csv(csv_path: Path, dicom: DicomPolicy | None = None, tasks: tuple[str, ...] | None = None) -> RawData:
    """Parse the manifest, check every row, then read the images it lists (``.dcm`` under ``dicom``);
    ``tasks``: the label columns of a multi-task manifest, primary first (see the module docstring)."""
    label_columns = _label_columns(csv_path, tasks)
    rows = _read_rows(csv_path, label_columns)
    class_names = sort_class_names({row[2] for row in rows})
    index = {name: i for i, name in enumerate(class_names)}
    extra = [sort_class_names({row[5][t] for row in rows} - {""}) for t in range(len(label_columns) - 1)]
    _check_extra_classes(csv_path, label_columns[1:], extra)
    extra_index = [{name: i for i, name in enumerate(names)} for names in extra]
    base = csv_path.parent
    items = []
    for line, rel, label, split, group, others in track(rows, f"Reading {csv_path.name}"):
        path = base / rel
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"{csv_path}:{line}: {rel} is not a supported image type "
                            f"({', '.join(IMAGE_SUFFIXES)})")
        if not path.is_file():
            raise DataError(f"{csv_path}:{line}: image file {rel} not found (paths are relative to "
                            f"{base})")
        image = read_image(path, str(path), dicom)
        task_labels = tuple(idx[v] if v else -1 for idx, v in zip(extra_index, others, strict=True))
        items.append(Item(rel, image, index[label], split, group, pixel_digest(image), task_labels))
    has_groups = bool(rows) and rows[0][4] is not None
    task_list = () if tasks is None else (Task(label_columns[0], class_names),
                                          *(Task(n, c) for n, c in zip(label_columns[1:], extra, strict=True)))
    return RawData("csv", str(csv_path), class_names, tuple(items), has_groups=has_groups, tasks=task_list)


def _label_columns(csv_path: Path, tasks: tuple[str, ...] | None) -> tuple[str, ...]:
    """``("label",)``, or the task columns (lower-case, at least two, unique, none a reserved column)."""
    if tasks is None:
        return ("label",)
    columns = tuple(t.strip().lower() for t in tasks)
    reserved = [c for c in columns if c in ("path", *OPTIONAL_COLUMNS)]
    if len(columns) < 2 or len(set(columns)) != len(columns) or reserved or not all(columns):
        raise DataError(f"{csv_path}: --tasks needs at least two distinct label columns other than path, "
                        f"split and group, got {','.join(tasks)}")
    return columns


def _check_extra_classes(csv_path: Path, names: tuple[str, ...], classes: list[tuple[str, ...]]) -> None:
    few = [f"{n} ({len(c)})" for n, c in zip(names, classes, strict=True) if len(c) < 2]
    if few:
        raise DataError(f"{csv_path}: task column(s) {', '.join(few)} hold fewer than two classes")


def _read_rows(csv_path: Path, label_columns: tuple[str, ...] = ("label",)) -> list[Row]:
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            required = ("path", *label_columns)
            missing = [c for c in required if c not in header]
            if missing:
                raise DataError(f"{csv_path}: missing column(s) {', '.join(missing)}; the first line must be "
                                f"a header like '{','.join(required)}[,split][,group]' "
                                f"(found: {','.join(header) or 'nothing'})")
            col = {name: header.index(name) for name in required + OPTIONAL_COLUMNS if name in header}
            rows = []
            for line, record in enumerate(reader, start=2):
                if not record or all(not v.strip() for v in record):
                    continue
                rows.append(_parse_row(csv_path, line, record, col, label_columns))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{csv_path}: cannot read the CSV manifest ({exc})") from None
    return rows


def _parse_row(csv_path: Path, line: int, record: list[str], col: dict[str, int],
               label_columns: tuple[str, ...]) -> Row:
    if len(record) <= max(col.values()):
        raise DataError(f"{csv_path}:{line}: has {len(record)} value(s), fewer than the header's columns")
    values = {name: record[i].strip() for name, i in col.items()}
    for name in col:
        if not values[name] and name not in label_columns[1:]:  # only a secondary task's label may be missing
            raise DataError(f"{csv_path}:{line}: empty {name!r} value")
    split = values.get("split")
    if split is not None:
        split = split.lower()
        if split not in SPLIT_NAMES:
            raise DataError(f"{csv_path}:{line}: bad split value {values['split']!r}; "
                            f"use one of {', '.join(SPLIT_NAMES)}")
    return (line, values["path"], values[label_columns[0]], split, values.get("group"),
            tuple(values[name] for name in label_columns[1:]))
