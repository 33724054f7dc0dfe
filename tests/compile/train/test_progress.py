"""Progress within an epoch: plain periodic lines when stderr is not a terminal, none when disabled."""

from __future__ import annotations

from tlc.train import progress
from tlc.train.progress import Reporter


def _epoch(reporter: Reporter, steps: int = 3, batch: int = 4) -> None:
    with reporter.epoch_bar(2, 5, steps * batch) as advance:
        for _ in range(steps):
            advance(batch)


def test_not_a_terminal_prints_a_line_per_interval(monkeypatch, capsys):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    _epoch(Reporter(True))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" elapsed")[0].rsplit("  ", 1)[0] for line in lines] == \
        ["epoch 2/5  4/12 images", "epoch 2/5  8/12 images"]  # the epoch's own summary line ends it
    assert all("left" in line and "\x1b" not in line for line in lines)


def test_short_epochs_print_no_progress_lines(capsys):
    _epoch(Reporter(True))
    assert capsys.readouterr().err == ""


def test_disabled_reporter_prints_nothing(monkeypatch, capsys):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    _epoch(Reporter(False))
    assert capsys.readouterr() == ("", "")
