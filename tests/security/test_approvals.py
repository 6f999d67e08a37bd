"""The approval queue, capability narrowing, and the gate's approval path."""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import wat_binary
from wactor._ids import TargetPattern
from wactor.errors import ApprovalDeniedError, ApprovalPendingError, ConfigError
from wactor.host import TrustConfig
from wactor.security import (
    ApprovalStore,
    AuditLog,
    Capabilities,
    Gatekeeper,
    capabilities_from_dict,
    capabilities_to_dict,
    limits_to_dict,
    load_manifest,
    manifest_digest,
    narrow_capabilities,
)

MANIFEST = """\
[component]
id = "shop/cart/0"
wasm = "cart.wasm"

[capabilities.messaging]
send = ["shop/**"]
request = ["shop/pricing/*"]

[capabilities.storage]
quota = "10MiB"

[capabilities.filesystem]
read = ["./assets"]

[capabilities.network]
connect = ["*.example.com:443", "10.0.0.1:8000-8100"]

[capabilities.environment]
allow = ["LANG", "TZ"]
"""

REQUESTED: dict[str, Any] = {
    "messaging": {
        "send": ["shop/**"],
        "request": [],
        "broadcast": [],
        "publish": [],
        "subscribe": [],
    },
    "storage": None,
    "filesystem": {"read": [], "write": []},
    "network": {"connect": []},
    "environment": {"allow": []},
}


@pytest.fixture
def component(tmp_path: Path) -> Path:
    folder = tmp_path / "cart"
    (folder / "assets" / "img").mkdir(parents=True)
    shutil.copy(wat_binary("echo"), folder / "cart.wasm")
    (folder / "component.toml").write_text(MANIFEST)
    return folder / "component.toml"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ApprovalStore]:
    with ApprovalStore(tmp_path / "state" / "approvals.sqlite3") as s:
        yield s


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "state" / "audit.sqlite3") as log:
        yield log


# --- the store -------------------------------------------------------------------------------


def test_request_is_pending_with_a_short_id_and_is_idempotent(store: ApprovalStore) -> None:
    first = store.request("shop/cart/0", "a" * 64, "b" * 64, {"messaging": {"send": ["shop/**"]}})
    assert first.status == "pending"
    assert len(first.id) == 8
    assert int(first.id, 16) >= 0
    assert first.requested == REQUESTED
    assert first.granted is None
    assert store.request("shop/cart/0", "a" * 64, "b" * 64, REQUESTED) == first
    assert store.list() == [first]


def test_decisions_survive_reopening_the_store(tmp_path: Path) -> None:
    path = tmp_path / "approvals.sqlite3"
    with ApprovalStore(path) as store:
        request = store.request("shop/cart/0", "a" * 64, "b" * 64, REQUESTED)
        approved = store.approve(request.id)
    with ApprovalStore(path) as reopened:
        assert reopened.decision("shop/cart/0", "a" * 64, "b" * 64) == approved
        assert approved.status == "approved"
        assert approved.granted == REQUESTED
        assert approved.decided is not None


def test_changed_binary_or_manifest_needs_a_new_approval(store: ApprovalStore) -> None:
    approved = store.approve(store.request("shop/cart/0", "a" * 64, "b" * 64, REQUESTED).id)
    new_binary = store.request("shop/cart/0", "c" * 64, "b" * 64, REQUESTED)
    new_manifest = store.request("shop/cart/0", "a" * 64, "d" * 64, REQUESTED)
    assert new_binary.status == new_manifest.status == "pending"
    assert len({approved.id, new_binary.id, new_manifest.id}) == 3
    assert store.decision("shop/cart/0", "c" * 64, "b" * 64) == new_binary
    assert store.decision("shop/cart/0", "e" * 64, "b" * 64) is None


