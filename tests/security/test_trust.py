"""Keys, real ed25519 signatures over wasm + manifest, and the trusted paths of the gate."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from conftest import wat_binary
from wactor.errors import (
    ApprovalPendingError,
    ConfigError,
    DigestMismatchError,
    SignatureError,
)
from wactor.host import TrustConfig
from wactor.security import (
    ApprovalStore,
    AuditLog,
    Gatekeeper,
    generate_keypair,
    load_manifest,
    public_key_fingerprint,
    sign_manifest,
    signature_message,
    signature_path,
    verify_signature,
)

MANIFEST = """\
[component]
id = "shop/echo/0"
wasm = "echo.wasm"
version = "1.0.0"

[capabilities.messaging]
send = ["shop/cart/*"]
"""


@pytest.fixture
def component(tmp_path: Path) -> Path:
    """A component directory with the real echo component and its manifest."""
    folder = tmp_path / "echo"
    folder.mkdir()
    shutil.copy(wat_binary("echo"), folder / "echo.wasm")
    (folder / "component.toml").write_text(MANIFEST)
    return folder / "component.toml"


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "keys" / "release")


def wasm_of(manifest_path: Path) -> bytes:
    return (manifest_path.parent / "echo.wasm").read_bytes()


# --- keys --------------------------------------------------------------------------------------


def test_keygen_writes_a_private_pem_0600_and_a_public_pem(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert public == private.with_name("release.pub")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert public_key_fingerprint(public).startswith("sha256:")


def test_keygen_refuses_to_overwrite_either_file(tmp_path: Path) -> None:
    private, _ = generate_keypair(tmp_path / "k")
    before = private.read_bytes()
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        generate_keypair(tmp_path / "k")
    assert private.read_bytes() == before
    private.unlink()
    with pytest.raises(ConfigError, match=r"k\.pub.*refusing to overwrite"):
        generate_keypair(tmp_path / "k")
    assert not private.exists()  # nothing half-written


# --- signing and verifying -----------------------------------------------------------------


def test_signed_component_verifies_and_names_the_signing_key(
    component: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    sig = sign_manifest(component, private)
    assert sig == signature_path(component) == component.with_name("component.toml.sig")
    fingerprint = verify_signature(load_manifest(component), wasm_of(component), [public])
    assert fingerprint == public_key_fingerprint(public)


def test_signature_is_a_real_ed25519_signature_over_the_canonical_message(
    component: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    document = json.loads(sign_manifest(component, private).read_text())
    wasm_sha = hashlib.sha256(wasm_of(component)).hexdigest()
    manifest_sha = hashlib.sha256(component.read_bytes()).hexdigest()
    message = signature_message(wasm_sha, manifest_sha)
    assert message == b"wactor-signature-v1\n" + wasm_sha.encode() + b"\n" + manifest_sha.encode()
    assert document["wasm_sha256"] == wasm_sha
    assert document["manifest_sha256"] == manifest_sha
    key = serialization.load_pem_public_key(public.read_bytes())
    key.verify(base64.b64decode(document["signature"]), message)  # type: ignore[union-attr,call-arg]


def test_unsigned_component_has_no_signature(component: Path, keys: tuple[Path, Path]) -> None:
    assert verify_signature(load_manifest(component), wasm_of(component), [keys[1]]) is None


def test_flipped_byte_in_the_wasm_is_refused(component: Path, keys: tuple[Path, Path]) -> None:
    sign_manifest(component, keys[0])
    tampered = bytearray(wasm_of(component))
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(SignatureError, match=r"echo\.wasm changed after signing") as caught:
        verify_signature(load_manifest(component), bytes(tampered), [keys[1]])
    assert caught.value.exit_code == 3
    assert str(component) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_manifest_widened_after_signing_is_refused(
    component: Path, keys: tuple[Path, Path]
) -> None:
    sign_manifest(component, keys[0])
    component.write_text(MANIFEST.replace('["shop/cart/*"]', '["shop/**", "bank/**"]'))
    with pytest.raises(SignatureError, match="the manifest changed after signing"):
        verify_signature(load_manifest(component), wasm_of(component), [keys[1]])


def test_signature_by_an_unknown_key_is_refused(
    component: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    _, other_public = generate_keypair(tmp_path / "other")
    sign_manifest(component, keys[0])
    with pytest.raises(SignatureError, match="not among the trusted keys"):
        verify_signature(load_manifest(component), wasm_of(component), [other_public])
    with pytest.raises(SignatureError, match="not among the trusted keys"):
        verify_signature(load_manifest(component), wasm_of(component), [])


def test_recorded_digests_are_not_trusted_only_the_signature(
    component: Path, keys: tuple[Path, Path]
) -> None:
    sig = sign_manifest(component, keys[0])
    tampered = wasm_of(component) + b"\x00"
    document = json.loads(sig.read_text())
    document["wasm_sha256"] = hashlib.sha256(tampered).hexdigest()  # a forger updates the record
    sig.write_text(json.dumps(document))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_signature(load_manifest(component), tampered, [keys[1]])


def test_a_signature_from_another_key_under_the_trusted_fingerprint_is_refused(
    component: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    other_private, _ = generate_keypair(tmp_path / "other")
    sig = sign_manifest(component, other_private)
    document = json.loads(sig.read_text())
    document["key"] = public_key_fingerprint(keys[1])  # claim to be the trusted key
    sig.write_text(json.dumps(document))
    with pytest.raises(SignatureError, match="does not verify with key"):
        verify_signature(load_manifest(component), wasm_of(component), [keys[1]])


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not json", "not JSON"),
        ("[]", "not an object"),
        ('{"version": 1}', "missing key"),
        (
            json.dumps(
                {"version": 9, "key": "", "wasm_sha256": "", "manifest_sha256": "", "signature": ""}
            ),
            "unsupported signature version",
        ),
    ],
)
def test_malformed_signature_file_is_refused(
    component: Path, keys: tuple[Path, Path], content: str, reason: str
) -> None:
    signature_path(component).write_text(content)
    with pytest.raises(SignatureError, match=reason):
        verify_signature(load_manifest(component), wasm_of(component), [keys[1]])


def test_signature_that_is_not_base64_is_refused(component: Path, keys: tuple[Path, Path]) -> None:
    sig = sign_manifest(component, keys[0])
    document = json.loads(sig.read_text())
    document["signature"] = "%%%"
    sig.write_text(json.dumps(document))
    with pytest.raises(SignatureError, match="not base64"):
        verify_signature(load_manifest(component), wasm_of(component), [keys[1]])


def test_trusted_key_may_be_an_openssh_line_or_raw_base64(
    component: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    sign_manifest(component, private)
    key = serialization.load_pem_public_key(public.read_bytes())
    ssh = tmp_path / "release.ssh.pub"
    ssh.write_bytes(
        key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    raw = tmp_path / "release.raw.pub"
    raw.write_bytes(
        base64.b64encode(
            key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
    )
    manifest = load_manifest(component)
    expected = public_key_fingerprint(public)
    assert verify_signature(manifest, wasm_of(component), [ssh]) == expected
    assert verify_signature(manifest, wasm_of(component), [raw]) == expected


def test_signing_refuses_a_wasm_that_differs_from_its_pinned_digest(
    component: Path, keys: tuple[Path, Path]
) -> None:
    component.write_text(MANIFEST.replace('version = "1.0.0"', f'sha256 = "{"0" * 64}"'))
    with pytest.raises(DigestMismatchError):
        sign_manifest(component, keys[0])
    assert not signature_path(component).exists()


def test_signing_with_a_public_key_is_a_config_error(
    component: Path, keys: tuple[Path, Path]
) -> None:
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        sign_manifest(component, keys[1])


# --- the gate's trust sources ----------------------------------------------------------------


@pytest.fixture
def state(tmp_path: Path) -> Iterator[tuple[ApprovalStore, AuditLog]]:
    audit = AuditLog(tmp_path / "state" / "audit.sqlite3")
    store = ApprovalStore(tmp_path / "state" / "approvals.sqlite3", audit=audit)
    yield store, audit
    store.close()
    audit.close()


def test_gate_trusts_a_component_signed_by_a_configured_key(
    component: Path, keys: tuple[Path, Path], state: tuple[ApprovalStore, AuditLog]
) -> None:
    sign_manifest(component, keys[0])
    gate = Gatekeeper(TrustConfig(keys=(keys[1],)), *state, dev=False)
    admission = gate.admit(load_manifest(component), wasm_of(component))
    assert admission.level == "trusted"
    assert public_key_fingerprint(keys[1]) in admission.reason
    events = [(e.event, e.allowed) for e in state[1].query(component="shop/echo/0")]
    assert events == [("signature-ok", True), ("grant", True)]


def test_gate_refuses_a_bad_signature_even_in_dev_mode(
    component: Path, keys: tuple[Path, Path], state: tuple[ApprovalStore, AuditLog]
) -> None:
    sign_manifest(component, keys[0])
    component.write_text(MANIFEST.replace('["shop/cart/*"]', '["**"]'))
    gate = Gatekeeper(TrustConfig(keys=(keys[1],)), *state, dev=True)
    with pytest.raises(SignatureError):
        gate.admit(load_manifest(component), wasm_of(component))
    [entry] = state[1].query(denied_only=True)
    assert entry.event == "signature-bad"
    assert "manifest changed" in entry.reason
    assert state[0].list() == []  # no approval request for a tampered component


def test_gate_trusts_a_pinned_wasm_with_its_pinned_manifest(
    component: Path, state: tuple[ApprovalStore, AuditLog]
) -> None:
    digest = hashlib.sha256(wasm_of(component)).hexdigest()
    manifest_sha = hashlib.sha256(component.read_bytes()).hexdigest()
    gate = Gatekeeper(TrustConfig(digests=(digest, manifest_sha)), *state, dev=False)
    admission = gate.admit(load_manifest(component), wasm_of(component))
    assert admission.level == "trusted"
    assert digest in admission.reason
    assert manifest_sha in admission.reason


def test_a_pinned_wasm_under_a_widened_manifest_waits_for_approval(
    component: Path, state: tuple[ApprovalStore, AuditLog]
) -> None:
    digest = hashlib.sha256(wasm_of(component)).hexdigest()
    manifest_sha = hashlib.sha256(component.read_bytes()).hexdigest()
    gate = Gatekeeper(TrustConfig(digests=(digest, manifest_sha)), *state, dev=False)
    component.write_text(MANIFEST.replace('["shop/cart/*"]', '["**"]'))
    widened = load_manifest(component)
    with pytest.raises(ApprovalPendingError, match=r"its manifest sha256:[0-9a-f]{64} is not"):
        gate.admit(widened, wasm_of(component))
    [request] = state[0].list()
    assert request.status == "pending"
    assert request.manifest_digest == widened.file_sha256
    [entry] = state[1].query(denied_only=True)
    assert entry.event == "approval-requested"
    assert "[trust] digests" in entry.reason


def test_the_signature_is_checked_over_the_manifest_bytes_that_were_parsed(
    component: Path, keys: tuple[Path, Path], state: tuple[ApprovalStore, AuditLog]
) -> None:
    sign_manifest(component, keys[0])
    signed = component.read_bytes()
    widened_text = MANIFEST.replace('["shop/cart/*"]', '["**"]')
    gate = Gatekeeper(TrustConfig(keys=(keys[1],)), *state, dev=False)

    # Parsed widened, then the signed bytes swapped back in before the check: refused.
    component.write_text(widened_text)
    widened = load_manifest(component)
    component.write_bytes(signed)
    with pytest.raises(SignatureError, match="manifest changed after signing"):
        gate.admit(widened, wasm_of(component))

    # Parsed signed, then widened on disk: what was parsed (and signed) is what is granted.
    parsed = load_manifest(component)
    component.write_text(widened_text)
    admission = gate.admit(parsed, wasm_of(component))
    assert admission.level == "trusted"
    assert admission.capabilities == parsed.capabilities
    assert parsed.file_sha256 == hashlib.sha256(signed).hexdigest()


def test_gate_trusts_a_component_under_a_trusted_path(
    component: Path, state: tuple[ApprovalStore, AuditLog]
) -> None:
    gate = Gatekeeper(TrustConfig(paths=(component.parent.parent,)), *state, dev=False)
    admission = gate.admit(load_manifest(component), wasm_of(component))
    assert admission.level == "trusted"
    assert admission.capabilities == load_manifest(component).capabilities


def test_a_manifest_outside_the_trusted_path_pointing_into_it_is_not_trusted(
    component: Path, state: tuple[ApprovalStore, AuditLog], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rogue = elsewhere / "component.toml"
    rogue.write_text(
        MANIFEST.replace('"echo.wasm"', f'"{component.parent / "echo.wasm"}"').replace(
            '["shop/cart/*"]', '["**"]'
        )
    )
    gate = Gatekeeper(TrustConfig(paths=(component.parent,)), *state, dev=True)
    assert gate.admit(load_manifest(rogue), wasm_of(component)).level == "dev"


def test_verification_accepts_the_wasm_digest_instead_of_the_bytes(
    component: Path, keys: tuple[Path, Path]
) -> None:
    sign_manifest(component, keys[0])
    manifest = load_manifest(component)
    digest = hashlib.sha256(wasm_of(component)).hexdigest()
    assert verify_signature(manifest, digest, [keys[1]]) == public_key_fingerprint(keys[1])
    with pytest.raises(SignatureError, match="changed after signing"):
        verify_signature(manifest, "0" * 64, [keys[1]])
