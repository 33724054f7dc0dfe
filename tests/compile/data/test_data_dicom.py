"""Training reads DICOM with the runtime's reader and policy: identical arrays, the policy recorded in
the dataset's preprocessing, and the runtime's one-line errors as DataErrors naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from tlc.data import load_dataset
from tlc.data.images import read_image
from tlc.errors import DataError
from tlc_runtime.errors import InputError
from tlc_runtime.manifest import DicomPolicy

pytest.importorskip("pydicom")
from tlc_runtime.dicom import read_dicom as runtime_read_dicom  # noqa: E402

FILES = ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_jp2klossless.dcm")
POLICIES = (DicomPolicy(), DicomPolicy(rescale=True, window=(-600.0, 1500.0)), DicomPolicy(window=(600.0, 1600.0)),
            DicomPolicy(rescale=True, window="file"))


@pytest.mark.parametrize("policy", POLICIES, ids=["stored", "lung", "fixed-no-rescale", "file"])
@pytest.mark.parametrize("name", FILES + ("MONOCHROME1",))
def test_training_reader_is_the_runtime_reader(dicom_files, name, policy):
    if name == "MONOCHROME1":
        path = dicom_files.variant("MR_small.dcm", "m1.dcm", PhotometricInterpretation="MONOCHROME1")
    else:
        path = dicom_files.testdata(name)
    try:
        expected = runtime_read_dicom(path, policy)
    except InputError as exc:  # then training refuses it with the same message
        if "cannot read DICOM pixels" in str(exc) and name == "MR_small_jp2klossless.dcm":
            pytest.skip(f"no JPEG 2000 decoder installed here: {exc}")
        with pytest.raises(DataError) as info:
            read_image(path, str(path), policy)
        assert str(info.value) == str(exc)
        return
    image = read_image(path, str(path), policy)
    assert image.dtype == expected.dtype
    np.testing.assert_array_equal(image, expected)


def _dicom_folder(dicom_files, root, tags=None) -> None:
    """Two classes of three MR_small variants each (distinct pixels, so no duplicates)."""
    stored = dicom_files.stored(dicom_files.testdata("MR_small.dcm")).astype(np.int64)
    for c, flip in (("a", False), ("b", True)):
        for i in range(3):
            pixels = (stored[:, ::-1] if flip else stored) + 10 * i
            dicom_files.variant("MR_small.dcm", root / c / f"{i}.dcm", pixels=pixels, **(tags or {}))


def test_dataset_reads_and_records_the_policy(dicom_files, tmp_path):
    root = tmp_path / "scans"
    _dicom_folder(dicom_files, root)
    policy = DicomPolicy(rescale=True, window="file")
    ds = load_dataset(root, dicom=policy)
    assert ds.dicom == policy and ds.bit_depth == 16
    assert ds.preprocessing((0.0,) * 3, (1.0,) * 3).dicom == policy
    image = {i: im for s in ds.splits.values() for i, im in zip(s.ids, s.images, strict=True)}["b/1.dcm"]
    np.testing.assert_array_equal(image, runtime_read_dicom(root / "b" / "1.dcm", policy))
    default = load_dataset(root)
    assert default.dicom == DicomPolicy() and default.bit_depth == 12  # stored values up to 2165


def test_dataset_without_dicom_records_no_policy(make_folder):
    ds = load_dataset(make_folder({"a": 3, "b": 3}), dicom=DicomPolicy(window="file"))
    assert ds.dicom is None and ds.preprocessing((0.0,) * 3, (1.0,) * 3).dicom is None


@pytest.mark.parametrize("tags, match", [
    ({"NumberOfFrames": 2}, r"multi-frame DICOM \(2 frames\)"),
    ({"PixelData": None}, r"no pixel data"),
    ({"RescaleIntercept": "-5000"}, r"negative pixel values .*--dicom-window"),
])
def test_dicom_problems_are_one_line_data_errors(dicom_files, tmp_path, tags, match):
    root = tmp_path / "scans"
    _dicom_folder(dicom_files, root)
    dicom_files.variant("MR_small.dcm", root / "a" / "bad.dcm", **tags)
    with pytest.raises(DataError, match=r"scans/a/bad\.dcm: .*" + match) as info:
        load_dataset(root, dicom=DicomPolicy(rescale=True))
    assert "\n" not in str(info.value)
