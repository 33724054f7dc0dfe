"""DICOM files (``.dcm``) for training: the runtime's reader, so a file becomes at training time what
it becomes in ``predict``.

``tlc_runtime.dicom.read_dicom`` applies the run's ``DicomPolicy`` (modality LUT, VOI window,
MONOCHROME1 inversion; rules in its module docstring) and imports pydicom only when called. Its
one-line ``InputError`` becomes a ``DataError`` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tlc_runtime.dicom import read_dicom as _runtime_read_dicom
from tlc_runtime.errors import InputError
from tlc_runtime.manifest import DicomPolicy

from ..errors import DataError
from .images import normalize_array


def read_dicom(path: Path, name: str, policy: DicomPolicy | None = None) -> np.ndarray:
    """One single-frame DICOM image → native uint8/uint16 array under ``policy`` (None: stored values)."""
    try:
        image = _runtime_read_dicom(path, policy)
    except InputError as exc:
        message = str(exc)
        raise DataError(name + message[len(str(path)):] if message.startswith(str(path)) else message) from None
    return normalize_array(image, name)
