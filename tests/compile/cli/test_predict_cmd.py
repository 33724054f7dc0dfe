"""`tlc predict`: results for good files, one line `Error: ...` and exit 2 for hostile ones; folders and
`--csv` for many files."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import tlc_runtime
from tlc.cli.main import run


def test_predict_reads_a_npy_file(tiny_bundle, image_files, capsys):
    path = image_files.npy("ok.npy", np.arange(64, dtype=np.uint8).reshape(8, 8))
    assert run(["predict", str(tiny_bundle), str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["image"] == str(path)


def test_hostile_file_is_a_one_line_error_with_exit_2(tiny_bundle, hostile_file, capsys):
    assert run(["predict", str(tiny_bundle), str(hostile_file)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("Error: ") and hostile_file.name in lines[0]
    assert captured.out == ""


def test_max_pixels_option_lowers_and_raises_the_limit(tiny_bundle, image_files, capsys):
    path = image_files.npy("nine.npy", np.zeros((9, 9), np.uint8))
    assert run(["predict", str(tiny_bundle), str(path), "--max-pixels", "80"]) == 2
    assert "9×9" in capsys.readouterr().err
    assert run(["predict", str(tiny_bundle), str(path), "--max-pixels", "81"]) == 0


def _folder(image_files, n: int = 5):
    rng = np.random.default_rng(2)
    (image_files.root / "scans" / "more").mkdir(parents=True)
    paths = [image_files.npy(f"scans/{'more/' if i % 2 else ''}s{i}.npy", rng.integers(0, 256, (8, 9), np.uint8))
             for i in range(n)]
    (image_files.root / "scans" / "README.txt").write_text("not an image")
    return image_files.root / "scans", sorted(paths)


def _rows(path):
    with open(path, newline="") as fp:
        return list(csv.DictReader(fp))


def test_csv_has_a_row_per_file_with_probabilities(tiny_bundle, image_files, tmp_path, capsys):
    folder, paths = _folder(image_files)
    single = image_files.npy("single.npy", np.full((8, 8), 7, np.uint8))
    out = tmp_path / "out.csv"
    assert run(["predict", str(tiny_bundle), str(folder), str(single), "--csv", str(out), "--batch-size", "2"]) == 0
    rows = _rows(out)
    clf = tlc_runtime.load(tiny_bundle)
    assert [r["path"] for r in rows] == [str(p) for p in [*paths, single]]
    assert list(rows[0]) == ["path", "label", "confidence", *(f"prob_{c}" for c in clf.class_names), "error"]
    for row in rows:
        want = clf.predict(row["path"])
        assert row["label"] == want.label and row["error"] == ""
        probs = [float(row[f"prob_{c}"]) for c in clf.class_names]
        np.testing.assert_allclose(probs, list(want.probabilities.values()), rtol=0, atol=1e-6)
        assert float(row["confidence"]) == max(probs)
    assert re.search(r"6 images in [\d.]+ s \([\d.]+ images/s\)", capsys.readouterr().out)


def test_unreadable_files_get_an_error_row_and_exit_2(tiny_bundle, image_files, tmp_path, capsys):
    folder, paths = _folder(image_files, 3)
    broken = image_files.zero_bytes("scans/broken.npy")
    out = tmp_path / "out.csv"
    assert run(["predict", str(tiny_bundle), str(folder), "--csv", str(out)]) == 2
    rows = {r["path"]: r for r in _rows(out)}
    assert len(rows) == 4 and rows[str(broken)]["label"] == "" and "empty" in rows[str(broken)]["error"]
    assert all(rows[str(p)]["error"] == "" and rows[str(p)]["label"] for p in paths)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: 1 of 4 files could not be read") and "out.csv" in err[0]


def test_a_run_that_dies_leaves_no_half_csv(tiny_bundle, image_files, tmp_path, monkeypatch, capsys):
    folder, _ = _folder(image_files, 4)
    out = tmp_path / "out.csv"
    out.write_text("previous results\n")
    calls = []

    def dies_on_second_batch(self, batch):
        calls.append(len(batch))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return infer(self, batch)

    infer = tlc_runtime.Classifier.predict_outputs
    monkeypatch.setattr(tlc_runtime.Classifier, "predict_outputs", dies_on_second_batch)
    assert run(["predict", str(tiny_bundle), str(folder), "--csv", str(out), "--batch-size", "1"]) == 130
    assert out.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["out.csv"]


def test_a_folder_without_csv_prints_the_table(tiny_bundle, image_files, capsys):
    folder, paths = _folder(image_files, 2)
    assert run(["predict", str(tiny_bundle), str(folder), "--json"]) == 0
    assert [r["image"] for r in json.loads(capsys.readouterr().out)] == [str(p) for p in paths]
