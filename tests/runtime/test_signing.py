"""Signed bundles: load(trusted_keys=...) takes a bundle only when a trusted key signed its manifest."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest
import tlc_runtime
from tlc_runtime.backends.onnxruntime import OnnxRuntimeBackend
from tlc_runtime.signing import SIGNATURE_NAME, generate_key_pair, load_private_key, sign_bundle

pytest.importorskip("cryptography")
pytest.importorskip("onnxruntime")


@pytest.fixture
def keys(tmp_path):
    """Two key pairs: (private, public) of "ours" and of "theirs"."""
    return {name: generate_key_pair(tmp_path / name) for name in ("ours", "theirs")}


@pytest.fixture
def signed(make_bundle, keys):
    bundle = make_bundle()
    sign_bundle(bundle.path, load_private_key(keys["ours"][0]))
    return bundle


def _refuse_backend(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a backend parsed a file of a bundle whose signature was not checked")
    monkeypatch.setattr(OnnxRuntimeBackend, "open", classmethod(refuse))


def test_a_signed_bundle_loads_with_its_key_as_a_path_or_bytes(signed, keys):
    public = keys["ours"][1]
    assert tlc_runtime.load(signed.path, trusted_keys=[public]).check().passed
    assert tlc_runtime.load(signed.path, trusted_keys=[keys["theirs"][1], public.read_bytes()]).check().passed


def test_another_key_is_refused_before_any_backend_runs(signed, keys, monkeypatch):
    _refuse_backend(monkeypatch)
    with pytest.raises(tlc_runtime.SignatureError, match="not among the trusted keys"):
        tlc_runtime.load(signed.path, trusted_keys=[keys["theirs"][1]])


def test_an_unsigned_bundle_is_refused_only_when_keys_are_given(make_bundle, keys, monkeypatch):
    bundle = make_bundle()
    assert tlc_runtime.load(bundle.path).check().passed
    _refuse_backend(monkeypatch)
    with pytest.raises(tlc_runtime.SignatureError, match="is not signed"):
        tlc_runtime.load(bundle.path, trusted_keys=[keys["ours"][1]])


def test_one_changed_manifest_byte_breaks_the_signature(signed, keys, monkeypatch):
    path = signed.path / "manifest.json"
    text = path.read_text()
    path.write_text(text.replace('"atol_prob": 0.0001', '"atol_prob": 0.0002'))
    assert path.read_text() != text
    _refuse_backend(monkeypatch)
    with pytest.raises(tlc_runtime.SignatureError, match="does not match manifest.json"):
        tlc_runtime.load(signed.path, trusted_keys=[keys["ours"][1]])


def test_one_changed_artifact_byte_is_caught_by_the_signed_hashes(signed, keys):
    model = signed.model_path
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(tlc_runtime.IntegrityError):
        tlc_runtime.load(signed.path, trusted_keys=[keys["ours"][1]])


@pytest.mark.parametrize("edit", [
    lambda r: r.update(signature=r["signature"][:-4] + "AAA="),
    lambda r: r.update(algorithm="rsa"),
    lambda r: r.pop("key_id"),
])
def test_a_broken_signature_record_is_refused(signed, keys, edit):
    path = signed.path / SIGNATURE_NAME
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    with pytest.raises(tlc_runtime.SignatureError):
        tlc_runtime.load(signed.path, trusted_keys=[keys["ours"][1]])


def test_keys_are_private_never_overwritten_and_checked_for_type(tmp_path, keys):
    private, public = keys["ours"]
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    with pytest.raises(tlc_runtime.SignatureError, match="already exist"):
        generate_key_pair(tmp_path / "ours")
    with pytest.raises(tlc_runtime.SignatureError, match="not an unencrypted PEM private key"):
        load_private_key(public)
    with pytest.raises(tlc_runtime.SignatureError, match="not a PEM public key"):
        tlc_runtime.load(tmp_path, trusted_keys=[private])


def test_check_command_takes_keys(signed, keys):
    def check(*args):
        return subprocess.run([sys.executable, "-m", "tlc_runtime", "check", str(signed.path), *args],
                              capture_output=True, text=True, timeout=120)

    ok = check("--key", str(keys["ours"][1]))
    assert ok.returncode == 0 and ok.stdout.startswith("PASS")
    refused = check("--key", str(keys["theirs"][1]))
    assert refused.returncode == 2 and "not among the trusted keys" in refused.stderr
    assert "Traceback" not in refused.stderr
