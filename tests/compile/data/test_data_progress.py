"""The loading progress bar appears only on a terminal and never changes what is loaded."""

from __future__ import annotations

import io

from tlc.data import progress


def test_no_bar_without_a_tty(monkeypatch):
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    items = list(range(progress.MIN_ITEMS_FOR_BAR + 5))
    assert list(progress.track(items, "Reading")) == items
    assert stderr.getvalue() == ""


def test_bar_on_a_tty_yields_every_item(monkeypatch):
    monkeypatch.setattr(progress, "_stderr_is_tty", lambda: True)
    items = list(range(progress.MIN_ITEMS_FOR_BAR + 5))
    assert list(progress.track(items, "Reading")) == items
