"""Conformance suite: every storage backend behaves the same way."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import wactor.storage
from wactor.errors import InvalidKeyError, QuotaExceededError, StorageIOError
from wactor.storage import MAX_KEY_BYTES, MemoryStorage, SqliteStorage, StorageBackend
from wactor.storage._nats_kv import NatsKvStorage
from wactor.testing import NatsServer

A = "shop/cart/0"
B = "shop/pricing/0"
BIG = 1 << 40

Factory = Callable[[], StorageBackend]


@pytest.fixture(scope="session")
def kv_nats_server() -> Iterator[NatsServer]:
    """One nats-server for every NATS KV case; each test gets a bucket (lattice) of its own."""
    with NatsServer() as server:
        yield server


@pytest.fixture(params=["memory", "sqlite", "nats-kv"])
def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    opened: list[StorageBackend] = []
    shared_memory = MemoryStorage()
    lattice = f"t{uuid.uuid4().hex[:12]}"

    def factory() -> StorageBackend:
        backend: StorageBackend
        if request.param == "memory":
            backend = shared_memory
        elif request.param == "sqlite":
            backend = SqliteStorage(tmp_path / "state" / "storage.sqlite3")
        else:
            server: NatsServer = request.getfixturevalue("kv_nats_server")
            backend = NatsKvStorage(server.url, lattice)
        opened.append(backend)
        return backend

    yield factory
    for backend in opened:
        backend.close()


@pytest.fixture
def store(open_backend: Factory) -> StorageBackend:
    return open_backend()


def entry_size(key: str, value: bytes) -> int:
    return len(key.encode()) + len(value)


def run_in_threads(target: Callable[[int], None], threads: int) -> None:
    """Run ``target(worker)`` on ``threads`` threads at once; re-raise the first failure."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(target, worker) for worker in range(threads)]:
            future.result()


def test_package_all_names_exist() -> None:
    for name in wactor.storage.__all__:
        assert hasattr(wactor.storage, name)


# --- basic operations --------------------------------------------------------------------------


def test_get_of_unset_key_is_none(store: StorageBackend) -> None:
    assert store.get(A, "missing") is None


def test_set_then_get_returns_the_value(store: StorageBackend) -> None:
    store.set(A, "k", b"\x00\x01value", quota=BIG)
    assert store.get(A, "k") == b"\x00\x01value"


def test_empty_value_is_stored_and_distinct_from_missing(store: StorageBackend) -> None:
    store.set(A, "k", b"", quota=BIG)
    assert store.get(A, "k") == b""
    assert store.exists(A, "k")


def test_stored_value_does_not_follow_later_changes_to_a_bytearray(store: StorageBackend) -> None:
    value = bytearray(b"abc")
    store.set(A, "k", value, quota=BIG)  # type: ignore[arg-type]  # callers may pass buffers
    value[0] = ord("z")
    assert store.get(A, "k") == b"abc"


def test_overwrite_replaces_the_value(store: StorageBackend) -> None:
    store.set(A, "k", b"one", quota=BIG)
    store.set(A, "k", b"two!", quota=BIG)
    assert store.get(A, "k") == b"two!"


def test_delete_reports_whether_the_key_existed(store: StorageBackend) -> None:
    store.set(A, "k", b"v", quota=BIG)
    assert store.delete(A, "k") is True
    assert store.delete(A, "k") is False
    assert store.get(A, "k") is None


def test_exists_follows_set_and_delete(store: StorageBackend) -> None:
    assert not store.exists(A, "k")
    store.set(A, "k", b"v", quota=BIG)
    assert store.exists(A, "k")
    store.delete(A, "k")
    assert not store.exists(A, "k")


def test_list_keys_is_sorted_by_code_point(store: StorageBackend) -> None:
    keys = ["b", "a", "ä", "B", "a/b", "a\x00", "€", "\U0001f600", "\uffff"]
    for key in keys:
        store.set(A, key, b"v", quota=BIG)
    assert store.list_keys(A) == sorted(keys)
    assert store.list_keys(A, None) == sorted(keys)


def test_list_keys_with_prefix_matches_exact_prefix(store: StorageBackend) -> None:
    for key in ["user:1", "user:2", "user", "users", "uSer:3", "other"]:
        store.set(A, key, b"v", quota=BIG)
    assert store.list_keys(A, "user:") == ["user:1", "user:2"]
    assert store.list_keys(A, "user") == ["user", "user:1", "user:2", "users"]
    assert store.list_keys(A, "") == ["other", "uSer:3", "user", "user:1", "user:2", "users"]
    assert store.list_keys(A, "nothing") == []


def test_list_keys_treats_sql_wildcards_literally(store: StorageBackend) -> None:
    for key in ["100%", "100%done", "1000", "a_b", "axb", "a_", "%", "_"]:
        store.set(A, key, b"v", quota=BIG)
    assert store.list_keys(A, "100%") == ["100%", "100%done"]
    assert store.list_keys(A, "a_") == ["a_", "a_b"]
    assert store.list_keys(A, "%") == ["%"]
    assert store.list_keys(A, "_") == ["_"]


