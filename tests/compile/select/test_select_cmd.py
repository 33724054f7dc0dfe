"""``tlc select`` from the command line: the CSV it writes, atomically, and one-line errors (exit 2)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from tlc.cli.main import run


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: "), err
    return err[0]


def test_writes_the_budget_with_scores_ranks_and_predictions(digits, tmp_path, capsys):
    out = tmp_path / "next.csv"
    assert run(["select", str(digits.run), str(digits.pool_npz), "--budget", "7", "--strategy", "margin",
                "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["id", "score", "rank", "predicted", "probability"]
    assert [int(r["rank"]) for r in rows] == list(range(1, 8))
    assert [float(r["score"]) for r in rows] == sorted((float(r["score"]) for r in rows), reverse=True)
    assert all(r["predicted"] in ("0", "1") and 0.5 <= float(r["probability"]) <= 1 for r in rows)
    assert "7 of" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["next.csv"]


def test_a_nested_folder_pool_lists_paths_below_it(digits, tmp_path):
    for i, image in enumerate(digits.pool_images[:6]):
        path = tmp_path / "pool" / f"site{i % 2}" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
    out = tmp_path / "next.csv"
    assert run(["select", str(digits.run), str(tmp_path / "pool"), "--budget", "3", "--strategy", "coreset",
                "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3 and all(r["path"].startswith("site") for r in rows)
    # the selection is labelled next: excluding it leaves the other three
    again = tmp_path / "again.csv"
    (tmp_path / "pool" / "list.csv").write_text("path\n" + "".join(f"site{i % 2}/{i}.png\n" for i in range(6)))
    assert run(["select", str(digits.run), str(tmp_path / "pool" / "list.csv"), "--budget", "6",
                "--exclude", str(out), "--out", str(again)]) == 0
    assert {r["path"] for r in csv.DictReader(again.open())} == \
        {f"site{i % 2}/{i}.png" for i in range(6)} - {r["path"] for r in rows}


def test_a_failed_selection_keeps_the_previous_csv(digits, tmp_path, capsys):
    out = tmp_path / "next.csv"
    out.write_text("previous selection\n")
    np.savez(tmp_path / "copies.npz", images=digits.train_images[:4])
    assert run(["select", str(digits.run), str(tmp_path / "copies.npz"), "--budget", "2", "--out", str(out)]) == 2
    assert "labelled already" in _one_line_error(capsys)
    assert out.read_text() == "previous selection\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copies.npz", "next.csv"]


def test_an_interrupted_write_leaves_no_half_csv(digits, tmp_path, monkeypatch):
    out = tmp_path / "next.csv"
    out.write_text("previous selection\n")
    import csv as csv_module

    real_writer = csv_module.writer

    def dies(fp):
        writer = real_writer(fp)

        class Dying:
            def writerow(self, row):
                if row[0] != "id":
                    raise KeyboardInterrupt
                writer.writerow(row)
        return Dying()

    monkeypatch.setattr(csv_module, "writer", dies)
    assert run(["select", str(digits.run), str(digits.pool_npz), "--budget", "2", "--out", str(out)]) == 130
    assert out.read_text() == "previous selection\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["next.csv"]


@pytest.mark.parametrize("case", ["no run", "no pool", "npz splits without --split", "csv without path",
                                  "bad split", "missing exclude", "empty folder"])
def test_bad_inputs_are_one_line_errors_with_exit_2(digits, tmp_path, capsys, case):
    pool, extra, run_dir = str(digits.pool_npz), [], str(digits.run)
    if case == "no run":
        run_dir = str(tmp_path)
    elif case == "no pool":
        pool = str(tmp_path / "missing")
    elif case == "npz splits without --split":
        pool = str(digits.root / "labelled.npz")
    elif case == "csv without path":
        (tmp_path / "pool.csv").write_text("file\nx.png\n")
        pool = str(tmp_path / "pool.csv")
    elif case == "bad split":
        pool, extra = str(digits.pool_npz), ["--split", "train"]
    elif case == "missing exclude":
        extra = ["--exclude", str(tmp_path / "none.csv")]
    else:
        (tmp_path / "empty").mkdir()
        pool = str(tmp_path / "empty")
    assert run(["select", run_dir, pool, "--budget", "2", "--out", str(tmp_path / "o.csv"), *extra]) == 2
    message = _one_line_error(capsys)
    assert {"no run": "not a tlc run", "no pool": "pool not found", "npz splits without --split": "--split",
            "csv without path": "no 'path' column", "bad split": "no train_images",
            "missing exclude": "file not found", "empty folder": "no image files"}[case] in message
    assert not (tmp_path / "o.csv").exists()


def test_an_npz_split_is_a_pool_with_its_labels_ignored(digits, tmp_path):
    out = tmp_path / "next.csv"
    np.savez(tmp_path / "medmnist.npz", train_images=digits.train_images, train_labels=np.zeros(120, np.int64),
             test_images=digits.pool_images, test_labels=np.full(len(digits.pool_images), 7))
    assert run(["select", str(digits.mc_run), str(tmp_path / "medmnist.npz"), "--split", "test",
                "--budget", "5", "--strategy", "mc-dropout", "--mc-samples", "4", "--out", str(out)]) == 0
    assert all(r["id"].startswith("npz:test:") for r in csv.DictReader(out.open()))


def test_the_cli_offers_every_strategy_the_library_has():
    from tlc.cli.select_cmd import STRATEGIES
    from tlc.select import STRATEGIES as LIBRARY

    assert STRATEGIES == LIBRARY
