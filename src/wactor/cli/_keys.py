"""Signing verbs: ``keygen`` and ``sign``."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["keygen", "sign"]


@click.command()
@click.option(
    "--out",
    "base",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key path; the public key goes to OUT.pub.",
)
def keygen(base: Path) -> None:
    """Create an ed25519 signing key pair (refuses to overwrite existing files)."""
    # the signing code loads for the verbs that sign, not when `wactor --help` lists them
    from wactor.security import generate_keypair, public_key_fingerprint  # noqa: PLC0415

    private, public = generate_keypair(base)
    click.echo(f"private key: {private} (keep it secret)")
    click.echo(f"public key:  {public} (list it under [trust] keys)")
    click.echo(f"fingerprint: {public_key_fingerprint(public)}")


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "private_key",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key written by 'wactor keygen'.",
)
def sign(manifest: Path, private_key: Path) -> None:
    """Sign MANIFEST and the wasm it names; the signature goes beside it (MANIFEST.sig)."""
    from wactor.security import sign_manifest  # noqa: PLC0415 - as in keygen

    out = sign_manifest(manifest, private_key)
    document = json.loads(out.read_text(encoding="utf-8"))
    click.echo(f"signed {document['component']} -> {out}")
    click.echo(f"key: {document['key']}")
    click.echo(f"wasm sha256: {document['wasm_sha256']}")
