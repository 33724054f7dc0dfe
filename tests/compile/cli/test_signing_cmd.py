"""tlc keygen / tlc sign: key files, signing an intact bundle, refusing a tampered one."""

from __future__ import annotations

import pytest
import tlc_runtime
from tlc.cli.main import run

from .conftest import runtime_fixtures

pytest.importorskip("cryptography")


def test_keygen_then_sign_gives_a_bundle_only_that_key_opens(tmp_path, capsys):
    assert run(["keygen", str(tmp_path / "site")]) == 0
    assert run(["keygen", str(tmp_path / "other")]) == 0
    assert "key id" in capsys.readouterr().out
    bundle = runtime_fixtures.build_bundle(tmp_path / "bundle").path
    assert run(["sign", str(bundle), "--key", str(tmp_path / "site.key")]) == 0
    assert tlc_runtime.load(bundle, trusted_keys=[tmp_path / "site.pub"]).check().passed
    with pytest.raises(tlc_runtime.SignatureError):
        tlc_runtime.load(bundle, trusted_keys=[tmp_path / "other.pub"])


def test_keygen_never_overwrites_a_key(tmp_path, capsys):
    assert run(["keygen", str(tmp_path / "site")]) == 0
    before = (tmp_path / "site.key").read_bytes()
    assert run(["keygen", str(tmp_path / "site")]) == 2
    assert "already exist" in capsys.readouterr().err
    assert (tmp_path / "site.key").read_bytes() == before


def test_a_tampered_bundle_is_not_signed(tmp_path, capsys):
    assert run(["keygen", str(tmp_path / "site")]) == 0
    bundle = runtime_fixtures.build_bundle(tmp_path / "bundle")
    data = bytearray(bundle.model_path.read_bytes())
    data[-10] ^= 0xFF
    bundle.model_path.write_bytes(bytes(data))
    assert run(["sign", str(bundle.path), "--key", str(tmp_path / "site.key")]) == 2
    assert "sha256" in capsys.readouterr().err
    assert not (bundle.path / "signature.json").exists()


def test_sign_with_a_public_key_is_a_clear_error(tmp_path, capsys):
    assert run(["keygen", str(tmp_path / "site")]) == 0
    bundle = runtime_fixtures.build_bundle(tmp_path / "bundle").path
    assert run(["sign", str(bundle), "--key", str(tmp_path / "site.pub")]) == 2
    assert "not an unencrypted PEM private key" in capsys.readouterr().err
