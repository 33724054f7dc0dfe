"""Atomic bundle writing: failures and interruptions leave no bundle and never touch an existing one."""

from __future__ import annotations

import pytest
from tlc.bundler.bundle_writer import BundleStaging
from tlc.errors import BuildError, ConfigError


def _leftovers(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_inside_staging_leaves_nothing(tmp_path, exc):
    out = tmp_path / "bundle"
    with pytest.raises(type(exc)), BundleStaging(out) as staging:
        (staging.path / "model.onnx").write_bytes(b"half written")
        raise exc
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_existing_bundle_is_refused_without_overwrite(tmp_path):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    with pytest.raises(ConfigError, match="already exists"), BundleStaging(out):
        pass
    assert (out / "manifest.json").read_text() == "{}"


def test_failed_overwrite_keeps_the_old_bundle(tmp_path):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "manifest.json").write_text("old")
    with pytest.raises(RuntimeError), BundleStaging(out, overwrite=True) as staging:
        (staging.path / "x").write_text("new")
        raise RuntimeError("build failed")
    assert (out / "manifest.json").read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_a_non_bundle_directory_is_never_replaced(tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("x")
    with pytest.raises(ConfigError, match="not a tlc bundle"), BundleStaging(out, overwrite=True):
        pass
    assert (out / "thesis.tex").exists()


def test_commit_refuses_a_manifest_that_does_not_match_the_files(tmp_path, tiny_manifest):
    out = tmp_path / "bundle"
    with pytest.raises(BuildError, match="failed its own validation"), BundleStaging(out) as staging:
        manifest = tiny_manifest(staging.path)
        (staging.path / manifest.artifacts[0].files["model"].path).write_bytes(b"changed after hashing")
        staging.commit(manifest)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_commit_moves_a_valid_bundle_into_place(tmp_path, tiny_manifest):
    out = tmp_path / "bundle"
    with BundleStaging(out) as staging:
        staging.commit(tiny_manifest(staging.path))
    assert (out / "manifest.json").is_file() and _leftovers(tmp_path) == []


def test_a_second_staging_for_the_same_out_is_refused_and_leaves_the_first_alone(tmp_path, tiny_manifest):
    out = tmp_path / "bundle"
    with BundleStaging(out) as first:
        (first.path / "model.onnx").write_bytes(b"first")
        with pytest.raises(ConfigError, match="another build"), BundleStaging(out):
            pass
        assert (first.path / "model.onnx").read_bytes() == b"first"
        first.commit(tiny_manifest(first.path))
    assert (out / "manifest.json").is_file() and _leftovers(tmp_path) == []


def test_other_outputs_in_the_same_folder_build_side_by_side(tmp_path, tiny_manifest):
    with BundleStaging(tmp_path / "a") as a, BundleStaging(tmp_path / "b") as b:
        a.commit(tiny_manifest(a.path))
        b.commit(tiny_manifest(b.path))
    assert (tmp_path / "a" / "manifest.json").is_file() and (tmp_path / "b" / "manifest.json").is_file()


@pytest.mark.parametrize("overwrite", [False, True])
def test_commit_refuses_an_out_that_appeared_during_the_build(tmp_path, tiny_manifest, overwrite):
    out = tmp_path / "bundle"
    with pytest.raises(ConfigError, match="appeared"), BundleStaging(out, overwrite=overwrite) as staging:
        manifest = tiny_manifest(staging.path)
        out.mkdir()  # created by someone else meanwhile (not a tlc bundle)
        (out / "notes.txt").write_text("mine")
        staging.commit(manifest)
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and _leftovers(tmp_path) == []


def test_commit_without_overwrite_never_replaces_a_bundle_that_appeared(tmp_path, tiny_manifest):
    out = tmp_path / "bundle"
    with pytest.raises(ConfigError, match="appeared"), BundleStaging(out) as staging:
        manifest = tiny_manifest(staging.path)
        out.mkdir()
        (out / "manifest.json").write_text("theirs")
        staging.commit(manifest)
    assert (out / "manifest.json").read_text() == "theirs" and _leftovers(tmp_path) == []


def test_stale_staging_and_work_dirs_are_removed_on_the_next_build(tmp_path, tiny_manifest):
    out = tmp_path / "bundle"
    stale = tmp_path / ".bundle.staging-deadbeef"
    (stale / "work").mkdir(parents=True)
    (stale / "model.onnx").write_bytes(b"x" * 100)
    unrelated = tmp_path / ".other.staging-deadbeef"
    unrelated.mkdir()
    with BundleStaging(out) as staging:
        assert staging.work.is_dir() and staging.work.is_relative_to(tmp_path)
        assert not stale.exists()
        staging.commit(tiny_manifest(staging.path))
    assert _leftovers(tmp_path) == [unrelated.name]


def test_an_interrupted_swap_restores_the_old_bundle(tmp_path):
    """kill -9 between moving the old bundle aside and moving the new one in leaves only the backup."""
    out = tmp_path / "bundle"
    backup = tmp_path / ".bundle.old-0123abcd"
    backup.mkdir()
    (backup / "manifest.json").write_text("old")
    with pytest.raises(ConfigError, match="already exists"), BundleStaging(out):
        pass
    assert (out / "manifest.json").read_text() == "old" and _leftovers(tmp_path) == []


_HOLDER = """
import sys, time
from tlc.bundler.bundle_writer import BundleStaging
with BundleStaging(sys.argv[1]) as staging:
    (staging.path / "model.onnx").write_bytes(b"x" * 4096)
    (staging.work / "model.fp32.onnx").write_bytes(b"x" * 4096)
    print("ready", flush=True)
    time.sleep(60)
"""


def test_kill_9_mid_build_leaves_nothing_after_the_next_build(tmp_path, tiny_manifest):
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "bundle"
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out)], stdout=subprocess.PIPE, text=True,
                            env=os.environ.copy())
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(ConfigError, match="another build"), BundleStaging(out):
            pass  # the killed build's lock is still live here
        assert any(p.name.startswith(".bundle.staging-") for p in tmp_path.iterdir())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    with BundleStaging(out) as staging:
        staging.commit(tiny_manifest(staging.path))
    assert (out / "manifest.json").is_file() and _leftovers(tmp_path) == []
