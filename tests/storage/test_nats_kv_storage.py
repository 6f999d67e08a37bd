"""What only the NATS KV backend has: several hosts on one bucket, crashes, a cluster.

The shared behaviour of every backend is in ``test_storage_backends.py``.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import nats
import pytest

from wactor.errors import QuotaExceededError, StorageIOError
from wactor.storage import StorageUsage
from wactor.storage._nats_kv import NatsKvStorage, _Conflict
from wactor.testing import NatsCluster, NatsServer

A = "shop/cart/0"
BIG = 1 << 40


@pytest.fixture(scope="module")
def server() -> Iterator[NatsServer]:
    with NatsServer() as srv:
        yield srv


@pytest.fixture
def lattice() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def hosts(server: NatsServer, lattice: str) -> Iterator[tuple[NatsKvStorage, NatsKvStorage]]:
    """Two hosts' storage on one lattice's bucket."""
    first = NatsKvStorage(server.url, lattice)
    second = NatsKvStorage(server.url, lattice)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def b32(text: str) -> str:
    return base64.b32encode(text.encode()).decode().rstrip("=")


def real_usage(store: NatsKvStorage, component: str) -> tuple[int, int]:
    """(bytes, keys) recounted from the keys themselves."""
    keys = store.list_keys(component)
    total = 0
    for key in keys:
        value = store.get(component, key)
        assert value is not None
        total += len(key.encode()) + len(value)
    return total, len(keys)


def test_hosts_on_one_lattice_share_the_data(hosts: tuple[NatsKvStorage, NatsKvStorage]) -> None:
    first, second = hosts
    first.set(A, "k", b"from first", quota=BIG)
    assert second.get(A, "k") == b"from first"
    second.set(A, "k", b"from second", quota=BIG)
    assert first.get(A, "k") == b"from second"
    assert first.usage(A, quota=BIG) == second.usage(A, quota=BIG) == StorageUsage(12, BIG, 1)


def test_data_outlives_the_storage_object(server: NatsServer, lattice: str) -> None:
    first = NatsKvStorage(server.url, lattice)
    first.set(A, "k", b"durable", quota=BIG)
    first.close()
    second = NatsKvStorage(server.url, lattice)
    try:
        assert second.get(A, "k") == b"durable"
        assert second.usage(A, quota=BIG) == StorageUsage(8, BIG, 1)
    finally:
        second.close()


def test_hosts_writing_at_once_never_exceed_the_quota_and_keep_totals_exact(
    hosts: tuple[NatsKvStorage, NatsKvStorage],
) -> None:
    per_entry = len("w0/00") + 5
    quota = per_entry * 30
    accepted: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def writer(worker: int) -> None:
        store = hosts[worker % 2]
        barrier.wait()
        for i in range(10):
            key = f"w{worker}/{i}"
            try:
                store.set(A, key, b"v" * 5, quota=quota)
            except QuotaExceededError:
                continue
            with lock:
                accepted.append(key)
            store.set(A, "shared", b"x" * (worker % 3), quota=BIG)  # overwrites race too

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(writer, w) for w in range(8)]:
            future.result()
    used, keys = real_usage(hosts[0], A)
    assert used <= quota + len("shared") + 2
    assert hosts[0].usage(A, quota=quota) == StorageUsage(used, quota, keys)
    assert sorted(accepted) == sorted(k for k in hosts[0].list_keys(A) if k != "shared")


def test_bucket_is_a_plain_kv_bucket_with_encoded_keys(
    server: NatsServer, hosts: tuple[NatsKvStorage, NatsKvStorage], lattice: str
) -> None:
    hosts[0].set(A, "user:1", b"data", quota=BIG)

    async def read() -> bytes:
        nc = await nats.connect(server.url)
        try:
            kv = await nc.jetstream().key_value(f"wactor-{lattice}-kv")
            entry = await kv.get(f"c.{b32(A)}.k.{b32('user:1')}")
            assert entry.value is not None
            return entry.value
        finally:
            await nc.close()

    assert asyncio.run(read()) == b"data"


def _crash_on_key_write(store: NatsKvStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``store`` die right after reserving: its key write never happens."""
    real_put = store._put

    async def put(subject: str, value: bytes | None, expected: int, write_id: str | None) -> None:
        if ".k." in subject and write_id is not None and not write_id.startswith("heal:"):
            raise OSError("the process died here")
        await real_put(subject, value, expected, write_id)

    monkeypatch.setattr(store, "_put", put)


