"""`tlc predict --csv OUT --nproc 2`: shards scored by 2 processes merged in input order, a failed shard
exits non-zero with no CSV, and --resume scores only the shards that are missing."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from tlc.cli.main import run

pytest.importorskip("torch")
pytestmark = pytest.mark.slow


@pytest.fixture
def pool(image_files):
    """Seven files (an odd count: shards of 4 and 3) in an order that is not sorted, one unreadable."""
    rng = np.random.default_rng(3)
    paths = [image_files.npy(f"p{i}.npy", rng.integers(0, 256, (8, 8), np.uint8)) for i in (5, 1, 6, 0, 3)]
    broken = image_files.root / "broken.npy"
    broken.write_bytes(b"not an array")
    return [*paths[:2], broken, *paths[2:], image_files.npy("p9.npy", np.zeros((8, 8), np.uint8))]


def _read(path):
    with open(path, newline="") as fp:
        return list(csv.reader(fp))


def test_two_processes_write_the_csv_of_one(tiny_bundle, pool, tmp_path, capsys):
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    files = [str(p) for p in pool]
    assert run(["predict", str(tiny_bundle), *files, "--csv", str(one)]) == 2  # the broken file
    assert run(["predict", str(tiny_bundle), *files, "--csv", str(two), "--nproc", "2"]) == 2
    assert _read(two) == _read(one)
    assert [row[0] for row in _read(two)[1:]] == files
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no shards or temp files left
    assert "1 of 7 files could not be read" in capsys.readouterr().err


def test_a_failed_shard_writes_no_csv_and_resume_scores_the_rest(tiny_bundle, pool, tmp_path, monkeypatch, capfd,
                                                                  in_workers):
    from tlc.cli.sharded import shard_dir

    out = tmp_path / "out.csv"
    args = ["predict", str(tiny_bundle), *map(str, pool), "--csv", str(out), "--nproc", "2"]
    fail_shard_1(in_workers)
    assert run(args) == 3
    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "rank 1" in errors[0] and "--resume" in errors[0]
    assert not out.exists()
    kept = sorted(p.name for p in shard_dir(out).glob("shard-*.csv"))
    assert kept == ["shard-00000-of-00002.csv"]
    (shard_dir(out) / kept[0]).write_text(_marked(shard_dir(out) / kept[0]))  # shows whether it is rescored

    monkeypatch.undo()  # the workers of the next call start clean
    assert run([*args, "--resume"]) == 2
    rows = _read(out)
    assert [row[0] for row in rows[1:]] == [str(p) for p in pool]
    assert rows[1][1] == "kept" and rows[5][1] != "kept"  # shard 0 reused, shard 1 scored now
    assert not shard_dir(out).exists()


def test_resume_refuses_shards_of_another_job(tiny_bundle, pool, tmp_path, monkeypatch, capfd, in_workers):

    out = tmp_path / "out.csv"
    fail_shard_1(in_workers)
    assert run(["predict", str(tiny_bundle), *map(str, pool), "--csv", str(out), "--nproc", "2"]) == 3
    monkeypatch.undo()  # the workers of the next call start clean
    assert run(["predict", str(tiny_bundle), *map(str, pool[:3]), "--csv", str(out), "--nproc", "2",
                "--resume"]) == 2
    assert "shards of another job" in capfd.readouterr().err and not out.exists()


def _marked(shard):
    rows = _read(shard)
    rows[1][1] = "kept"
    return "".join(",".join(row) + "\r\n" for row in rows)


def fail_shard_1(in_workers) -> None:
    """Rank 1's workers raise before writing their shard."""
    in_workers("""
        import tlc.cli.predict_cmd as predict_cmd

        def fail_rank_1(bundle, options, rank, paths, out, _write=predict_cmd._write_shard):
            if rank == 1:
                raise RuntimeError("shard 1 failed on purpose")
            return _write(bundle, options, rank, paths, out)

        predict_cmd._write_shard = fail_rank_1
    """)
