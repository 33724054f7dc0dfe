"""build_bundle on a tiny real run: refusals come before any work, one build per output at a time,
broken preprocessing and broken budgets never produce a bundle."""

from __future__ import annotations

import json
import shutil

import pytest
from tlc.bundler import builder
from tlc.bundler.builder import build_bundle
from tlc.cli.main import run
from tlc.errors import BudgetError, ConfigError


def _quiet(_message: str) -> None:
    pass


def _hidden(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("field, value", [("mean", [float("nan")] * 3), ("std", [1.0, float("inf"), 1.0])])
def test_non_finite_preprocessing_is_refused_before_export(tiny_run_dir, tmp_path, monkeypatch, field, value):
    broken = tmp_path / "run"
    shutil.copytree(tiny_run_dir, broken)
    info = json.loads((broken / "run.json").read_text())
    info["preprocessing"][field] = value
    (broken / "run.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match=rf"preprocessing\.{field}\[\d\]: expected a finite number"):
        build_bundle(broken, "x86-cpu", tmp_path / "bundle", log=_quiet)
    assert not (tmp_path / "bundle").exists() and _hidden(tmp_path) == []


def test_existing_out_is_refused_before_reference_inference(tiny_run_dir, tmp_path, monkeypatch):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "manifest.json").write_text("{}")

    def no_inference(*_args, **_kwargs):
        raise AssertionError("reference inference ran before the --out check")

    monkeypatch.setattr(builder, "reference_outputs", no_inference)
    with pytest.raises(ConfigError, match="already exists"):
        build_bundle(tiny_run_dir, "x86-cpu", out, log=_quiet)
    assert (out / "manifest.json").read_text() == "{}"


def test_a_second_build_to_the_same_out_is_refused_while_the_first_runs(tiny_run_dir, tmp_path, monkeypatch):
    out = tmp_path / "bundle"
    real = builder.get_builder
    second: list[Exception | None] = []

    def racing(backend, precision):
        def build(ctx):
            if not second:  # once: a concurrent build to the same --out, started while this one builds
                second.append(None)
                try:
                    build_bundle(tiny_run_dir, "x86-cpu", out, log=_quiet)
                except ConfigError as exc:
                    second[0] = exc
            return real(backend, precision)(ctx)
        return build

    monkeypatch.setattr(builder, "get_builder", racing)
    result = build_bundle(tiny_run_dir, "x86-cpu", out, log=_quiet)
    assert result.bundle == out and (out / "manifest.json").is_file()
    assert len(second) == 1 and "another build" in str(second[0])
    assert _hidden(tmp_path) == []


def test_a_stale_staging_directory_is_removed_by_the_next_build(tiny_run_dir, tmp_path):
    stale = tmp_path / ".bundle.staging-0123abcd"
    (stale / "work").mkdir(parents=True)
    (stale / "work" / "model.fp32.onnx").write_bytes(b"x" * 1000)
    build_bundle(tiny_run_dir, "x86-cpu", tmp_path / "bundle", log=_quiet)
    assert (tmp_path / "bundle" / "manifest.json").is_file()
    assert _hidden(tmp_path) == []


def test_a_missed_budget_exits_1_and_writes_nothing(tiny_run_dir, tmp_path, capsys, monkeypatch):
    from tlc.verify.budget import Check, Verdict

    # the verdict is forced, so that the test does not depend on this machine's numerics
    missed = Verdict((Check("top1_agreement", 0.5, 1.0, False, ">=", 0.5, "observed"),), "one image = 1 pt", 0.0)
    monkeypatch.setattr(builder, "judge", lambda *_args: missed)
    out = tmp_path / "bundle"
    code = run(["build", str(tiny_run_dir), "--target", "x86-cpu", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Error: " in err and "breaks its accuracy budget" in err and "one image = 1 pt" in err
    assert not out.exists() and _hidden(tmp_path) == []


@pytest.mark.parametrize("flags, said", [(["--min-agreement", "1.01"], "min_agreement must be within 0..1"),
                                         (["--confidence", "1.0"], "confidence must be 0")])
def test_a_budget_that_means_nothing_is_a_user_error(tiny_run_dir, tmp_path, capsys, flags, said):
    out = tmp_path / "bundle"
    assert run(["build", str(tiny_run_dir), "--target", "x86-cpu", "--out", str(out), *flags]) == 2
    assert said in capsys.readouterr().err and not out.exists()


def test_a_budget_the_data_cannot_decide_is_refused_before_building(tiny_run_dir, tmp_path, capsys):
    out = tmp_path / "bundle"
    code = run(["build", str(tiny_run_dir), "--target", "x86-cpu", "--precision", "int8", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "cannot decide this budget at 95% confidence" in err and "building" not in err
    assert not out.exists() and _hidden(tmp_path) == []


def test_budget_error_is_a_verification_failure():
    assert BudgetError("x").exit_code == 1


def test_kill_9_of_a_real_build_is_cleaned_up_by_the_next_build(tiny_run_dir, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "bundle"
    cli = "import sys; from tlc.cli.main import main; main(sys.argv[1:])"
    proc = subprocess.Popen([sys.executable, "-c", cli, "build", str(tiny_run_dir), "--target", "x86-cpu",
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".bundle.staging-*/work")) and proc.poll() is None:
            assert time.monotonic() < deadline, "the build never created its staging directory"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and not out.exists() and _hidden(tmp_path)
    build_bundle(tiny_run_dir, "x86-cpu", out, log=_quiet)
    assert (out / "manifest.json").is_file() and _hidden(tmp_path) == []
