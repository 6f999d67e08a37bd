"""Ed25519 keys and component signatures: who vouches for a wasm binary and its manifest.

Files:

- private key ``BASE``: PKCS#8 PEM (``-----BEGIN PRIVATE KEY-----``), unencrypted, mode 0600;
- public key ``BASE.pub``: SubjectPublicKeyInfo PEM (``-----BEGIN PUBLIC KEY-----``), what
  ``openssl pkey -pubout`` writes. Trusted key files may also be an OpenSSH ``ssh-ed25519 …`` line
  or the raw 32-byte key in base64;
- signature ``<manifest>.sig`` beside the manifest (``component.toml.sig``), JSON::

    {"version": 1, "algorithm": "ed25519", "key": "sha256:<hex>", "component": "ns/name/inst",
     "wasm_sha256": "<hex>", "manifest_sha256": "<hex>", "signature": "<base64>"}

The signature is over the canonical message (ASCII, lowercase hex, no trailing newline)::

    b"wactor-signature-v1\\n" + sha256(wasm bytes).hex + b"\\n" + sha256(manifest file bytes).hex

so it binds the exact binary and the exact manifest bytes (capabilities included): changing
either one after signing breaks it. The manifest digest is that of the bytes the manifest was
parsed from (``Manifest.file_sha256``), never of a second read of the file. The digests
recorded in the JSON are informative only; the verifier always recomputes them. A key
fingerprint is ``sha256:`` + the hex sha256 of the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from wactor._files import MAX_KEY_BYTES, MAX_WASM_BYTES, read_regular_file
from wactor.errors import ConfigError, HostConfigError, SignatureError
from wactor.security._manifest import Manifest, load_manifest, manifest_digest, verify_digest

__all__ = [
    "SIGNATURE_VERSION",
    "generate_keypair",
    "public_key_fingerprint",
    "sign_manifest",
    "signature_message",
    "signature_path",
    "verify_signature",
]

SIGNATURE_VERSION = 1
_MESSAGE_PREFIX = b"wactor-signature-v1\n"
_SIG_FIELDS = ("version", "key", "wasm_sha256", "manifest_sha256", "signature")


def signature_message(wasm_sha256: str, manifest_sha256: str) -> bytes:
    """Return the canonical bytes a signature covers (both digests as lowercase hex)."""
    return (
        _MESSAGE_PREFIX
        + wasm_sha256.lower().encode("ascii")
        + b"\n"
        + manifest_sha256.lower().encode("ascii")
    )


def signature_path(manifest_path: Path) -> Path:
    """Return where the signature of the manifest at ``manifest_path`` lives."""
    return manifest_path.with_name(manifest_path.name + ".sig")


def _fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# --- keys ------------------------------------------------------------------------------------


def generate_keypair(base: Path) -> tuple[Path, Path]:
    """Create an ed25519 key pair: private key at ``base`` (0600), public key at ``base.pub``.

    Refuses (``ConfigError``) to overwrite either file. Returns ``(private, public)``.
    """
    private_path = Path(base)
    public_path = private_path.with_name(private_path.name + ".pub")
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise ConfigError(
                "already exists; refusing to overwrite a key", file=str(path), key="--out"
            )
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        private_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create directory: {exc.strerror}", file=str(base)) from exc
    _write_new(private_path, private_pem, 0o600)
    try:
        _write_new(public_path, public_pem, 0o644)
    except BaseException:
        private_path.unlink(missing_ok=True)
        raise
    return private_path, public_path


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with exactly ``mode``; fail if it exists (O_EXCL: no race, no symlink)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise ConfigError(
            "already exists; refusing to overwrite a key", file=str(path), key="--out"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot create key file: {exc.strerror}", file=str(path)) from exc
    try:
        os.fchmod(fd, mode)  # the umask may only have narrowed it; make it exact
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = read_regular_file(path, MAX_KEY_BYTES)
    except OSError as exc:
        raise ConfigError(
            f"cannot read private key: {exc.strerror}", file=str(path), key="--key"
        ) from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(
            "not an unencrypted PEM private key",
            file=str(path),
            key="--key",
            expected="a key written by 'wactor keygen'",
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(
            f"{type(key).__name__} is not an ed25519 key", file=str(path), key="--key"
        )
    return key


def _load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a trusted key file: PEM, an OpenSSH line, or the raw key in base64."""
    try:
        data = read_regular_file(path, MAX_KEY_BYTES)
    except OSError as exc:
        raise HostConfigError(
            f"cannot read trusted key {path}: {exc.strerror}", key="trust.keys"
        ) from exc
    text = data.strip()
    key: object
    try:
        if text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(text)
        elif text.startswith(b"ssh-"):
            key = serialization.load_ssh_public_key(text)
        else:
            raw = base64.b64decode(text, validate=True)
            key = Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error) as exc:
        raise HostConfigError(
            f"{path} is not an ed25519 public key",
            key="trust.keys",
            expected="PEM, 'ssh-ed25519 …' or the raw 32-byte key in base64",
        ) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise HostConfigError(f"{path} is not an ed25519 public key", key="trust.keys")
    return key


