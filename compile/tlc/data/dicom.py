"""DICOM files (``.dcm``) via pydicom, imported only when a dataset has some.

Kept simple on purpose: the raw stored values are used (no RescaleSlope/Intercept, no windowing),
as uint8 when 8 bits are allocated and uint16 otherwise; MONOCHROME1 is inverted so that bright
means dense, as in MONOCHROME2. Negative stored values are refused; multi-frame files too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .images import normalize_array


def read_dicom(path: Path, name: str) -> np.ndarray:
    """One single-frame DICOM image → native uint8/uint16 array."""
    try:
        import pydicom
    except ImportError:
        raise DataError(f"{name}: reading DICOM files needs pydicom; install it with "
                        "`pip install 'tlc[dicom]'`") from None
    try:
        ds = pydicom.dcmread(path)
        array = np.asarray(ds.pixel_array)
    except Exception as exc:  # pydicom raises many types for broken or unsupported files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{name}: cannot read DICOM pixels ({reason}); replace or remove the file") from None
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        raise DataError(f"{name}: multi-frame DICOM is not supported; export one frame per file")
    if np.issubdtype(array.dtype, np.signedinteger):
        if array.size and int(array.min()) < 0:
            raise DataError(f"{name}: has negative stored pixel values; export it with unsigned "
                            "(PixelRepresentation 0) values")
    elif not np.issubdtype(array.dtype, np.unsignedinteger):
        raise DataError(f"{name}: DICOM pixel type {array.dtype} is not supported")
    bits_allocated = int(getattr(ds, "BitsAllocated", 16))
    top = 255 if bits_allocated <= 8 else 65535
    if array.size and int(array.max()) > top:
        raise DataError(f"{name}: stored pixel values reach {int(array.max())}, above 16 bits; "
                        "export 8-bit or 16-bit pixels")
    array = array.astype(np.uint8 if bits_allocated <= 8 else np.uint16)
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        bits_stored = int(getattr(ds, "BitsStored", bits_allocated))
        array = (2**bits_stored - 1 - array.astype(np.int64)).clip(0, None).astype(array.dtype)
    return normalize_array(array, name)
