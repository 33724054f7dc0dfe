"""DICOM in the runtime: the policy (modality LUT, VOI window, MONOCHROME1), one-line errors, and
``predict`` on ``.dcm`` paths with the bundle's recorded policy. Expected values are computed here
from pydicom's raw ``pixel_array`` and the file's tags, independently of ``tlc_runtime.dicom``."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest
from tlc_runtime.errors import InputError, SchemaError
from tlc_runtime.manifest import DicomPolicy, Preprocessing, parse_manifest

pytest.importorskip("pydicom")
from tlc_runtime.dicom import WINDOW_PRESETS, dicom_policy, parse_window, read_dicom  # noqa: E402

MUST_DECODE = ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm")
OPTIONAL_DECODER = ("MR_small_jp2klossless.dcm",)  # JPEG 2000 lossless: Pillow with OpenJPEG or pylibjpeg


def _stored(dicom_files, name: str) -> tuple:
    """(path, raw stored pixels, dataset) of a pydicom test file; skip only where a decoder is optional."""
    path = dicom_files.testdata(name)
    try:
        stored = dicom_files.stored(path)
    except Exception as exc:  # pydicom: RuntimeError/NotImplementedError when no decoder is installed
        if name in MUST_DECODE:
            raise
        pytest.skip(f"no installed decoder for {name}: {str(exc).splitlines()[0]}")
    return path, stored.astype(np.int64), dicom_files.pydicom.dcmread(path, stop_before_pixels=True)


def _modality(stored: np.ndarray, ds) -> np.ndarray:
    return stored * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))


def _linear_window(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 with ymin 0, ymax 65535, written out branch by branch."""
    below = x <= center - 0.5 - (width - 1) / 2
    above = x > center - 0.5 + (width - 1) / 2
    middle = ((x - (center - 0.5)) / (width - 1) + 0.5) * 65535
    return np.rint(np.where(below, 0, np.where(above, 65535, middle))).astype(np.uint16)


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message and message.strip() == message
    return message


@pytest.mark.parametrize("name", MUST_DECODE + OPTIONAL_DECODER)
def test_default_policy_gives_the_stored_values(dicom_files, name):
    path, stored, _ = _stored(dicom_files, name)
    image = read_dicom(path, DicomPolicy())
    assert image.dtype == np.uint16 and image.dtype.isnative and image.flags.c_contiguous
    np.testing.assert_array_equal(image, stored)


@pytest.mark.parametrize("name", MUST_DECODE + OPTIONAL_DECODER)
def test_fixed_window_is_the_dicom_linear_function_of_rescaled_values(dicom_files, name):
    path, stored, ds = _stored(dicom_files, name)
    center, width = (WINDOW_PRESETS["lung"] if name.startswith("CT") else (600.0, 1600.0))
    image = read_dicom(path, DicomPolicy(rescale=True, window=(center, width)))
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, _linear_window(_modality(stored, ds), center, width))


def test_rescale_applies_slope_and_intercept(dicom_files):
    stored = dicom_files.stored(dicom_files.testdata("CT_small.dcm")).astype(np.int64)
    path = dicom_files.variant("CT_small.dcm", "scaled.dcm", RescaleSlope="2", RescaleIntercept="100")
    np.testing.assert_array_equal(read_dicom(path, DicomPolicy(rescale=True)), stored * 2 + 100)
    np.testing.assert_array_equal(read_dicom(path, DicomPolicy(rescale=False)), stored)


def test_rescale_without_tags_is_the_identity(dicom_files):
    path, stored, ds = _stored(dicom_files, "MR_small.dcm")
    assert "RescaleSlope" not in ds
    np.testing.assert_array_equal(read_dicom(path, DicomPolicy(rescale=True)), stored)