def public_key_fingerprint(path: Path) -> str:
    """Return the fingerprint (``sha256:<hex>``) of the public key file at ``path``."""
    return _fingerprint(_load_public_key(Path(path)))


# --- signing ---------------------------------------------------------------------------------


def sign_manifest(manifest_path: Path, private_key: Path) -> Path:
    """Sign the manifest at ``manifest_path`` and the wasm it names; write and return ``.sig``.

    The manifest is validated first (and its ``sha256`` pin, if any, checked), so a broken
    component is never signed. An existing signature is replaced.
    """
    manifest = load_manifest(manifest_path)
    key = _load_private_key(Path(private_key))
    try:
        wasm_bytes = read_regular_file(manifest.wasm, MAX_WASM_BYTES)
    except OSError as exc:
        raise ConfigError(
            f"cannot read {exc.filename}: {exc.strerror}", file=str(manifest.path)
        ) from exc
    wasm_sha = verify_digest(manifest, wasm_bytes)
    manifest_sha = manifest_digest(manifest)  # the bytes that were validated, not a re-read
    signature = key.sign(signature_message(wasm_sha, manifest_sha))
    document = {
        "version": SIGNATURE_VERSION,
        "algorithm": "ed25519",
        "key": _fingerprint(key.public_key()),
        "component": str(manifest.id),
        "wasm_sha256": wasm_sha,
        "manifest_sha256": manifest_sha,
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    out = signature_path(manifest.path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ConfigError(f"cannot write signature: {exc.strerror}", file=str(out)) from exc
    return out


# --- verifying -------------------------------------------------------------------------------


def _read_signature(manifest: Manifest, path: Path) -> dict[str, Any]:
    where = str(manifest.path)
    component = str(manifest.id)
    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise SignatureError(
            where, f"cannot read {path.name}: {exc.strerror}", component=component
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureError(
            where, f"malformed {path.name}: not JSON ({exc})", component=component
        ) from exc
    if not isinstance(document, dict):
        raise SignatureError(where, f"malformed {path.name}: not an object", component=component)
    missing = [name for name in _SIG_FIELDS if name not in document]
    if missing:
        raise SignatureError(
            where, f"malformed {path.name}: missing {', '.join(missing)}", component=component
        )
    if document["version"] != SIGNATURE_VERSION:
        raise SignatureError(
            where,
            f"unsupported signature version {document['version']!r} in {path.name}",
            component=component,
        )
    if document.get("algorithm", "ed25519") != "ed25519":
        raise SignatureError(
            where, f"unsupported algorithm {document['algorithm']!r}", component=component
        )
    for name in ("key", "wasm_sha256", "manifest_sha256", "signature"):
        if not isinstance(document[name], str):
            raise SignatureError(
                where, f"malformed {path.name}: {name} is not a string", component=component
            )
    return document


def wasm_sha256(wasm: bytes | str) -> str:
    """Return the sha256 hex of wasm bytes; a ``str`` is taken as that digest already computed."""
    return wasm.lower() if isinstance(wasm, str) else hashlib.sha256(wasm).hexdigest()


def verify_signature(
    manifest: Manifest, wasm_bytes: bytes | str, trusted_keys: Sequence[Path]
) -> str | None:
    """Return the fingerprint of the trusted key that signed this component, ``None`` if unsigned.

    ``wasm_bytes`` is the wasm file's content, or its sha256 hex when the caller already has it.
    Raises ``SignatureError`` when ``<manifest>.sig`` exists but does not verify: malformed file,
    key not among ``trusted_keys``, wasm or manifest changed after signing, bad signature.
    """
    path = signature_path(manifest.path)
    if not path.exists():
        return None
    where = str(manifest.path)
    component = str(manifest.id)
    document = _read_signature(manifest, path)
    wasm_sha = wasm_sha256(wasm_bytes)
    manifest_sha = manifest_digest(manifest)  # of the bytes that were parsed, never re-read
    try:
        signature = base64.b64decode(document["signature"], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise SignatureError(
            where, f"malformed {path.name}: signature is not base64", component=component
        ) from exc

    keys = {_fingerprint(key): key for key in map(_load_public_key, trusted_keys)}
    fingerprint = str(document["key"])
    key = keys.get(fingerprint)
    if key is None:
        raise SignatureError(
            where,
            f"signed by key {fingerprint}, which is not among the trusted keys ([trust] keys)",
            component=component,
        )
    try:
        key.verify(signature, signature_message(wasm_sha, manifest_sha))
    except InvalidSignature:
        # Say which part changed when the recorded digests tell us; they are not trusted, only
        # used to explain a failure that the cryptographic check already decided.
        if document["wasm_sha256"] != wasm_sha:
            reason = (
                f"{manifest.wasm.name} changed after signing (sha256 {wasm_sha[:12]}..., "
                f"signed {str(document['wasm_sha256'])[:12]}...)"
            )
        elif document["manifest_sha256"] != manifest_sha:
            reason = "the manifest changed after signing"
        else:
            reason = f"the signature does not verify with key {fingerprint}"
        raise SignatureError(where, reason, component=component) from None
    return fingerprint