def test_a_write_that_died_after_reserving_is_healed_by_the_next_writer(
    server: NatsServer, lattice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashing = NatsKvStorage(server.url, lattice, timeout=2)
    healer = NatsKvStorage(server.url, lattice, stale_after=0)  # presumes every writer dead
    try:
        crashing.set(A, "kept", b"12345", quota=BIG)
        _crash_on_key_write(crashing, monkeypatch)
        with pytest.raises(StorageIOError):
            crashing.set(A, "lost", b"x" * 100, quota=BIG)
        assert healer.get(A, "lost") is None
        # Over-counted (cautious, never past the quota) until someone writes again ...
        assert healer.usage(A, quota=BIG).used_bytes > real_usage(healer, A)[0]
        healer.set(A, "other", b"1", quota=BIG)
        # ... and exact again after.
        used, keys = real_usage(healer, A)
        assert healer.usage(A, quota=BIG) == StorageUsage(used, BIG, keys)
        assert healer.list_keys(A) == ["kept", "other"]
    finally:
        crashing.close()
        healer.close()


def test_a_write_that_died_after_writing_is_settled_by_the_next_writer(
    server: NatsServer, lattice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashing = NatsKvStorage(server.url, lattice, timeout=2)
    healer = NatsKvStorage(server.url, lattice, stale_after=0)
    try:
        crashing.set(A, "big", b"x" * 100, quota=BIG)

        async def die(*args: Any, **kwargs: Any) -> None:
            raise OSError("the process died here")

        monkeypatch.setattr(crashing, "_release", die)  # the delete lands, its settling never
        with pytest.raises(StorageIOError):
            crashing.delete(A, "big")
        assert healer.get(A, "big") is None
        assert healer.usage(A, quota=BIG).used_bytes == 103  # the freed space not yet shown
        healer.set(A, "small", b"1", quota=BIG)
        assert healer.usage(A, quota=BIG) == StorageUsage(6, BIG, 1)
    finally:
        crashing.close()
        healer.close()


def test_a_healed_write_can_never_land_late(
    server: NatsServer, lattice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashing = NatsKvStorage(server.url, lattice, timeout=2)
    healer = NatsKvStorage(server.url, lattice, stale_after=0)
    try:
        crashing.set(A, "k", b"old", quota=BIG)
        attempts: list[tuple[str, int, str]] = []
        real_put = crashing._put

        async def put(subject: str, value: bytes | None, expected: int, wid: str | None) -> None:
            if ".k." in subject and wid is not None and not wid.startswith("heal:"):
                attempts.append((subject, expected, wid))
                raise OSError("stalled")
            await real_put(subject, value, expected, wid)

        monkeypatch.setattr(crashing, "_put", put)
        with pytest.raises(StorageIOError):
            crashing.set(A, "k", b"new and much longer", quota=BIG)
        healer.set(A, "k", b"healer", quota=BIG)  # heals the reservation of the same key
        subject, expected, write_id = attempts[-1]
        with pytest.raises(_Conflict):  # the stalled write wakes up: refused
            crashing._call(A, real_put(subject, b"new and much longer", expected, write_id))
        assert healer.get(A, "k") == b"healer"
        assert healer.usage(A, quota=BIG) == StorageUsage(7, BIG, 1)
    finally:
        crashing.close()
        healer.close()


def test_write_past_the_quota_from_another_host_changes_nothing(
    hosts: tuple[NatsKvStorage, NatsKvStorage],
) -> None:
    first, second = hosts
    first.set(A, "a", b"x" * 9, quota=20)
    with pytest.raises(QuotaExceededError) as info:
        second.set(A, "b", b"x" * 10, quota=20)
    assert (info.value.quota, info.value.needed) == (20, 21)
    assert first.list_keys(A) == ["a"]
    assert first.usage(A, quota=20) == StorageUsage(10, 20, 1)


def test_calls_fail_with_storage_io_error_while_the_server_is_down(lattice: str) -> None:
    with NatsServer() as srv:
        store = NatsKvStorage(srv.url, lattice, timeout=0.5)
        try:
            store.set(A, "k", b"v", quota=BIG)
            srv.stop()
            with pytest.raises(StorageIOError, match="gave up"):
                store.get(A, "k")
            with pytest.raises(StorageIOError):
                store.set(A, "k", b"w", quota=BIG)
            srv.start()
            assert store.get(A, "k") == b"v"  # back without reopening
        finally:
            store.close()


def test_opening_without_a_server_fails_clearly() -> None:
    with NatsServer() as srv:
        url = srv.url
    with pytest.raises(StorageIOError, match="cannot connect to NATS"):
        NatsKvStorage(url, timeout=0.5)


def test_bad_lattice_or_replicas_are_refused() -> None:
    with pytest.raises(ValueError, match="lattice"):
        NatsKvStorage("nats://127.0.0.1:1", "a.b")
    with pytest.raises(ValueError, match="replicas"):
        NatsKvStorage("nats://127.0.0.1:1", replicas=0)


# --- a three-node cluster -----------------------------------------------------------------------


def _stream_leader(cluster: NatsCluster, stream: str) -> int:
    async def ask() -> str:
        nc = await nats.connect(cluster.urls)
        try:
            info = await nc.jetstream().stream_info(stream)
        finally:
            await nc.close()
        assert info.cluster is not None
        assert info.cluster.leader is not None
        return info.cluster.leader

    leader = asyncio.run(ask())
    return next(i for i, node in enumerate(cluster.nodes) if node.name == leader)


def test_replicated_data_stays_readable_and_writable_when_a_node_dies(lattice: str) -> None:
    with NatsCluster(3) as cluster:
        # What is tested is that nothing is lost, not how fast a loaded machine elects a new
        # leader: each call may retry for up to a minute.
        store = NatsKvStorage(cluster.urls, lattice, replicas=3, timeout=60.0)
        try:
            store.set(A, "k", b"replicated", quota=BIG)
            store.set(A, "gone", b"x", quota=BIG)
            victim = _stream_leader(cluster, f"KV_wactor-{lattice}-kv")
            cluster.kill(victim)  # the stream's leader, and perhaps the node we talk to

            assert store.get(A, "k") == b"replicated"
            store.set(A, "k2", b"written with a node down", quota=BIG)
            assert store.delete(A, "gone")
            assert store.list_keys(A) == ["k", "k2"]
            assert store.usage(A, quota=BIG) == StorageUsage(
                len("k") + len(b"replicated") + len("k2") + len(b"written with a node down"),
                BIG,
                2,
            )

            cluster.restart(victim)
            other = NatsKvStorage([cluster.urls[victim]], lattice, timeout=60.0)
            try:
                assert other.get(A, "k2") == b"written with a node down"
            finally:
                other.close()
        finally:
            store.close()
