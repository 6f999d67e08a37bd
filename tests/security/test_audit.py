"""The audit log (durable, batched, never silently lossy) and the audited messaging check."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wactor._ids import ComponentId, TargetPattern
from wactor.errors import CapabilityDeniedError, StorageIOError
from wactor.security import AuditLog, Capabilities, MessagingPolicy


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "audit.sqlite3"


@pytest.fixture
def log(path: Path) -> Iterator[AuditLog]:
    with AuditLog(path) as audit:
        yield audit


def test_entries_persist_across_reopening(path: Path) -> None:
    with AuditLog(path) as log:
        log.record("start", "shop/cart/0", allowed=True)
        log.record("denial", "shop/cart/0", allowed=False, action="send", target="bank/x/0")
    with AuditLog(path) as reopened:
        entries = reopened.query()
    assert [(e.event, e.allowed, e.target) for e in entries] == [
        ("start", True, ""),
        ("denial", False, "bank/x/0"),
    ]
    assert entries[0].id < entries[1].id
    assert entries[0].time <= entries[1].time


def test_flush_makes_entries_visible_to_another_connection(log: AuditLog, path: Path) -> None:
    log.record("grant", "a/b/0", allowed=True, action="send", target="a/c/0")
    log.flush()
    with sqlite3.connect(path) as other:
        rows = other.execute("SELECT event, component, allowed FROM audit").fetchall()
    assert rows == [("grant", "a/b/0", 1)]


def test_filters_by_component_denials_since_and_limit(log: AuditLog) -> None:
    log.record("grant", "a/b/0", allowed=True)
    log.record("denial", "a/b/0", allowed=False, reason="no")
    log.record("denial", "x/y/0", allowed=False)
    log.flush()
    middle = time.time()
    log.record("quota-breach", "a/b/0", allowed=False)
    assert [e.event for e in log.query(component="a/b/0")] == ["grant", "denial", "quota-breach"]
    assert [(e.component, e.event) for e in log.query(denied_only=True)] == [
        ("a/b/0", "denial"),
        ("x/y/0", "denial"),
        ("a/b/0", "quota-breach"),
    ]
    assert [e.event for e in log.query(since=middle)] == ["quota-breach"]
    assert [e.component for e in log.query(denied_only=True, limit=2)] == ["x/y/0", "a/b/0"]
    assert log.query(component="a/b/0", denied_only=True, since=middle, limit=1)[0].event == (
        "quota-breach"
    )


def test_records_from_many_threads_all_land(log: AuditLog) -> None:
    def work(n: int) -> None:
        for i in range(500):
            log.record("grant", f"t/w/{n}", allowed=True, target=str(i))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = log.query(limit=10_000)
    assert len(entries) == 4000
    for n in range(8):  # per-thread order is kept
        mine = [int(e.target) for e in entries if e.component == f"t/w/{n}"]
        assert mine == list(range(500))


def test_a_full_queue_sheds_and_records_how_many_were_lost(path: Path) -> None:
    with AuditLog(path, queue_limit=4) as log:
        log.record("start", "a/b/0", allowed=True)
        log.flush()
        # Another process holds the write lock: the writer stalls, the queue fills up.
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            for i in range(200):
                log.record("grant", "a/b/0", allowed=True, target=str(i))
            assert log.shed_count > 0
        finally:
            blocker.execute("COMMIT")
            blocker.close()
        entries = log.query(limit=1000)
    shed = [e for e in entries if e.event == "audit-shed"]
    kept = [e for e in entries if e.event == "grant"]
    assert shed, "shedding must be recorded"
    lost = sum(int(e.reason.split()[0]) for e in shed)
    assert lost + len(kept) == 200
    assert lost >= 200 - 2 * 4  # at most one batch in flight plus a full queue got through
    assert all(not e.allowed and "lost" in e.reason for e in shed)


def test_close_is_idempotent_and_recording_afterwards_fails_loudly(path: Path) -> None:
    log = AuditLog(path)
    log.record("stop", "a/b/0", allowed=True)
    log.close()
    log.close()
    with pytest.raises(StorageIOError, match="closed"):
        log.record("stop", "a/b/0", allowed=True)
    with AuditLog(path) as reopened:
        assert [e.event for e in reopened.query()] == ["stop"]


# --- the messaging policy --------------------------------------------------------------------

CAPS = Capabilities(
    send=(TargetPattern.parse("shop/**"),), request=(TargetPattern.parse("shop/pricing/*"),)
)


def test_policy_audits_a_grant_once_and_every_denial(log: AuditLog) -> None:
    policy = MessagingPolicy(CAPS, ComponentId.parse("shop/cart/0"), log)
    cart = ComponentId.parse("shop/cart/1")
    bank = ComponentId.parse("bank/vault/0")
    for _ in range(3):
        policy.check("send", cart)
    for _ in range(2):
        with pytest.raises(CapabilityDeniedError) as caught:
            policy.check("send", bank)
        assert caught.value.capability == "messaging.send"
        assert caught.value.component == "shop/cart/0"
        assert caught.value.exit_code == 3
    with pytest.raises(CapabilityDeniedError):
        policy.check("broadcast", cart)
    entries = log.query()
    assert [(e.event, e.allowed, e.action, e.target) for e in entries] == [
        ("grant", True, "send", "shop/cart/1"),
        ("denial", False, "send", "bank/vault/0"),
        ("denial", False, "send", "bank/vault/0"),
        ("denial", False, "broadcast", "shop/cart/1"),
    ]
    assert all(e.component == "shop/cart/0" for e in entries)


def test_policy_distinguishes_actions(log: AuditLog) -> None:
    policy = MessagingPolicy(CAPS, "shop/cart/0", log)
    pricing = ComponentId.parse("shop/pricing/0")
    policy.check("request", pricing)
    policy.check("send", pricing)
    with pytest.raises(CapabilityDeniedError, match="request to shop/cart/0"):
        policy.check("request", ComponentId.parse("shop/cart/0"))


def test_policy_without_audit_still_enforces() -> None:
    policy = MessagingPolicy(Capabilities(), "a/b/0", None)
    with pytest.raises(CapabilityDeniedError):
        policy.check("send", ComponentId.parse("a/b/1"))
