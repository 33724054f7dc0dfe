"""``load_dataset``: pick the source reader from the path (folder / .csv / .npz), then assemble."""

from __future__ import annotations

from pathlib import Path

from tlc_runtime.manifest import DicomPolicy
from tlc_runtime.roi import RoiRule

from ..errors import DataError
from .assemble import assemble
from .dataset import Dataset
from .images import DICOM_SUFFIXES
from .records import RawData
from .roi import with_roi


def load_dataset(source: str | Path, *, seed: int = 0, val_fraction: float = 0.15,
                 test_fraction: float = 0.15, dicom: DicomPolicy | None = None,
                 duplicates: str = "error", roi: str | Path | RoiRule | None = None,
                 tasks: tuple[str, ...] | None = None) -> Dataset:
    """Load an image folder, a CSV manifest (``*.csv``) or a MedMNIST-style ``*.npz``.

    The kind comes from the path alone (directory / suffix). Sources that give splits are used as
    given; otherwise a deterministic stratified (group-aware) split is drawn with ``seed`` and the
    two fractions. ``.dcm`` files are read under ``dicom`` (None: ``DicomPolicy()``, the stored
    values), which the Dataset records when it holds any. ``duplicates``: "error" refuses an image in
    both train and test; "drop" removes the train copies of val/test images and lists them in
    ``Dataset.dropped_duplicates``. ``roi`` crops every image before resizing: "auto", an automatic
    RoiRule or a boxes CSV (``tlc.data.roi``). ``tasks``: the label columns of a multi-task CSV
    manifest, primary first (``tlc.data.csv_manifest``); other sources have one task. Raises
    DataError (naming the file) for anything unreadable or inconsistent.
    """
    raw = read_source(source, dicom, tasks)
    dataset = assemble(raw, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                       dicom=(dicom or DicomPolicy()) if _has_dicom(raw) else None, duplicates=duplicates)
    return with_roi(dataset, roi)


def read_source(source: str | Path, dicom: DicomPolicy | None = None,
                tasks: tuple[str, ...] | None = None) -> RawData:
    """Every item of an image folder, CSV manifest or npz as its reader gives it (no splits, no checks
    across items): what ``load_dataset`` assembles, and what ``tlc select`` matches pixel digests in."""
    path = Path(source).expanduser()
    if tasks is not None and path.suffix.lower() != ".csv":
        raise DataError(f"{path}: several tasks need a CSV manifest with one label column per task "
                        "(path,finding,view,...)")
    if not path.exists():
        raise DataError(f"{path}: dataset not found; pass an image folder, a .csv manifest or an .npz file")
    if path.is_dir():
        from .folder import load_folder

        raw = load_folder(path, dicom)
    elif path.suffix.lower() == ".csv":
        from .csv_manifest import load_csv

        raw = load_csv(path, dicom, tasks)
    elif path.suffix.lower() == ".npz":
        from .npz import load_npz

        raw = load_npz(path)
    else:
        raise DataError(f"{path}: unsupported dataset type {path.suffix or '(no suffix)'!r}; "
                        "pass an image folder, a .csv manifest or an .npz file")
    return raw


def _has_dicom(raw: RawData) -> bool:
    return any(Path(item.id).suffix.lower() in DICOM_SUFFIXES for item in raw.items)
