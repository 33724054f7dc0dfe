"""--roi end to end: `tlc train --roi` records the rule, `build_bundle` puts it in the manifest, and the
runtime crops exactly as training did (given boxes and the automatic rule)."""

from __future__ import annotations

import numpy as np
import pytest
from tlc.bundler.builder import build_bundle
from tlc.cli.main import run
from tlc.data import load_dataset
from tlc.data.roi import with_roi
from tlc.errors import ConfigError
from tlc.runs import read_run_info
from tlc.train import TrainConfig, train
from tlc_runtime.errors import InputError
from tlc_runtime.roi import RoiRule

ort = pytest.importorskip("onnxruntime")
SIZE = 16
TINY = ["--arch", "resnet18", "--img-size", str(SIZE), "--epochs", "1", "--batch-size", "16",
        "--limit-train", "80", "--patience", "1"]


def _quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def cluttered_npz(tmp_path_factory):
    """Digits 0 and 1 at random spots of a 24×24 canvas among clutter (npz), and their true boxes (CSV)."""
    from sklearn.datasets import load_digits
    from tlc.data.digits import cluttered_with_boxes

    bunch = load_digits(n_class=2)
    images, boxes = cluttered_with_boxes(np.rint(bunch.images * 255 / 16).astype(np.uint8),
                                         np.random.default_rng(0), canvas=24)
    root = tmp_path_factory.mktemp("roi")
    cuts = {"train": slice(0, 200), "val": slice(200, 280), "test": slice(280, None)}
    np.savez(root / "digits.npz", **{f"{s}_{k}": a[c] for s, c in cuts.items()
                                     for k, a in (("images", images), ("labels", bunch.target))})
    rows = [f"{s},{i},{','.join(map(str, b))}" for s, c in cuts.items() for i, b in enumerate(boxes[c])]
    (root / "boxes.csv").write_text("\n".join(["split,index,x0,y0,x1,y1", *rows]) + "\n", encoding="utf-8")
    return root / "digits.npz", root / "boxes.csv"


def _load(bundle):
    import tlc_runtime

    return tlc_runtime.load(bundle, backend="onnxruntime", device="cpu", options={"intra_op_num_threads": 1})


def test_train_with_roi_boxes_records_the_rule_and_the_runtime_crops_the_given_box(cluttered_npz, tmp_path):
    npz, boxes = cluttered_npz
    assert run(["train", str(npz), "--out", str(tmp_path / "run"), "--roi", str(boxes), *TINY]) == 0
    info = read_run_info(tmp_path / "run")
    assert info.preprocessing.roi == RoiRule("given") and info.config["roi"] == str(boxes.resolve())
    result = build_bundle(tmp_path / "run", "x86-cpu", tmp_path / "bundle", log=_quiet)
    assert result.manifest.preprocessing.roi == RoiRule("given")
    clf = _load(tmp_path / "bundle")
    assert clf.manifest.preprocessing.roi == RoiRule("given")
    data = load_dataset(npz, roi=boxes)
    test = data.splits["test"]
    trained_on, _ = data.arrays("test", SIZE)
    for i in range(0, len(test), 7):
        image, (x0, y0, x1, y1) = test.images[i], test.rois[i]
        np.testing.assert_array_equal(clf.prepare(image, roi=test.rois[i]), trained_on[i])
        cropped = image[y0:y1, x0:x1].copy()
        assert clf.predict(image, roi=(x0, y0, x1, y1)).probabilities == \
            clf.predict(cropped, roi=(0, 0, x1 - x0, y1 - y0)).probabilities
    with pytest.raises(InputError, match="pass the image's box as roi="):
        clf.predict(test.images[0])
    from tlc.verify.runner import verify

    assert verify(tmp_path / "bundle", npz, log=_quiet, bootstrap=0, max_drop=1.0).comparison.agreement == 1.0
    with pytest.raises(ConfigError, match="trained with ROI 'given' but the data has no ROI"):
        build_bundle(tmp_path / "run", "x86-cpu", tmp_path / "b2", data=load_dataset(npz), log=_quiet)


def test_a_bundle_with_the_auto_rule_crops_in_the_runtime_exactly_as_training_did(cluttered_npz, tmp_path):
    npz, _ = cluttered_npz
    rule = RoiRule("auto", threshold=0.6)  # not the default: the recorded parameters must travel
    data = with_roi(load_dataset(npz), rule)
    config = TrainConfig(arch="resnet18", img_size=SIZE, epochs=1, batch_size=16, limit_train=80, patience=None)
    assert train(data, tmp_path / "run", config, progress=False).preprocessing.roi == rule
    build_bundle(tmp_path / "run", "x86-cpu", tmp_path / "bundle", log=_quiet)  # reloads npz with the rule
    clf = _load(tmp_path / "bundle")
    assert clf.manifest.preprocessing.roi == rule
    trained_on, _ = data.arrays("test", SIZE)
    prepared = np.stack([clf.prepare(image) for image in data.splits["test"].images])
    np.testing.assert_array_equal(prepared, trained_on)
    uncropped, _ = load_dataset(npz).arrays("test", SIZE)
    assert not np.array_equal(prepared, uncropped)  # the rule did crop
