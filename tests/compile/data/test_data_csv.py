"""CSV manifest sources: labels define classes, given splits, group-aware automatic splits, errors."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from tlc.data import load_dataset
from tlc.errors import DataError


def _write_csv(path, header, rows):
    path.write_text("\n".join([header, *(",".join(map(str, r)) for r in rows)]) + "\n")
    return path


@pytest.fixture
def grouped_csv(tmp_path, write_image, rand_image):
    """12 patients, 2–5 images each, labels per image (some patients have both classes)."""
    rows = []
    n = 0
    for patient in range(12):
        for k in range(2 + patient % 4):
            label = "sick" if (patient + (k == 0 and patient % 3 == 0)) % 2 else "healthy"
            rel = f"img/p{patient}_{k}.png"
            write_image(tmp_path / rel, rand_image(n))
            rows.append((rel, label, f"patient-{patient}"))
            n += 1
    return _write_csv(tmp_path / "labels.csv", "path,label,group", rows), rows


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_groups_never_straddle_splits(grouped_csv, seed):
    csv_path, rows = grouped_csv
    ds = load_dataset(csv_path, seed=seed, val_fraction=0.2, test_fraction=0.2)
    assert ds.kind == "csv" and ds.class_names == ("healthy", "sick")
    sides = defaultdict(set)
    for name, split in ds.splits.items():
        assert split.groups is not None and len(split.groups) == len(split)
        for group in split.groups:
            sides[group].add(name)
    assert len(sides) == 12
    assert all(len(s) == 1 for s in sides.values()), {g: s for g, s in sides.items() if len(s) > 1}
    assert all(len(ds.splits[name]) > 0 for name in ("train", "val", "test"))
    expected = {rel: group for rel, _, group in rows}
    for split in ds.splits.values():
        assert all(expected[i] == g for i, g in zip(split.ids, split.groups, strict=True))
    assert ds.summary()["splits"]["train"]["groups"] == len(set(ds.splits["train"].groups))


def test_given_splits_and_extra_columns(tmp_path, write_image, rand_image):
    rows = []
    for n, (split, label) in enumerate([("train", "2"), ("train", "10"), ("val", "2"), ("test", "10"),
                                        ("TRAIN", "10")]):
        write_image(tmp_path / f"{n}.png", rand_image(n))
        rows.append((f"{n}.png", label, split, "note"))
    ds = load_dataset(_write_csv(tmp_path / "m.csv", "path,label,split,comment", rows))
    assert ds.class_names == ("2", "10")  # numeric labels sort numerically
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 3, "val": 1, "test": 1}
    assert ds.splits["train"].ids == ("0.png", "1.png", "4.png")
    assert ds.splits["train"].labels.tolist() == [0, 1, 1]
    assert ds.splits["train"].groups is None


def test_missing_columns(tmp_path):
    csv_path = _write_csv(tmp_path / "m.csv", "file,label", [("a.png", "x")])
    with pytest.raises(DataError, match=r"m\.csv: missing column\(s\) path"):
        load_dataset(csv_path)


def test_headerless_csv_is_refused(tmp_path):
    csv_path = _write_csv(tmp_path / "m.csv", "a.png,x", [("b.png", "y")])
    with pytest.raises(DataError, match=r"m\.csv: missing column\(s\) path, label"):
        load_dataset(csv_path)


def test_bad_split_value(tmp_path, write_image, rand_image):
    write_image(tmp_path / "a.png", rand_image(0))
    csv_path = _write_csv(tmp_path / "m.csv", "path,label,split", [("a.png", "x", "training")])
    with pytest.raises(DataError, match=r"m\.csv:2: bad split value 'training'"):
        load_dataset(csv_path)


def test_missing_file(tmp_path, write_image, rand_image):
    write_image(tmp_path / "a.png", rand_image(0))
    csv_path = _write_csv(tmp_path / "m.csv", "path,label", [("a.png", "x"), ("gone.png", "y")])
    with pytest.raises(DataError, match=r"m\.csv:3: image file gone\.png not found"):
        load_dataset(csv_path)


def test_empty_label_names_the_line(tmp_path):
    csv_path = _write_csv(tmp_path / "m.csv", "path,label", [("a.png", "")])
    with pytest.raises(DataError, match=r"m\.csv:2: empty 'label'"):
        load_dataset(csv_path)


def test_val_label_unseen_in_train(tmp_path, write_image, rand_image):
    rows = [("0.png", "a", "train"), ("1.png", "b", "train"), ("2.png", "c", "val")]
    for n in range(3):
        write_image(tmp_path / f"{n}.png", rand_image(n))
    csv_path = _write_csv(tmp_path / "m.csv", "path,label,split", rows)
    with pytest.raises(DataError, match=r"label 'c' of 2\.png \(val\) is not in the class list of train"):
        load_dataset(csv_path)


def test_csv_rows_only_header_is_empty_dataset(tmp_path):
    csv_path = _write_csv(tmp_path / "m.csv", "path,label", [])
    with pytest.raises(DataError, match=r"m\.csv: no images found"):
        load_dataset(csv_path)


def test_csv_pixels_match_files(tmp_path, write_image, rand_image):
    rows = []
    for n in range(6):
        write_image(tmp_path / "sub" / f"{n}.png", rand_image(n))
        rows.append((f"sub/{n}.png", "ab"[n % 2]))
    ds = load_dataset(_write_csv(tmp_path / "m.csv", "path,label", rows))
    for split in ds.splits.values():
        for image_id, image in zip(split.ids, split.images, strict=True):
            np.testing.assert_array_equal(image, rand_image(int(image_id[4])))
