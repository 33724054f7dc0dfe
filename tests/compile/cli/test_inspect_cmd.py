"""``tlc inspect`` on a malformed bundle: exit 2 and one ``Error:`` line, never an internal error."""

from __future__ import annotations

import pytest
from tlc.cli.main import run


@pytest.mark.parametrize("text", [
    '{"schema_version": 1, "x": ' + "[" * 1000 + "]" * 1000 + "}",  # RecursionError inside json before
    '{"schema_version": 1, "x": ' + "9" * 5000 + "}",                # int-digit ValueError before
], ids=["deep-nesting", "huge-int"])
def test_inspect_malformed_manifest_exits_2_with_one_line(tmp_path, capsys, text):
    (tmp_path / "manifest.json").write_text(text)
    assert run(["inspect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and err.count("\n") == 1, err