def test_component_ref_means_its_latest_pending_request(store: ApprovalStore) -> None:
    older = store.request("shop/cart/0", "a" * 64, "b" * 64, REQUESTED)
    newer = store.request("shop/cart/0", "c" * 64, "b" * 64, REQUESTED)
    other = store.request("shop/other/0", "a" * 64, "b" * 64, REQUESTED)
    assert store.approve("shop/cart/0").id == newer.id
    assert store.deny("shop/cart", "not today").id == older.id  # ns/name means instance 0
    assert [a.id for a in store.list("pending")] == [other.id]
    assert {a.id for a in store.list("approved")} == {newer.id}
    assert store.list("denied")[0].reason == "not today"


def test_unknown_ref_is_a_config_error(store: ApprovalStore) -> None:
    with pytest.raises(ConfigError, match="no approval request"):
        store.approve("deadbeef")
    with pytest.raises(ConfigError, match="no approval request for component shop/none/0"):
        store.deny("shop/none/0")


def test_denying_an_approved_request_revokes_it(store: ApprovalStore) -> None:
    request = store.request("shop/cart/0", "a" * 64, "b" * 64, REQUESTED)
    store.approve(request.id)
    revoked = store.deny(request.id, "revoked")
    assert revoked.status == "denied"
    assert revoked.granted is None
    assert store.decision("shop/cart/0", "a" * 64, "b" * 64) == revoked


def test_decisions_are_audited(tmp_path: Path, audit: AuditLog) -> None:
    with ApprovalStore(tmp_path / "approvals.sqlite3", audit=audit) as store:
        first = store.request("shop/cart/0", "a" * 64, "b" * 64, REQUESTED)
        store.approve(first.id, narrow={"messaging": {"send": []}})
        store.deny(first.id, "changed my mind")
    entries = audit.query(component="shop/cart/0")
    assert [(e.event, e.allowed, e.target) for e in entries] == [
        ("approved", True, first.id),
        ("denied", False, first.id),
    ]
    assert "narrowed" in entries[0].reason
    assert entries[1].reason == "changed my mind"


def test_concurrent_identical_requests_create_one_record(store: ApprovalStore) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        results.append(store.request("shop/cart/0", "a" * 64, "b" * 64, REQUESTED).id)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert len(store.list()) == 1


# --- narrowing -------------------------------------------------------------------------------


def test_capabilities_round_trip_through_the_dict_form(component: Path) -> None:
    caps = load_manifest(component).capabilities
    data = capabilities_to_dict(caps)
    assert data["messaging"]["send"] == ["shop/**"]
    assert data["storage"] == {"quota": 10 * 1024 * 1024}
    assert data["filesystem"]["read"] == [str(component.parent / "assets")]
    assert data["environment"] == {"allow": ["LANG", "TZ"]}
    assert capabilities_from_dict(data) == caps
    assert capabilities_from_dict({}) == Capabilities()


def test_narrowing_keeps_what_it_does_not_name_and_replaces_what_it_names(
    component: Path,
) -> None:
    caps = load_manifest(component).capabilities
    narrowed = narrow_capabilities(
        caps,
        {
            "messaging": {"send": ["shop/cart/*"], "request": []},
            "storage": {"quota": "1MiB"},
            "filesystem": {"read": [str(component.parent / "assets" / "img")]},
            "network": {"connect": ["api.example.com:443", "10.0.0.1:8050"]},
            "environment": {"allow": ["TZ"]},
        },
    )
    assert narrowed.send == (TargetPattern.parse("shop/cart/*"),)
    assert narrowed.request == ()
    assert narrowed.storage_quota == 1024 * 1024
    assert narrowed.fs_read == (component.parent / "assets" / "img",)
    assert narrowed.net_connect == ("api.example.com:443", "10.0.0.1:8050")
    assert narrowed.env == ("TZ",)
    assert narrow_capabilities(caps, {}) == caps
    assert narrow_capabilities(caps, {"storage": None}).storage_quota is None


