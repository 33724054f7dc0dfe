"""Image-folder sources: ``ROOT/CLASS/**/*.ext`` or ``ROOT/{train,val,test}/CLASS/**/*.ext``.

Class names are the class folder names (in the split layout: those under ``train/``). Files are
found recursively below each class folder; hidden files/folders and other file types are ignored.
"""

from __future__ import annotations

from pathlib import Path

from tlc_runtime.manifest import DicomPolicy

from ..errors import DataError
from .images import IMAGE_SUFFIXES, pixel_digest, read_image
from .progress import track
from .records import SPLIT_NAMES, Item, RawData, sort_class_names


def load_folder(root: Path, dicom: DicomPolicy | None = None) -> RawData:
    """Scan ``root``, read every image (``.dcm`` under ``dicom``) and label it by its class folder."""
    entries = _scan(root)
    class_names = sort_class_names({label for _, label, _ in entries})
    index = {name: i for i, name in enumerate(class_names)}
    items = []
    for path, label, split in track(entries, f"Reading {root.name}"):
        rel = path.relative_to(root).as_posix()
        image = read_image(path, str(path), dicom)
        items.append(Item(rel, image, index[label], split, None, pixel_digest(image)))
    return RawData("folder", str(root), class_names, tuple(items))


def _scan(root: Path) -> list[tuple[Path, str, str | None]]:
    subdirs = _subdirs(root)
    split_dirs = [d for d in subdirs if d.name in SPLIT_NAMES]
    if not split_dirs:
        return _class_entries(root, None)
    if len(split_dirs) != len(subdirs):
        others = sorted(d.name for d in subdirs if d.name not in SPLIT_NAMES)
        raise DataError(f"{root}: mixes split folders ({', '.join(d.name for d in split_dirs)}) with class "
                        f"folders ({', '.join(others)}); use ROOT/CLASS/... or ROOT/{{train,val,test}}/CLASS/...")
    if not (root / "train").is_dir():
        raise DataError(f"{root}: has {', '.join(d.name for d in split_dirs)} folders but no train/ folder")
    entries: list[tuple[Path, str, str | None]] = []
    for split in SPLIT_NAMES:
        if (root / split).is_dir():
            entries.extend(_class_entries(root / split, split))
    return entries


def _class_entries(folder: Path, split: str | None) -> list[tuple[Path, str, str | None]]:
    """(file, class, split) for every image under ``folder``'s class folders."""
    loose = _image_files_directly_in(folder)
    if loose:
        where = f"{split}/CLASS/..." if split else "ROOT/CLASS/..."
        raise DataError(f"{loose[0]}: images must sit in a class folder ({where})")
    entries: list[tuple[Path, str, str | None]] = []
    for class_dir in _subdirs(folder):
        files = _class_files(class_dir)
        if split in (None, "train") and not files:
            raise DataError(f"{class_dir}: class folder has no images "
                            f"({', '.join(IMAGE_SUFFIXES)}); add images or remove it")
        entries.extend((f, class_dir.name, split) for f in files)
    return entries


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_files(class_dir: Path) -> list[Path]:
    files = []
    for path in class_dir.rglob("*"):
        rel = path.relative_to(class_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            files.append(path)
    return sorted(files)


def _image_files_directly_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
