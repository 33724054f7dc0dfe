"""tlc build --sign: the bundle is signed in staging, so it appears signed or not at all."""

from __future__ import annotations

import pytest
import tlc_runtime
from tlc.cli.main import run
from tlc_runtime.signing import generate_key_pair

pytest.importorskip("cryptography")


def test_build_sign_writes_a_bundle_its_public_key_opens(tiny_run_dir, tmp_path):
    private, public = generate_key_pair(tmp_path / "site")
    out = tmp_path / "bundle"
    assert run(["build", str(tiny_run_dir), "--target", "x86-cpu", "--out", str(out), "--sign", str(private)]) == 0
    assert tlc_runtime.load(out, trusted_keys=[public], check=True).check().passed


def test_an_unusable_key_stops_the_build_before_it_starts(tiny_run_dir, tmp_path, capsys):
    _, public = generate_key_pair(tmp_path / "site")
    out = tmp_path / "bundle"
    assert run(["build", str(tiny_run_dir), "--target", "x86-cpu", "--out", str(out), "--sign", str(public)]) == 2
    err = capsys.readouterr().err
    assert "not an unencrypted PEM private key" in err and "reference" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.key", "site.pub"]