def test_window_maps_center_minus_and_plus_half_width_to_the_ends(dicom_files):
    center, width = 1000, 200
    row = np.array([0, center - width // 2, center - width // 2 + 1, center, center + width // 2 - 1,
                    center + width // 2, 4000])
    path = dicom_files.variant("MR_small.dcm", "ramp.dcm", pixels=np.tile(row, (4, 1)))
    out = read_dicom(path, DicomPolicy(window=(center, width)))[0]
    assert out[0] == out[1] == 0 and out[5] == out[6] == 65535
    assert 0 < out[2] < out[3] < out[4] <= 65535
    np.testing.assert_array_equal(out, _linear_window(row.astype(np.float64), center, width))


def test_file_window_is_the_first_voi_window(dicom_files):
    path, stored, ds = _stored(dicom_files, "MR_small.dcm")
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    np.testing.assert_array_equal(read_dicom(path, DicomPolicy(rescale=True, window="file")),
                                  _linear_window(stored.astype(np.float64), center, width))
    multi = dicom_files.variant("MR_small.dcm", "multi.dcm", WindowCenter=[300, 900], WindowWidth=[500, 100])
    np.testing.assert_array_equal(read_dicom(multi, DicomPolicy(window="file")),
                                  _linear_window(stored.astype(np.float64), 300, 500))


def test_file_window_without_window_tags_is_refused(dicom_files):
    path = dicom_files.testdata("CT_small.dcm")
    with pytest.raises(InputError, match=r"CT_small\.dcm: .*no WindowCenter/WindowWidth.*fixed window") as info:
        read_dicom(path, DicomPolicy(rescale=True, window="file"))
    _one_line(info)


def test_monochrome1_is_inverted_so_bright_means_dense(dicom_files):
    _, stored, ds = _stored(dicom_files, "MR_small.dcm")
    path = dicom_files.variant("MR_small.dcm", "m1.dcm", PhotometricInterpretation="MONOCHROME1")
    top = 2 ** int(ds.BitsStored) - 1
    np.testing.assert_array_equal(read_dicom(path, DicomPolicy()), top - stored)
    windowed = _linear_window(stored.astype(np.float64), 600, 1600)
    np.testing.assert_array_equal(read_dicom(path, DicomPolicy(window=(600, 1600))), 65535 - windowed)


def test_negative_values_without_a_window_are_refused_with_a_hint(dicom_files):
    path = dicom_files.testdata("CT_small.dcm")  # stored 128..2191, intercept -1024: air is negative HU
    with pytest.raises(InputError, match=r"CT_small\.dcm: .*negative.*window") as info:
        read_dicom(path, DicomPolicy(rescale=True))
    _one_line(info)
    signed = dicom_files.variant("MR_small.dcm", "neg.dcm", pixels=np.full((4, 4), -5))
    with pytest.raises(InputError, match=r"neg\.dcm: .*negative.*window"):
        read_dicom(signed, DicomPolicy())


def test_multi_frame_is_refused(dicom_files):
    ds = dicom_files.pydicom.dcmread(dicom_files.testdata("MR_small.dcm"))
    path = dicom_files.variant("MR_small.dcm", "two.dcm", NumberOfFrames=2, PixelData=ds.PixelData * 2)
    with pytest.raises(InputError, match=r"two\.dcm: .*2 frames.*one frame per file") as info:
        read_dicom(path, DicomPolicy())
    _one_line(info)


def test_missing_pixel_data_is_refused(dicom_files):
    path = dicom_files.variant("CT_small.dcm", "nopixels.dcm", PixelData=None)
    with pytest.raises(InputError, match=r"nopixels\.dcm: .*no pixel data") as info:
        read_dicom(path, DicomPolicy())
    _one_line(info)


def test_missing_decoder_keeps_pydicoms_plugin_advice(dicom_files):
    path = dicom_files.testdata("MR_small_jpeg_ls_lossless.dcm")
    try:
        dicom_files.stored(path)
    except Exception:
        pass
    else:
        pytest.skip("a JPEG-LS decoder is installed here, so no decoder is missing")
    with pytest.raises(InputError, match=r"MR_small_jpeg_ls_lossless\.dcm: .*JPEG-LS.*pylibjpeg.*"
                                         r"tlc-runtime\[dicom-codecs\]") as info:
        read_dicom(path, DicomPolicy())
    _one_line(info)


def test_unsupported_transfer_syntax_is_one_line(dicom_files):
    from pydicom.encaps import encapsulate
    from pydicom.uid import MPEG2MPML

    ds = dicom_files.pydicom.dcmread(dicom_files.testdata("MR_small.dcm"))
    ds.PixelData = encapsulate([ds.PixelData])
    ds["PixelData"].is_undefined_length, ds["PixelData"].VR = True, "OB"
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    path = dicom_files.root / "mpeg.dcm"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path)
    with pytest.raises(InputError, match=r"mpeg\.dcm: cannot read DICOM pixels .*MPEG2") as info:
        read_dicom(path, DicomPolicy())
    _one_line(info)


def test_without_pydicom_the_error_says_what_to_install(dicom_files, monkeypatch):
    path = dicom_files.testdata("CT_small.dcm")
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(InputError, match=r"CT_small\.dcm: reading DICOM files needs pydicom.*tlc-runtime\[dicom\]"):
        read_dicom(path, DicomPolicy())


def test_window_text_and_presets():
    assert parse_window("none") == "none" and parse_window("file") == "file"
    assert parse_window("lung") == (-600.0, 1500.0) and parse_window("bone") == (400.0, 1800.0)
    assert parse_window("soft-tissue") == (40.0, 400.0) and parse_window("brain") == (40.0, 80.0)
    assert parse_window(" -600 , 1500 ") == (-600.0, 1500.0)
    for bad in ("liver", "40", "40,0", "a,b", "40,inf", ""):
        with pytest.raises(ValueError, match="window"):
            parse_window(bad)
    assert dicom_policy("lung") == DicomPolicy(rescale=True, window=(-600.0, 1500.0))
    assert dicom_policy("none") == DicomPolicy(rescale=False, window="none")
    assert dicom_policy("file", rescale=False) == DicomPolicy(rescale=False, window="file")


def _prep_dict(dicom) -> dict:
    prep = Preprocessing(resize="antialias-bilinear", value_range=(0.0, 65535.0), mean=(0.5,) * 3,
                         std=(0.25,) * 3, channel_rule="replicate", source_bit_depth=16, dicom=dicom)
    return json.loads(json.dumps(dataclasses.asdict(prep)))


def test_manifest_records_the_policy(grey_bundle):
    data = json.loads(grey_bundle.manifest.to_json())
    for policy in (DicomPolicy(rescale=True, window=(-600.0, 1500.0)), DicomPolicy(window="file"), None):
        data["preprocessing"] = _prep_dict(policy)
        assert parse_manifest(json.loads(json.dumps(data))).preprocessing.dicom == policy
    data["preprocessing"].pop("dicom")  # bundles written before DICOM support
    assert parse_manifest(data).preprocessing.dicom is None
    for bad, match in (({"rescale": True, "window": [40, 0]}, "width"), ({"window": "lung"}, "window"),
                       ({"rescale": 1, "window": "none"}, "rescale"), ({"invert": True}, "unknown key")):
        data["preprocessing"]["dicom"] = bad
        with pytest.raises(SchemaError, match=match):
            parse_manifest(data)


@pytest.fixture
def dicom_bundle(make_bundle):
    """factory(policy) → a tiny 16-bit grey bundle whose manifest records ``policy``, loaded."""
    pytest.importorskip("onnxruntime")
    import tlc_runtime

    def make(policy: DicomPolicy | None, name: str):
        bundle = make_bundle(name, bit_depth=16, classes=("a", "b"))
        m = bundle.manifest
        bundle.write_manifest(dataclasses.replace(m, preprocessing=dataclasses.replace(m.preprocessing, dicom=policy)))
        return tlc_runtime.load(bundle.path, backend="onnxruntime", device="cpu")

    return make


def test_predict_reads_dcm_with_the_manifest_policy(dicom_files, dicom_bundle):
    ct, mr = dicom_files.testdata("CT_small.dcm"), dicom_files.testdata("MR_small_RLE.dcm")
    lung = DicomPolicy(rescale=True, window=WINDOW_PRESETS["lung"])
    clf = dicom_bundle(lung, "lung")
    for path in (ct, str(ct)):
        assert clf.predict(path).probabilities == clf.predict(read_dicom(ct, lung)).probabilities
    batch = clf.predict_batch([ct, mr])
    assert [p.probabilities for p in batch] == [clf.predict(read_dicom(p, lung)).probabilities for p in (ct, mr)]
    np.testing.assert_array_equal(clf.prepare(ct), clf.prepare(read_dicom(ct, lung)))
    raw = dicom_bundle(None, "raw")  # no policy recorded: the default, stored values
    np.testing.assert_array_equal(raw.prepare(ct), raw.prepare(read_dicom(ct, DicomPolicy())))
    assert not np.array_equal(raw.prepare(ct), clf.prepare(ct))


def test_predict_on_a_bad_dcm_is_a_one_line_input_error(dicom_files, dicom_bundle):
    clf = dicom_bundle(DicomPolicy(rescale=True), "rescaled")
    with pytest.raises(InputError, match=r"CT_small\.dcm: .*negative") as info:
        clf.predict(dicom_files.testdata("CT_small.dcm"))
    _one_line(info)