def test_list_keys_prefix_with_multibyte_and_high_characters(store: StorageBackend) -> None:
    keys = ["é1", "é2", "ê", "\U0010ffff", "\U0010ffffx", "\uffffz"]
    for key in keys:
        store.set(A, key, b"v", quota=BIG)
    assert store.list_keys(A, "é") == ["é1", "é2"]
    assert store.list_keys(A, "\U0010ffff") == ["\U0010ffff", "\U0010ffffx"]
    assert store.list_keys(A, "\uffff") == ["\uffffz"]


# --- keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "reason"),
    [("", "empty"), ("x" * (MAX_KEY_BYTES + 1), "bytes"), ("bad\udc80", "surrogate")],
)
def test_invalid_keys_are_refused_in_one_line(store: StorageBackend, key: str, reason: str) -> None:
    for call in (
        lambda: store.get(A, key),
        lambda: store.set(A, key, b"v", quota=BIG),
        lambda: store.delete(A, key),
        lambda: store.exists(A, key),
    ):
        with pytest.raises(InvalidKeyError) as info:
            call()
        assert reason in str(info.value)
        assert "\n" not in str(info.value)
        assert info.value.component == A


def test_key_of_exactly_the_maximum_size_is_accepted(store: StorageBackend) -> None:
    key = "é" * (MAX_KEY_BYTES // 2)  # 2 bytes each in UTF-8
    store.set(A, key, b"v", quota=BIG)
    assert store.get(A, key) == b"v"


def test_key_over_the_maximum_in_utf8_bytes_is_refused(store: StorageBackend) -> None:
    key = "é" * (MAX_KEY_BYTES // 2) + "x"  # 1025 bytes, 513 characters
    with pytest.raises(InvalidKeyError):
        store.set(A, key, b"v", quota=BIG)


def test_prefix_with_surrogate_is_refused(store: StorageBackend) -> None:
    with pytest.raises(InvalidKeyError):
        store.list_keys(A, "\ud800")


# --- scoping -----------------------------------------------------------------------------------


def test_same_key_in_two_components_is_two_entries(store: StorageBackend) -> None:
    store.set(A, "k", b"from A", quota=BIG)
    store.set(B, "k", b"from B", quota=BIG)
    assert store.get(A, "k") == b"from A"
    assert store.get(B, "k") == b"from B"
    assert store.delete(A, "k")
    assert store.get(B, "k") == b"from B"
    assert store.list_keys(A) == []
    assert store.list_keys(B) == ["k"]


@pytest.mark.parametrize(
    "key",
    ["../shop/pricing/0/k", "\x00k", "k\x00", f"{B}\x00k", f"{B}/k", "/k", "..", "*", "%"],
)
def test_path_like_and_nul_keys_stay_inside_the_callers_scope(
    store: StorageBackend, key: str
) -> None:
    store.set(B, "k", b"secret", quota=BIG)
    store.set(A, key, b"mine", quota=BIG)
    assert store.get(A, key) == b"mine"
    assert store.get(B, "k") == b"secret"
    assert store.list_keys(B) == ["k"]
    assert store.list_keys(A) == [key]
    assert store.usage(B, quota=BIG).key_count == 1


def test_prefix_never_reaches_another_component(store: StorageBackend) -> None:
    store.set(B, "secret", b"x", quota=BIG)
    store.set("shop/cart/00", "k", b"x", quota=BIG)
    assert store.list_keys(A, "") == []
    assert store.list_keys(A, "s") == []
    assert store.list_keys("shop/cart", None) == []


def test_usage_is_per_component(store: StorageBackend) -> None:
    store.set(A, "k", b"12345", quota=BIG)
    assert store.usage(B, quota=7).used_bytes == 0
    assert store.usage(B, quota=7).key_count == 0


# --- quota and usage ---------------------------------------------------------------------------


def test_usage_of_an_unused_component_is_zero(store: StorageBackend) -> None:
    usage = store.usage(A, quota=100)
    assert (usage.used_bytes, usage.quota_bytes, usage.key_count) == (0, 100, 0)


def test_usage_counts_key_and_value_bytes(store: StorageBackend) -> None:
    store.set(A, "ké", b"12345", quota=BIG)
    store.set(A, "k2", b"", quota=BIG)
    usage = store.usage(A, quota=1000)
    assert usage.used_bytes == (3 + 5) + (2 + 0)
    assert usage.key_count == 2
    assert usage.quota_bytes == 1000


def test_write_that_reaches_the_quota_exactly_succeeds(store: StorageBackend) -> None:
    store.set(A, "a", b"x" * 9, quota=20)
    store.set(A, "b", b"x" * 9, quota=20)
    assert store.usage(A, quota=20).used_bytes == 20


def test_write_one_byte_past_the_quota_fails_and_changes_nothing(store: StorageBackend) -> None:
    store.set(A, "a", b"x" * 9, quota=20)
    with pytest.raises(QuotaExceededError) as info:
        store.set(A, "b", b"x" * 10, quota=20)
    assert info.value.quota == 20
    assert info.value.needed == 21
    assert info.value.component == A
    assert "\n" not in str(info.value)
    assert store.get(A, "b") is None
    assert store.list_keys(A) == ["a"]
    usage = store.usage(A, quota=20)
    assert (usage.used_bytes, usage.key_count) == (10, 1)


def test_failed_overwrite_keeps_the_old_value(store: StorageBackend) -> None:
    store.set(A, "a", b"old", quota=10)
    with pytest.raises(QuotaExceededError):
        store.set(A, "a", b"x" * 10, quota=10)
    assert store.get(A, "a") == b"old"
    assert store.usage(A, quota=10).used_bytes == 4


def test_overwrite_counts_the_new_size_minus_the_old(store: StorageBackend) -> None:
    store.set(A, "k", b"x" * 10, quota=11)
    store.set(A, "k", b"y" * 10, quota=11)  # same size: still fits exactly
    store.set(A, "k", b"z" * 3, quota=11)
    usage = store.usage(A, quota=11)
    assert (usage.used_bytes, usage.key_count) == (4, 1)
    store.set(A, "k", b"w" * 10, quota=11)
    assert store.usage(A, quota=11).used_bytes == 11


def test_delete_frees_quota(store: StorageBackend) -> None:
    store.set(A, "a", b"x" * 9, quota=10)
    store.delete(A, "a")
    assert store.usage(A, quota=10).used_bytes == 0
    store.set(A, "b", b"y" * 9, quota=10)
    assert store.usage(A, quota=10) == wactor.storage.StorageUsage(10, 10, 1)


def test_quota_of_one_component_does_not_count_another(store: StorageBackend) -> None:
    store.set(B, "big", b"x" * 100, quota=BIG)
    store.set(A, "k", b"x" * 9, quota=10)
    assert store.usage(A, quota=10).used_bytes == 10


# --- concurrency -------------------------------------------------------------------------------


def test_concurrent_writers_keep_totals_exact(store: StorageBackend) -> None:
    threads = 8
    writes = 40
    barrier = threading.Barrier(threads)

    def writer(worker: int) -> None:
        barrier.wait()
        for i in range(writes):
            # Every worker overwrites one shared key with its own size, and adds keys of its own.
            store.set(A, "shared", b"x" * (worker + 1), quota=BIG)
            store.set(A, f"w{worker}/{i}", b"y" * i, quota=BIG)
            if i % 3 == 0:
                store.delete(A, f"w{worker}/{i}")

    run_in_threads(writer, threads)
    keys = store.list_keys(A)
    expected_used = 0
    for key in keys:
        value = store.get(A, key)
        assert value is not None
        expected_used += entry_size(key, value)
    usage = store.usage(A, quota=BIG)
    assert usage.key_count == len(keys) == 1 + threads * (writes - len(range(0, writes, 3)))
    assert usage.used_bytes == expected_used


def test_concurrent_writers_never_exceed_the_quota(store: StorageBackend) -> None:
    threads = 8
    per_entry = entry_size("w0/00", b"v" * 5)  # every key below has the same length
    quota = per_entry * 25
    barrier = threading.Barrier(threads)
    accepted: list[str] = []
    refused = 0
    lock = threading.Lock()

    def writer(worker: int) -> None:
        nonlocal refused
        barrier.wait()
        for i in range(10):
            key = f"w{worker}/{i:02d}"
            try:
                store.set(A, key, b"v" * 5, quota=quota)
            except QuotaExceededError:
                with lock:
                    refused += 1
            else:
                with lock:
                    accepted.append(key)

    run_in_threads(writer, threads)
    assert len(accepted) == 25
    assert refused == threads * 10 - 25
    assert sorted(accepted) == store.list_keys(A)
    assert store.usage(A, quota=quota) == wactor.storage.StorageUsage(quota, quota, 25)


# --- lifecycle ---------------------------------------------------------------------------------


def test_close_is_idempotent_and_later_calls_fail(store: StorageBackend) -> None:
    store.close()
    store.close()
    with pytest.raises(StorageIOError):
        store.get(A, "k")
    with pytest.raises(StorageIOError):
        store.set(A, "k", b"v", quota=BIG)


def test_sqlite_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "kv.sqlite3"
    first = SqliteStorage(path)
    first.set(A, "k", b"durable", quota=BIG)
    first.set(A, "gone", b"x", quota=BIG)
    first.delete(A, "gone")
    first.set(B, "k", b"other", quota=BIG)
    first.close()

    second = SqliteStorage(path)
    try:
        assert second.get(A, "k") == b"durable"
        assert second.get(B, "k") == b"other"
        assert second.list_keys(A) == ["k"]
        assert second.usage(A, quota=100) == wactor.storage.StorageUsage(8, 100, 1)
    finally:
        second.close()


def test_sqlite_on_a_file_that_is_not_a_database_fails_as_storage_io(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite, not at all" * 100)
    with pytest.raises(StorageIOError) as info:
        SqliteStorage(path)
    assert isinstance(info.value.__cause__, Exception)
    assert "\n" not in str(info.value)


def test_sqlite_uses_wal_journal(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "kv.sqlite3"
    storage = SqliteStorage(path)
    try:
        storage.set(A, "k", b"v", quota=BIG)
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()
    finally:
        storage.close()
