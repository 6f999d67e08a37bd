"""Trust, approvals, rate limits and big replies, end to end through real components; every
decision leaves an audit entry saying who, what and why."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from cli.test_call import wactor
from conftest import ManifestFactory, guest_binary, wat_binary
from wactor._ids import TargetPattern
from wactor.errors import (
    ApprovalPendingError,
    CapabilityDeniedError,
    InvalidMessageError,
    ManifestError,
    SignatureError,
)
from wactor.host import Host, HostConfig, TrustConfig
from wactor.security import AuditLog, generate_keypair, load_manifest, sign_manifest


def _component(tmp_path: Path, name: str, wasm: Path, extra: str = "") -> Path:
    """A component directory of its own (outside every trusted path), with a copy of ``wasm``."""
    folder = tmp_path / "untrusted" / name
    folder.mkdir(parents=True)
    shutil.copy(wasm, folder / "app.wasm")
    manifest = folder / "component.toml"
    manifest.write_text(
        f'[component]\nid = "x/{name}/0"\nwasm = "app.wasm"\nversion = "1.0.0"\n\n'
        f'[resources]\nmemory = "32MiB"\ntimeout-ms = 5000\n{extra}\n'
    )
    return manifest


def _strict(tmp_path: Path, **trust: object) -> HostConfig:
    return HostConfig(
        path=None,
        state_dir=tmp_path / "state",
        trust=TrustConfig(**trust),  # type: ignore[arg-type]
    )


async def test_signed_component_runs_and_tampering_is_refused(tmp_path: Path) -> None:
    private, public = generate_keypair(tmp_path / "keys" / "release")
    manifest = _component(tmp_path, "signed", wat_binary("echo"))
    sign_manifest(manifest, private)
    config = _strict(tmp_path, keys=(public,))
    async with Host.open(config) as host:
        await host.start(manifest)
        assert await host.request("x/signed/0", b"hi") == b"hi"

    wasm = manifest.parent / "app.wasm"
    data = bytearray(wasm.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped byte
    wasm.write_bytes(bytes(data))
    async with Host.open(config) as host:
        with pytest.raises(SignatureError) as info:
            await host.start(manifest)
        assert info.value.exit_code == 3
        assert "\n" not in str(info.value)
        denied = host.audit.query(component="x/signed/0", denied_only=True)
        assert [e.event for e in denied] == ["signature-bad"]


async def test_manifest_widened_after_signing_is_refused(tmp_path: Path) -> None:
    private, public = generate_keypair(tmp_path / "keys" / "release")
    manifest = _component(tmp_path, "widened", wat_binary("echo"))
    sign_manifest(manifest, private)
    manifest.write_text(manifest.read_text() + '\n[capabilities.messaging]\nsend = ["**"]\n')
    async with Host.open(_strict(tmp_path, keys=(public,))) as host:
        with pytest.raises(SignatureError):
            await host.start(manifest)


async def test_unknown_component_waits_for_approval_and_stays_approved(tmp_path: Path) -> None:
    manifest = _component(tmp_path, "newcomer", wat_binary("echo"))
    config_file = tmp_path / "wactor.toml"
    config_file.write_text(f'state-dir = "{tmp_path / "state"}"\ncomponents = ["{manifest}"]\n')
    from wactor.host import load_host_config

    config = load_host_config(config_file)
    async with Host.open(config) as host:
        (failure,) = host.load_failures
        assert isinstance(failure.error, ApprovalPendingError)
        assert failure.error.exit_code == 3
        assert "wactor approvals approve" in str(failure.error)
        assert host.components() == []

    listed = wactor("approvals", "list", "--config", str(config_file))
    assert listed.returncode == 0, listed.stderr
    assert "x/newcomer/0" in listed.stdout
    assert "pending" in listed.stdout
    approved = wactor("approvals", "approve", "x/newcomer/0", "--config", str(config_file))
    assert approved.returncode == 0, approved.stderr

    for _ in range(2):  # and again after another restart: the decision is persisted
        async with Host.open(config) as host:
            assert host.load_failures == []
            assert await host.request("x/newcomer/0", b"welcome") == b"welcome"

    audit = wactor("audit", "--config", str(config_file), "--component", "x/newcomer/0")
    assert audit.returncode == 0, audit.stderr
    for event in ("approval-requested", "approved", "grant", "start"):
        assert event in audit.stdout, event


async def test_changed_binary_needs_a_new_approval(tmp_path: Path) -> None:
    manifest = _component(tmp_path, "changing", wat_binary("echo"))
    config = _strict(tmp_path)
    async with Host.open(config) as host:
        with pytest.raises(ApprovalPendingError):
            await host.start(manifest)
        host.approvals.approve("x/changing/0")
        await host.start(manifest)
    shutil.copy(wat_binary("trap"), manifest.parent / "app.wasm")
    async with Host.open(config) as host:
        with pytest.raises(ApprovalPendingError):
            await host.start(manifest)


async def test_approval_can_narrow_capabilities(tmp_path: Path) -> None:
    extra = '\n[capabilities.storage]\nquota = "1MiB"\n'
    manifest = _component(tmp_path, "narrowed", guest_binary("probe"), extra)
    config = _strict(tmp_path)
    async with Host.open(config) as host:
        with pytest.raises(ApprovalPendingError):
            await host.start(manifest)
        host.approvals.approve("x/narrowed/0", narrow={"storage": None})
        await host.start(manifest)
        reply = await host.request("x/narrowed/0", b"set k v", timeout=60)
        assert reply is not None
        assert reply.startswith(b"err io-error")  # storage was taken away at approval


async def test_message_flood_is_rate_limited_and_audited(
    host: Host, manifest: ManifestFactory
) -> None:
    extra = 'message-rate = 5\n\n[capabilities.messaging]\nsend = ["t/**"]\n'
    await host.start(manifest("t/flood/0", guest_binary("probe"), extra=extra))
    await host.start(manifest("t/echo/0", wat_binary("echo")))
    replies = [await host.request("t/flood/0", b"send t/echo/0 x", timeout=60) for _ in range(100)]
    refused = [r for r in replies if r is not None and b"rate limit" in r]
    assert refused, "100 sends in a burst against a 5/s budget"
    assert len(refused) < 100
    assert all(r.startswith(b"err delivery-failed denied") for r in refused)
    entries = host.audit.query(component="t/flood/0", denied_only=True)
    assert any("rate limit" in e.reason for e in entries)


async def test_a_huge_reply_is_refused_without_taking_the_host_down(
    host: Host, manifest: ManifestFactory
) -> None:
    small = dataclasses.replace(host.config, max_payload_bytes=1 << 20)
    host.config = small
    await host.start(manifest("t/big/0", guest_binary("probe"), memory="512MiB", timeout_ms=60_000))
    await host.start(manifest("t/echo/0", wat_binary("echo")))
    with pytest.raises(InvalidMessageError, match=f"reply of {100 << 20} bytes exceeds"):
        await host.request("t/big/0", f"bign {100 << 20}".encode(), timeout=120)
    assert await host.request("t/echo/0", b"still up") == b"still up"
    assert await host.request("t/big/0", b"echo fine", timeout=60) == b"fine"


async def test_storage_quota_breach_is_audited(host: Host, manifest: ManifestFactory) -> None:
    extra = '[capabilities.storage]\nquota = "1KiB"\n'
    await host.start(manifest("t/q/0", guest_binary("probe"), extra=extra))
    assert await host.request("t/q/0", b"setn k 2000", timeout=60) == b"err quota-exceeded"
    (entry,) = host.audit.query(component="t/q/0", denied_only=True)
    assert entry.event == "quota-breach"


async def test_denied_messaging_is_audited_with_who_what_why(
    host: Host, manifest: ManifestFactory
) -> None:
    extra = '[capabilities.messaging]\nsend = ["t/allowed/*"]\n'
    await host.start(manifest("t/snoop/0", guest_binary("probe"), extra=extra))
    await host.start(manifest("t/victim/0", wat_binary("echo")))
    reply = await host.request("t/snoop/0", b"send t/victim/0 x", timeout=60)
    assert reply is not None
    assert reply.startswith(b"err delivery-failed denied")
    await asyncio.sleep(0)
    (entry,) = host.audit.query(component="t/snoop/0", denied_only=True)
    assert entry.event == "denial"
    assert entry.target == "t/victim/0"
    assert "send" in entry.action


# --- trust is decided on the bytes that run ----------------------------------------------------


def _rewrite_in_place_keeping_mtime(wasm: Path) -> None:
    """Rewrite the WAT echo in place into another valid component (its metadata name changed;
    same inode, same size) and put its mtime back."""
    before = wasm.stat()
    data = wasm.read_bytes()
    assert b"wat-echo" in data
    with wasm.open("r+b") as f:
        f.write(data.replace(b"wat-echo", b"WAT-ECHO"))
    os.utime(wasm, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = wasm.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


async def test_signed_wasm_rewritten_in_place_with_its_mtime_put_back_is_refused(
    tmp_path: Path,
) -> None:
    private, public = generate_keypair(tmp_path / "keys" / "release")
    manifest = _component(tmp_path, "inplace", wat_binary("echo"))
    sign_manifest(manifest, private)
    config = _strict(tmp_path, keys=(public,))
    async with Host.open(config) as host:
        await host.start(manifest)
        assert await host.request("x/inplace/0", b"hi") == b"hi"

    _rewrite_in_place_keeping_mtime(manifest.parent / "app.wasm")
    async with Host.open(config) as host:
        with pytest.raises(SignatureError, match=r"app\.wasm changed after signing") as info:
            await host.start(manifest)
        assert info.value.exit_code == 3
        denied = host.audit.query(component="x/inplace/0", denied_only=True)
        assert [e.event for e in denied] == ["signature-bad"]
        assert host.components() == []


def test_in_place_rewrite_with_its_mtime_put_back_makes_run_and_call_exit_3(
    tmp_path: Path,
) -> None:
    private, public = generate_keypair(tmp_path / "keys" / "release")
    manifest = _component(tmp_path, "cli", wat_binary("echo"))
    sign_manifest(manifest, private)
    config = tmp_path / "wactor.toml"
    config.write_text(
        f'state-dir = "{tmp_path / "state"}"\ncomponents = ["{manifest}"]\n\n'
        f'[trust]\nkeys = ["{public}"]\n'
    )
    called = wactor("call", "x/cli/0", "hello", "--config", str(config))
    assert (called.returncode, called.stdout) == (0, "hello\n"), called.stderr

    _rewrite_in_place_keeping_mtime(manifest.parent / "app.wasm")
    called = wactor("call", "x/cli/0", "hello", "--config", str(config))
    assert called.returncode == 3, called.stderr
    assert called.stdout == ""
    assert "app.wasm changed after signing" in called.stderr
    assert "Traceback" not in called.stderr
    ran = wactor("run", "--once", str(config))
    assert ran.returncode == 3, ran.stderr
    assert "app.wasm changed after signing" in ran.stderr
    audit = AuditLog.for_state_dir(tmp_path / "state")
    try:
        denied = audit.query(component="x/cli/0", denied_only=True)
    finally:
        audit.close()
    assert [e.event for e in denied] == ["signature-bad", "signature-bad"]


@pytest.mark.parametrize(
    ("grant", "where", "what"),
    [
        ("read", "state", "state directory"),
        ("write", "state/sub", "state directory"),
        ("read", ".", "state directory"),  # contains the state dir (and the rest)
        ("write", "cache", "compile cache"),
        ("read", "keys", "trusted key"),
        ("read", "link-to-state", "state directory"),  # a symlink is resolved
        ("write", "conf", "config file"),
        ("write", "untrusted/data", "trusted path"),  # would let it plant trusted code
    ],
)
async def test_preopens_reaching_host_state_cache_or_keys_are_refused(
    tmp_path: Path, grant: str, where: str, what: str
) -> None:
    _, public = generate_keypair(tmp_path / "keys" / "release")
    (tmp_path / "state" / "sub").mkdir(parents=True)
    (tmp_path / "cache").mkdir()
    (tmp_path / "link-to-state").symlink_to(tmp_path / "state")
    (tmp_path / "untrusted" / "data").mkdir(parents=True)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "wactor.toml").write_text(f'state-dir = "{tmp_path / "state"}"\n')
    wanted = tmp_path / where
    manifest = _component(
        tmp_path,
        "reach",
        wat_binary("echo"),
        f'\n[capabilities.filesystem]\n{grant} = ["{wanted}"]\n',
    )
    config = HostConfig(
        path=tmp_path / "conf" / "wactor.toml",
        state_dir=tmp_path / "state",
        cache_dir=tmp_path / "cache",
        trust=TrustConfig(keys=(public,), paths=(tmp_path / "untrusted",)),
    )
    async with Host.open(config) as host:
        with pytest.raises(CapabilityDeniedError) as info:
            await host.start(manifest)
        message = str(info.value)
        assert info.value.exit_code == 3
        assert "\n" not in message
        assert f"capabilities.filesystem.{grant}[0]: {wanted.resolve()} reaches" in message
        assert f"host's {what}" in message
        assert host.components() == []
        (entry,) = host.audit.query(component="x/reach/0", denied_only=True)
        assert entry.event == "denial"
        assert entry.target == f"capabilities.filesystem.{grant}[0]"


async def test_reading_a_trusted_path_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "untrusted" / "data").mkdir(parents=True)
    manifest = _component(
        tmp_path,
        "reader",
        wat_binary("echo"),
        f'\n[capabilities.filesystem]\nread = ["{tmp_path / "untrusted" / "data"}"]\n',
    )
    async with Host.open(_strict(tmp_path, paths=(tmp_path / "untrusted",))) as host:
        await host.start(manifest)
        assert await host.request("x/reader/0", b"hi") == b"hi"


async def test_a_manifest_built_in_code_is_held_to_its_file(tmp_path: Path) -> None:
    private, public = generate_keypair(tmp_path / "keys" / "release")
    path = _component(tmp_path, "coded", wat_binary("echo"))
    sign_manifest(path, private)
    from_file = load_manifest(path)
    in_code = dataclasses.replace(from_file, file_sha256=None)  # as if written out in Python
    wider = dataclasses.replace(
        in_code,
        capabilities=dataclasses.replace(from_file.capabilities, send=(TargetPattern.parse("**"),)),
    )
    async with Host.open(_strict(tmp_path, keys=(public,))) as host:
        with pytest.raises(ManifestError, match="differs from this file"):
            await host.start(wider)  # the signature covers the file, not these capabilities
        await host.start(in_code)  # says what the signed file says: runs
        assert await host.request("x/coded/0", b"hi") == b"hi"
