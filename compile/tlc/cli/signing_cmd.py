"""``tlc keygen`` and ``tlc sign``: Ed25519 keys and bundle signatures (``tlc_runtime.signing``)."""

from __future__ import annotations

from pathlib import Path

import click

from .output import console


@click.command()
@click.argument("name", type=click.Path(path_type=Path))
def keygen(name: Path) -> None:
    """Write a new Ed25519 key pair: NAME.key (private, readable by you only) and NAME.pub.

    Keep NAME.key where builds run (``tlc build --sign NAME.key``, ``tlc sign``); ship NAME.pub with
    the devices (``tlc_runtime.load(bundle, trusted_keys=["NAME.pub"])``,
    ``python -m tlc_runtime check BUNDLE --key NAME.pub``).
    """
    from tlc_runtime.signing import generate_key_pair, key_id, load_public_key

    private, public = generate_key_pair(name)
    console.print(f"private key {private} (keep it secret), public key {public}, "
                  f"key id {key_id(load_public_key(public))}")


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--key", "key_path", required=True, type=click.Path(path_type=Path),
              help="Ed25519 private key (PEM; tlc keygen makes one).")
def sign(bundle: Path, key_path: Path) -> None:
    """Sign an intact BUNDLE's manifest (which hashes every other file) with KEY.

    The bundle is checked first: a bundle whose files no longer match their hashes is never signed.
    A previous signature is replaced.
    """
    from tlc_runtime.integrity import verify_bundle
    from tlc_runtime.manifest import read_manifest
    from tlc_runtime.signing import key_id, load_private_key, sign_bundle

    key = load_private_key(key_path)
    verify_bundle(bundle, read_manifest(bundle))
    path = sign_bundle(bundle, key)
    console.print(f"signed {bundle} with key {key_id(key.public_key())}: {path}")
