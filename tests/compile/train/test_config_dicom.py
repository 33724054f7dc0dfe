"""``TrainConfig``'s DICOM options: the policy they make, the documented rescale default, refusals."""

from __future__ import annotations

import pytest
from tlc.errors import ConfigError
from tlc.train import TrainConfig
from tlc_runtime.manifest import DicomPolicy


def test_default_reads_stored_values_as_before():
    assert TrainConfig().dicom_policy == DicomPolicy(rescale=False, window="none")


@pytest.mark.parametrize("window, rescale, policy", [
    ("lung", None, DicomPolicy(rescale=True, window=(-600.0, 1500.0))),
    ("brain", False, DicomPolicy(rescale=False, window=(40.0, 80.0))),
    ("file", None, DicomPolicy(rescale=True, window="file")),
    ("-100,300", None, DicomPolicy(rescale=True, window=(-100.0, 300.0))),
    ("none", True, DicomPolicy(rescale=True, window="none")),
])
def test_window_and_rescale_make_the_policy(window, rescale, policy):
    config = TrainConfig(dicom_window=window, dicom_rescale=rescale)
    assert config.dicom_policy == policy
    assert TrainConfig.from_dict(config.to_dict()).dicom_policy == policy  # as stored in run.json


@pytest.mark.parametrize("window", ["liver", "40", "40,0.5", "nan,40"])
def test_bad_window_is_a_config_error(window):
    with pytest.raises(ConfigError, match="dicom window"):
        TrainConfig(dicom_window=window)