@pytest.mark.parametrize(
    ("narrow", "key"),
    [
        ({"messaging": {"send": ["bank/**"]}}, "messaging.send[0]"),
        ({"messaging": {"send": ["**"]}}, "messaging.send[0]"),
        ({"messaging": {"broadcast": ["shop/**"]}}, "messaging.broadcast[0]"),
        ({"messaging": {"request": ["shop/**"]}}, "messaging.request[0]"),
        ({"storage": {"quota": "11MiB"}}, "storage.quota"),
        ({"filesystem": {"read": ["/etc"]}}, "filesystem.read[0]"),
        ({"filesystem": {"write": ["/tmp"]}}, "filesystem.write[0]"),
        ({"network": {"connect": ["*:443"]}}, "network.connect[0]"),
        ({"network": {"connect": ["example.com:443"]}}, "network.connect[0]"),
        ({"network": {"connect": ["10.0.0.1:9000"]}}, "network.connect[0]"),
        ({"environment": {"allow": ["HOME"]}}, "environment.allow[0]"),
    ],
)
def test_narrowing_that_would_add_anything_is_refused(
    component: Path, narrow: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        narrow_capabilities(load_manifest(component).capabilities, narrow)


def test_narrowing_refuses_a_path_that_climbs_out_of_a_requested_directory(
    component: Path,
) -> None:
    climbing = str(component.parent / "assets") + "/../../.."
    with pytest.raises(ConfigError, match="not normalised"):
        narrow_capabilities(
            load_manifest(component).capabilities, {"filesystem": {"read": [climbing]}}
        )


@pytest.mark.parametrize(
    "narrow",
    [{"mesaging": {}}, {"messaging": {"sned": []}}, {"messaging": None}, {"storage": 5}],
)
def test_narrowing_with_unknown_or_malformed_keys_is_refused(
    component: Path, narrow: dict[str, object]
) -> None:
    with pytest.raises(ConfigError):
        narrow_capabilities(load_manifest(component).capabilities, narrow)


def test_approving_with_an_addition_is_refused_and_changes_nothing(
    store: ApprovalStore, component: Path
) -> None:
    requested = capabilities_to_dict(load_manifest(component).capabilities)
    request = store.request("shop/cart/0", "a" * 64, "b" * 64, requested)
    with pytest.raises(ConfigError, match="narrowing may only remove"):
        store.approve(request.id, narrow={"messaging": {"send": ["bank/**"]}})
    assert store.list() == [request]


def test_approving_with_narrowing_stores_the_full_granted_set(
    store: ApprovalStore, component: Path
) -> None:
    caps = load_manifest(component).capabilities
    request = store.request("shop/cart/0", "a" * 64, "b" * 64, capabilities_to_dict(caps))
    approved = store.approve(request.id, narrow={"storage": None})
    assert approved.granted is not None
    assert approved.granted["storage"] is None
    assert approved.granted["messaging"] == approved.requested["messaging"]
    assert narrow_capabilities(caps, approved.granted) == narrow_capabilities(
        caps, {"storage": None}
    )


# --- the gate's approval path ----------------------------------------------------------------


def gate_for(store: ApprovalStore, audit: AuditLog, *, dev: bool = False) -> Gatekeeper:
    return Gatekeeper(
        TrustConfig(), store, audit, dev=dev, config_path=Path("/etc/wactor/wactor.toml")
    )


def test_unknown_component_waits_for_approval_and_says_what_to_run(
    store: ApprovalStore, audit: AuditLog, component: Path
) -> None:
    manifest = load_manifest(component)
    wasm = manifest.wasm.read_bytes()
    with pytest.raises(ApprovalPendingError) as caught:
        gate_for(store, audit).admit(manifest, wasm)
    [pending] = store.list("pending")
    assert caught.value.exit_code == 3
    assert caught.value.request_id == pending.id
    assert (
        f"wactor approvals approve {pending.id} --config /etc/wactor/wactor.toml"
        in caught.value.message
    )
    assert pending.wasm_digest == hashlib.sha256(wasm).hexdigest()
    assert pending.manifest_digest == manifest_digest(manifest)
    # what the manifest declares, and beside it the resource limits it asks for
    assert pending.requested == capabilities_to_dict(manifest.capabilities) | {
        "limits": limits_to_dict(manifest.limits)
    }
    with pytest.raises(ApprovalPendingError):
        gate_for(store, audit).admit(manifest, wasm)  # asking again files nothing new
    assert len(store.list()) == 1
    assert [e.event for e in audit.query()] == ["approval-requested"] * 2


def test_approved_component_is_admitted_with_the_narrowed_capabilities(
    store: ApprovalStore, audit: AuditLog, component: Path
) -> None:
    manifest = load_manifest(component)
    wasm = manifest.wasm.read_bytes()
    with pytest.raises(ApprovalPendingError) as caught:
        gate_for(store, audit).admit(manifest, wasm)
    store.approve(caught.value.request_id, narrow={"messaging": {"send": ["shop/cart/*"]}})
    admission = gate_for(store, audit).admit(manifest, wasm)
    assert admission.level == "approved"
    assert admission.capabilities.send == (TargetPattern.parse("shop/cart/*"),)
    assert admission.capabilities.request == manifest.capabilities.request
    assert audit.query()[-1].event == "grant"


def test_denied_component_is_refused(
    store: ApprovalStore, audit: AuditLog, component: Path
) -> None:
    manifest = load_manifest(component)
    wasm = manifest.wasm.read_bytes()
    with pytest.raises(ApprovalPendingError):
        gate_for(store, audit).admit(manifest, wasm)
    store.deny("shop/cart/0", "unknown vendor")
    with pytest.raises(ApprovalDeniedError, match="unknown vendor") as caught:
        gate_for(store, audit, dev=True).admit(manifest, wasm)  # dev mode does not override
    assert caught.value.exit_code == 3
    last = audit.query()[-1]
    assert (last.event, last.allowed) == ("denial", False)


def test_changed_binary_after_approval_needs_a_new_approval(
    store: ApprovalStore, audit: AuditLog, component: Path
) -> None:
    manifest = load_manifest(component)
    with pytest.raises(ApprovalPendingError):
        gate_for(store, audit).admit(manifest, manifest.wasm.read_bytes())
    store.approve("shop/cart/0")
    manifest.wasm.write_bytes(manifest.wasm.read_bytes() + b"\x00")
    with pytest.raises(ApprovalPendingError) as caught:
        gate_for(store, audit).admit(manifest, manifest.wasm.read_bytes())
    assert store.list("pending")[0].id == caught.value.request_id


def test_dev_mode_admits_unknown_components_with_a_loud_warning_every_time(
    store: ApprovalStore, audit: AuditLog, component: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = load_manifest(component)
    gate = gate_for(store, audit, dev=True)
    with caplog.at_level(logging.WARNING, logger="wactor.security"):
        assert gate.admit(manifest, manifest.wasm.read_bytes()).level == "dev"
        assert gate.admit(manifest, manifest.wasm.read_bytes()).level == "dev"
    warnings = [r for r in caplog.records if r.name == "wactor.security"]
    assert len(warnings) == 2
    assert all("DEV MODE" in r.getMessage() for r in warnings)
    assert store.list() == []
    assert [e.reason for e in audit.query()] == ["dev mode: no trust source, no approval"] * 2


def test_gate_keys_approvals_by_digest_whether_given_bytes_or_digest(
    store: ApprovalStore, audit: AuditLog, component: Path
) -> None:
    manifest = load_manifest(component)
    wasm = manifest.wasm.read_bytes()
    with pytest.raises(ApprovalPendingError) as from_bytes:
        gate_for(store, audit).admit(manifest, wasm)
    with pytest.raises(ApprovalPendingError) as from_digest:
        gate_for(store, audit).admit(manifest, hashlib.sha256(wasm).hexdigest())
    assert from_bytes.value.request_id == from_digest.value.request_id
