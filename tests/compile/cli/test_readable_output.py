"""CLI output reads well piped or at 80 columns: no phrase split across lines, no raw Python."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from tlc.cli import output
from tlc.targets import builtin_targets

RAW_PYTHON = re.compile(r"None|\{'|\['|': |\d\.\d{9,}")


def _tlc(*args: str, columns: int = 80) -> str:
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "dumb"}
    proc = subprocess.run([sys.executable, "-c", "from tlc.cli.main import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_target_list_is_one_line_per_target_within_80_columns():
    lines = _tlc("targets").splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    for name in builtin_targets():
        assert sum(line.split()[0] == name for line in lines if line.strip()) == 1, name


def test_one_target_is_shown_in_words():
    text = _tlc("targets", "x86-cpu")
    assert not RAW_PYTHON.search(text), RAW_PYTHON.search(text)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "percentile 99.999" in text and "agreement ≥ 99%," in text
    assert "fp32 (default), int8" in text


def test_phrases_break_only_between_phrases(monkeypatch, capsys):
    monkeypatch.setattr(output.console, "_width", 30)
    output.phrases("built bundles/a", "agreement=100.00%", "bal-acc drop=0.00%", "max|Δprob|=1.00e-06")
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["built bundles/a", "agreement=100.00%", "bal-acc drop=0.00%", "max|Δprob|=1.00e-06"]
    monkeypatch.setattr(output.console, "_width", 20)
    output.phrases("a=1,", "b=2,", "a phrase of several words", sep=" ", indent=2)
    assert capsys.readouterr().out.splitlines() == ["a=1, b=2,", "  a phrase of several words"]


@pytest.mark.parametrize(("value", "shown"), [(-1e-9, "0.00%"), (-0.0, "0.00%"), (0.1234, "12.34%"),
                                              (-0.01, "-1.00%"), (None, "—")])
def test_percentages_never_show_minus_zero(value, shown):
    assert output.pct(value) == shown


def test_inspect_shows_no_raw_python_and_keeps_the_check_command_whole(tiny_bundle):
    text = _tlc("inspect", str(tiny_bundle))
    assert not RAW_PYTHON.search(text), RAW_PYTHON.search(text)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert f"python -m tlc_runtime check {tiny_bundle}" in text


def test_train_help_lists_every_architecture(capsys):
    from tlc.cli.main import run
    from tlc.cli.train_cmd import ARCHITECTURES
    from tlc.models import list_models

    assert sorted(ARCHITECTURES) == list_models()
    assert run(["train", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in ARCHITECTURES)


def test_an_unknown_target_gets_a_suggestion(capsys):
    from tlc.cli.main import run

    assert run(["targets", "x86cpu"]) == 2
    assert "did you mean 'x86-cpu'?" in capsys.readouterr().err
    assert run(["targets", "qqqqqq"]) == 2
    assert "did you mean" not in capsys.readouterr().err


def test_predict_json_ends_with_a_newline(tiny_bundle, tmp_path):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    out = _tlc("predict", str(tiny_bundle), str(tmp_path / "a.png"), "--json")
    assert out.endswith("]\n") and not out.endswith("\n\n")


def test_shell_completion_offers_commands_and_target_names(monkeypatch):
    def complete(words: str, index: int) -> str:
        env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(index), "_TLC_COMPLETE": "bash_complete"}
        proc = subprocess.run([sys.executable, "-c", "from tlc.cli.main import main; main()"], env=env,
                              capture_output=True, text=True, timeout=120)
        return proc.stdout

    assert "plain,targets" in complete("tlc tar", 1)
    assert complete("tlc build runs/a --target x8", 4).split() == ["plain,x86-cpu"]
    assert "plain,jetson-orin-nano" in complete("tlc targets jetson-o", 2)


def test_readme_shows_budget_flags_as_placeholders_and_documents_every_exit_code():
    """The README's verify line must not show values that look like defaults but are not (FP32 needs
    agreement 1), and it names every exit code the CLI uses, 130 included."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    verify_lines = [line for line in readme.splitlines() if line.startswith("tlc verify ")]
    assert verify_lines and all(not re.search(r"--(max-drop|min-agreement|confidence) \d", line)
                                for line in verify_lines)
    codes = " ".join(readme.split())
    assert all(f"{code} {what}" in codes for code, what in
               (("0", "success"), ("1", "verification failed"), ("2", "user error"), ("3", "internal error"),
                ("130", "interrupted")))
