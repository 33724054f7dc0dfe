"""Training's view of the runtime's one image reader: ``tlc_runtime.images`` decodes every file and
``tlc_runtime.native`` holds the native-form rules; here their ``InputError`` becomes a ``DataError``
naming the file (rules in ``tlc_runtime.images``' docstring).

Native form: ``uint8`` or ``uint16``, H×W (grey) or H×W×3 (RGB), the very array ``predict(path)``
starts from.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tlc_runtime import images as runtime_images
from tlc_runtime.errors import InputError
from tlc_runtime.native import to_native

from ..errors import DataError

if TYPE_CHECKING:
    from tlc_runtime.manifest import DicomPolicy

DICOM_SUFFIXES = tuple(sorted(runtime_images.DICOM_SUFFIXES))
IMAGE_SUFFIXES = tuple(sorted(runtime_images.PILLOW_SUFFIXES)) + DICOM_SUFFIXES
"""Files a folder or CSV source lists as images (every type the runtime reads but ``.npy``, which a
data folder may hold for other purposes)."""


def read_image(path: Path, name: str, dicom: DicomPolicy | None = None) -> np.ndarray:
    """Native pixels of ``path`` as the runtime reads them (``.dcm`` under the run's ``dicom`` policy);
    ``name`` names the file in errors."""
    try:
        return runtime_images.read_image(path, dicom=dicom)
    except InputError as exc:
        message = str(exc).removeprefix(f"{path}: ")
        raise DataError(f"{name}: {message}") from None


def normalize_array(array: np.ndarray, name: str) -> np.ndarray:
    """An in-memory image (an npz entry) in native form, by the runtime's rules; DataError naming it."""
    try:
        return to_native(array)
    except InputError as exc:
        raise DataError(f"{name}: {exc}") from None


def pixel_digest(image: np.ndarray) -> bytes:
    """sha256 of an image's dtype, shape and pixels: equal digests mean identical images."""
    h = hashlib.sha256()
    h.update(f"{image.dtype.name}|{'x'.join(map(str, image.shape))}|".encode())
    h.update(np.ascontiguousarray(image, dtype=image.dtype.newbyteorder("<")).tobytes())
    return h.digest()
