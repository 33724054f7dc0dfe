"""`tlc predict`: results for good files, one line `Error: ...` and exit 2 for hostile ones."""

from __future__ import annotations

import json

import numpy as np
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
