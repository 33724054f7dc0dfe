"""Exit codes: only a real interrupt is 130; an EOFError from library code is an internal error."""

from __future__ import annotations

import pytest
import tlc_runtime
from tlc.cli.main import run


def _raise(exc: BaseException):
    def fail(*args, **kwargs):
        raise exc
    return fail


def test_eof_error_from_library_code_is_an_internal_error_not_an_interrupt(monkeypatch, capsys):
    monkeypatch.setattr(tlc_runtime, "load", _raise(EOFError("No data left in file")))
    assert run(["predict", "bundle", "x.npy"]) == 3
    err = capsys.readouterr().err
    assert "Internal error: EOFError: No data left in file" in err
    assert "Interrupted" not in err


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    monkeypatch.setattr(tlc_runtime, "load", _raise(KeyboardInterrupt()))
    assert run(["predict", "bundle", "x.npy"]) == 130
    assert "Interrupted." in capsys.readouterr().err


def test_eof_error_with_tlc_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("TLC_DEBUG", "1")
    monkeypatch.setattr(tlc_runtime, "load", _raise(EOFError("No data left in file")))
    with pytest.raises(EOFError):
        run(["predict", "bundle", "x.npy"])
