"""What is labelled already: the run's own data (every split, matched by pixel digest) and ``--exclude``
CSVs (a ``path`` or ``id`` column: rows match a pool item by its id as listed, or by the pixels of the
file the row names, relative to the CSV's folder)."""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tlc_runtime.manifest import DicomPolicy

from ..data.checks import DataWarning
from ..data.images import IMAGE_SUFFIXES, pixel_digest, read_image
from ..data.loader import read_source
from ..errors import DataError, TlcError
from ..runs import RunInfo


@dataclass
class Labelled:
    """Ids and pixel digests known to be labelled; ``images``: the run's own native images."""

    ids: set[str] = field(default_factory=set)
    digests: set[bytes] = field(default_factory=set)
    images: list[np.ndarray] = field(default_factory=list)

    def excludes(self, item_id: str, digest: bytes) -> bool:
        return item_id in self.ids or digest in self.digests


def run_labelled(run: RunInfo) -> Labelled:
    """The run's data as recorded in run.json; a DataWarning (and nothing excluded) when it is gone."""
    if run.data.kind in ("digits", "arrays") or not Path(run.data.source).exists():
        warnings.warn(f"the run's data {run.data.source} cannot be read from here, so its labelled images are "
                      "not excluded from the pool; pass them with --exclude", DataWarning, stacklevel=2)
        return Labelled()
    raw = read_source(run.data.source, run.preprocessing.dicom)
    return Labelled(digests={item.digest for item in raw.items}, images=[item.image for item in raw.items])


def read_exclude(path: Path, dicom: DicomPolicy | None = None) -> Labelled:
    """Ids and digests of the rows of an exclude CSV (header with a ``path`` or ``id`` column; ``.dcm``
    files read under the run's ``dicom`` policy)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            column = next((c for c in ("path", "id") if c in header), None)
            if column is None:
                raise DataError(f"{path}: no 'path' or 'id' column; the first line must be a header naming one "
                                f"(found: {','.join(header) or 'nothing'})")
            col = header.index(column)
            values = [r[col].strip() for r in reader if len(r) > col and r[col].strip()]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the exclude CSV ({exc})") from None
    found = Labelled(ids=set(values))
    for value in values:
        file = path.parent / value
        if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
            try:
                found.digests.add(pixel_digest(read_image(file, str(file), dicom)))
            except TlcError:
                continue  # an unreadable file still excludes its id
    return found
