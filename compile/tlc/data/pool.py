"""An unlabelled pool for ``tlc select``: a folder of images (flat or nested), a CSV with a ``path``
column (other columns, labels included, are ignored), or an ``.npz`` (an ``images`` array, or the
MedMNIST layout ``{train,val,test}_images`` with one split chosen and its labels ignored).

Files are read by the runtime's reader and fitted to the model exactly as ``read_unlabelled`` and
training do (``checked_pixels`` + ``fit_to_model``); every item keeps its pixel digest
(``images.pixel_digest`` of the native image) so labelled copies can be recognised.
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tlc_runtime.errors import TlcRuntimeError
from tlc_runtime.manifest import InputSpec, Preprocessing
from tlc_runtime.preprocess import checked_pixels, fit_to_model

from ..errors import DataError
from .images import IMAGE_SUFFIXES, normalize_array, pixel_digest, read_image
from .records import SPLIT_NAMES


@dataclass(frozen=True, eq=False)
class Pool:
    """``ids``: each item's path (as listed: below the folder, or the CSV's value) or npz id
    (``npz:SPLIT:INDEX``); ``files``: resolved file paths (None for npz items); ``inputs``: the model's
    N×H×W×C input batch; ``digests``: pixel digests of the native images."""

    source: str
    id_column: str  # "path" for files, "id" for npz items
    ids: tuple[str, ...]
    files: tuple[Path | None, ...]
    inputs: np.ndarray
    digests: tuple[bytes, ...]

    def __len__(self) -> int:
        return len(self.ids)


def read_pool(source: str | Path, spec: InputSpec, prep: Preprocessing, split: str | None = None) -> Pool:
    """The pool at ``source`` fitted to the model; DataError for anything unreadable or unsuitable."""
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{path}: pool not found; pass an image folder, a .csv with a path column or an .npz")
    if prep.roi is not None and prep.roi.mode == "given":
        raise DataError(f"{path}: the run crops to given boxes, which an unlabelled pool has none of")
    if split is not None and path.suffix.lower() != ".npz":
        raise DataError(f"{path}: --split chooses a split of an .npz pool; this pool is not an .npz")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise DataError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return _file_pool(path, [(f.relative_to(path).as_posix(), f) for f in files], spec, prep)
    if path.suffix.lower() == ".csv":
        return _file_pool(path, _csv_rows(path), spec, prep)
    if path.suffix.lower() == ".npz":
        return _npz_pool(path, spec, prep, split)
    raise DataError(f"{path}: unsupported pool type {path.suffix or '(no suffix)'!r}; "
                    "pass an image folder, a .csv with a path column or an .npz")


def _file_pool(source: Path, entries: list[tuple[str, Path]], spec: InputSpec, prep: Preprocessing) -> Pool:
    natives = [read_image(file, str(file), prep.dicom) for _, file in entries]
    return Pool(str(source), "path", tuple(name for name, _ in entries), tuple(f.resolve() for _, f in entries),
                _fit(natives, [str(f) for _, f in entries], spec, prep), tuple(map(pixel_digest, natives)))


def _csv_rows(path: Path) -> list[tuple[str, Path]]:
    """(path as written, file) for every row of a CSV with a ``path`` column, relative to its folder."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            if "path" not in header:
                raise DataError(f"{path}: no 'path' column; the first line must be a header naming it "
                                f"(found: {','.join(header) or 'nothing'})")
            col = header.index("path")
            values = [(line, r[col].strip() if len(r) > col else "") for line, r in enumerate(reader, start=2)
                      if r and any(v.strip() for v in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the CSV ({exc})") from None
    rows = []
    for line, value in values:
        if not value:
            raise DataError(f"{path}:{line}: empty 'path' value")
        if not (path.parent / value).is_file():
            raise DataError(f"{path}:{line}: image file {value} not found (paths are relative to {path.parent})")
        rows.append((value, path.parent / value))
    if not rows:
        raise DataError(f"{path}: lists no images")
    return rows


def _npz_pool(path: Path, spec: InputSpec, prep: Preprocessing, split: str | None) -> Pool:
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            key = _npz_key(path, keys, split)
            images = npz[key]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: cannot read the npz file ({exc})") from None
    if images.ndim not in (3, 4) or len(images) == 0:
        raise DataError(f"{path}: {key} has shape {images.shape}; expected (N, H, W) or (N, H, W, C) with N > 0")
    name = split or "images"
    ids = tuple(f"npz:{name}:{i}" for i in range(len(images)))
    natives = [normalize_array(images[i], f"{path}: {ids[i]}") for i in range(len(images))]
    return Pool(str(path), "id", ids, (None,) * len(ids), _fit(natives, [f"{path}: {i}" for i in ids], spec, prep),
                tuple(map(pixel_digest, natives)))


def _npz_key(path: Path, keys: set[str], split: str | None) -> str:
    splits = [s for s in SPLIT_NAMES if f"{s}_images" in keys]
    if split is not None:
        if split not in splits:
            raise DataError(f"{path}: no {split}_images array (splits here: {', '.join(splits) or 'none'})")
        return f"{split}_images"
    if "images" in keys:
        return "images"
    if splits:
        raise DataError(f"{path}: holds the splits {', '.join(splits)}; choose the pool with --split")
    raise DataError(f"{path}: no images array (found: {', '.join(sorted(keys)) or 'none'})")


def _fit(natives: list[np.ndarray], names: list[str], spec: InputSpec, prep: Preprocessing) -> np.ndarray:
    pixels = []
    for image, name in zip(natives, names, strict=True):
        try:
            pixels.append(checked_pixels(image, spec, prep))
        except TlcRuntimeError as exc:
            raise DataError(f"{name}: {exc}") from None
    return fit_to_model(pixels, spec, prep)
