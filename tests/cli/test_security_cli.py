"""``wactor keygen|sign|approvals|audit`` as real subprocesses, with real exit codes."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import wat_binary
from wactor.cli._security import parse_since
from wactor.errors import ApprovalPendingError
from wactor.host import load_host_config
from wactor.security import (
    ApprovalStore,
    AuditLog,
    Gatekeeper,
    load_manifest,
    public_key_fingerprint,
    verify_signature,
)

# Importing the verb module registers it, whether or not wactor.cli imports it already.
_ENTRY = "import wactor.cli._security; from wactor.cli import main; main()"


def wactor(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _ENTRY, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


MANIFEST = """\
[component]
id = "shop/cart/0"
wasm = "cart.wasm"

[capabilities.messaging]
send = ["shop/**"]
publish = ["orders.*.created"]
subscribe = ["audit.#"]

[capabilities.storage]
quota = "1MiB"
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A host config with one unknown (unsigned, untrusted) component."""
    folder = tmp_path / "cart"
    folder.mkdir()
    shutil.copy(wat_binary("echo"), folder / "cart.wasm")
    (folder / "component.toml").write_text(MANIFEST)
    config = tmp_path / "wactor.toml"
    config.write_text('state-dir = "state"\ncomponents = ["cart/component.toml"]\n')
    return config


def try_start(config_path: Path, *, dev: bool = False) -> str | None:
    """Pass the component through the gate as the host would; return the pending request id."""
    config = load_host_config(config_path)
    manifest = load_manifest(config.components[0])
    with (
        AuditLog.for_state_dir(config.state_dir) as audit,
        ApprovalStore.for_state_dir(config.state_dir) as store,
    ):
        gate = Gatekeeper(config.trust, store, audit, dev=dev, config_path=config.path)
        try:
            gate.admit(manifest, manifest.wasm.read_bytes())
        except ApprovalPendingError as exc:
            return exc.request_id
    return None


@pytest.fixture
def pending(app: Path) -> str:
    request_id = try_start(app)
    assert request_id is not None
    return request_id


def test_keygen_writes_a_key_pair_and_refuses_to_overwrite(tmp_path: Path) -> None:
    result = wactor("keygen", "--out", str(tmp_path / "keys" / "release"))
    assert result.returncode == 0, result.stderr
    private = tmp_path / "keys" / "release"
    public = tmp_path / "keys" / "release.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public_key_fingerprint(public) in result.stdout
    again = wactor("keygen", "--out", str(private))
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1
    assert "refusing to overwrite" in again.stderr


def test_sign_writes_a_signature_the_host_accepts(app: Path, tmp_path: Path) -> None:
    assert wactor("keygen", "--out", str(tmp_path / "k")).returncode == 0
    manifest_path = app.parent / "cart" / "component.toml"
    result = wactor("sign", str(manifest_path), "--key", str(tmp_path / "k"))
    assert result.returncode == 0, result.stderr
    assert (manifest_path.parent / "component.toml.sig").is_file()
    manifest = load_manifest(manifest_path)
    fingerprint = verify_signature(manifest, manifest.wasm.read_bytes(), [tmp_path / "k.pub"])
    assert fingerprint == public_key_fingerprint(tmp_path / "k.pub")
    app.write_text(app.read_text() + f'\n[trust]\nkeys = ["{tmp_path / "k.pub"}"]\n')
    assert try_start(app) is None  # trusted: no approval needed


def test_sign_with_a_missing_key_is_a_usage_error(app: Path, tmp_path: Path) -> None:
    result = wactor("sign", str(app.parent / "cart" / "component.toml"), "--key", "nope")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")


def test_approvals_list_shows_the_pending_request(app: Path, pending: str) -> None:
    table = wactor("approvals", "list", "--config", str(app))
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split()[:4] == ["ID", "COMPONENT", "STATUS", "CREATED"]
    assert row.split()[:3] == [pending, "shop/cart/0", "pending"]
    assert "send=shop/** publish=orders.*.created subscribe=audit.# storage=1MiB" in row
    as_json = wactor("approvals", "list", "--json", "--config", str(app))
    [record] = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert record["id"] == pending
    assert record["requested"]["messaging"]["send"] == ["shop/**"]


def test_approve_with_narrowing_lets_the_component_start(app: Path, pending: str) -> None:
    refused = wactor(
        "approvals", "approve", pending, "--narrow", '{"messaging": {"send": ["bank/**"]}}',
        "--config", str(app),
    )  # fmt: skip
    assert refused.returncode == 2
    assert "narrowing may only remove" in refused.stderr
    result = wactor(
        "approvals", "approve", "shop/cart/0", "--narrow", '{"storage": null}',
        "--config", str(app),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert try_start(app) is None
    [record] = [
        json.loads(line)
        for line in wactor("approvals", "list", "--json", "-c", str(app)).stdout.splitlines()
    ]
    assert record["status"] == "approved"
    assert record["granted"]["storage"] is None


def test_deny_refuses_the_component_with_the_reason(app: Path, pending: str) -> None:
    result = wactor("approvals", "deny", pending, "--reason", "unknown vendor", "-c", str(app))
    assert result.returncode == 0, result.stderr
    listed = wactor("approvals", "list", "--status", "denied", "--json", "-c", str(app))
    assert json.loads(listed.stdout)["reason"] == "unknown vendor"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("approvals", "approve", "ffffffff"), "no approval request"),
        (("approvals", "approve", "shop/cart/0", "--narrow", "{bad"), "not JSON"),
        (("approvals", "approve", "shop/cart/0", "--narrow", "[]"), "JSON object"),
        (("audit", "--since", "yesterday"), "bad time"),
        (("audit", "--component", "not an id"), "--component"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    app: Path, pending: str, args: tuple[str, ...], message: str
) -> None:
    result = wactor(*args, "--config", str(app))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


def test_missing_config_is_exit_code_2(tmp_path: Path) -> None:
    result = wactor("audit", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "no such host config file" in result.stderr


def test_audit_shows_decisions_with_filters(app: Path, pending: str) -> None:
    assert wactor("approvals", "approve", pending, "-c", str(app)).returncode == 0
    try_start(app)
    result = wactor("audit", "--json", "--config", str(app))
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["event"], e["allowed"]) for e in entries] == [
        ("approval-requested", False),
        ("approved", True),
        ("grant", True),
    ]
    denied = wactor("audit", "--denied", "--json", "--since", "10m", "-c", str(app))
    assert [json.loads(line)["event"] for line in denied.stdout.splitlines()] == [
        "approval-requested"
    ]
    other = wactor("audit", "--component", "shop/other/0", "-c", str(app))
    assert other.stdout.strip() == "no audit entries"
    table = wactor("audit", "--component", "shop/cart", "-c", str(app))
    assert table.stdout.splitlines()[0].split()[:3] == ["TIME", "EVENT", "COMPONENT"]
    assert len(table.stdout.splitlines()) == 4


def test_read_only_verbs_do_not_create_state(app: Path) -> None:
    assert wactor("audit", "-c", str(app)).stdout.strip() == "no audit entries"
    assert wactor("approvals", "list", "-c", str(app)).stdout.strip() == "no approval requests"
    assert not (app.parent / "state").exists()


def test_since_accepts_durations_and_iso_times() -> None:
    now = 1_000_000.0
    assert parse_since("10m", now=now) == now - 600
    assert parse_since("2h", now=now) == now - 7200
    assert parse_since("90", now=now) == now - 90
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
    assert parse_since(iso, now=now) == now


def test_audit_table_escapes_control_characters_a_guest_chose(app: Path) -> None:
    # A topic subject is the guest's own text and lands in the audit entry of its denial.
    config = load_host_config(app)
    with AuditLog.for_state_dir(config.state_dir) as log:
        subject = "evil\x1b[2J\x1b]0;owned\x07\nFAKE"
        log.record("denial", "shop/cart/0", allowed=False, action="publish", target=subject)
    table = wactor("audit", "-c", str(app))
    assert table.returncode == 0, table.stderr
    _header, row = table.stdout.splitlines()
    assert "evil\\x1b[2J\\x1b]0;owned\\x07\\nFAKE" in row
    assert not any(ord(c) < 0x20 for c in table.stdout.replace("\n", ""))
