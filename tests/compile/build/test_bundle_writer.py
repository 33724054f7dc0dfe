"""Atomic bundle writing: failures and interruptions leave no bundle and never touch an existing one."""

from __future__ import annotations

import pytest
from tlc.build.bundle_writer import BundleStaging
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
