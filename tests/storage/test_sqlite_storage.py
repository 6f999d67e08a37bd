"""The SQLite backend beyond the conformance suite: several connections to one file (two hosts,
or a host and a tool, on one state directory) and databases whose totals an earlier wactor kept."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from wactor.errors import QuotaExceededError
from wactor.storage import SqliteStorage, StorageUsage

A = "shop/cart/0"
BIG = 1 << 40


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.sqlite3"


@pytest.fixture
def two(path: Path) -> Iterator[tuple[SqliteStorage, SqliteStorage]]:
    first, second = SqliteStorage(path), SqliteStorage(path)
    yield first, second
    first.close()
    second.close()


def exact_usage(path: Path, component: str) -> tuple[int, int]:
    """Used bytes and key count summed over the entries themselves, not read from the totals."""
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT coalesce(sum(length(key) + length(value)), 0), count(*) "
            "FROM kv_entries WHERE component = ?",
            (component,),
        ).fetchone()
    finally:
        conn.close()
    return int(row[0]), int(row[1])


def test_two_connections_never_exceed_the_quota_together(
    path: Path, two: tuple[SqliteStorage, SqliteStorage]
) -> None:
    per_entry = len(b"w0/00") + 5
    quota = per_entry * 25
    threads = 8
    barrier = threading.Barrier(threads)
    accepted: list[str] = []
    refused: list[QuotaExceededError] = []
    lock = threading.Lock()

    def writer(worker: int) -> None:
        store = two[worker % 2]  # half the writers on each connection
        barrier.wait()
        for i in range(10):
            key = f"w{worker}/{i:02d}"
            try:
                store.set(A, key, b"v" * 5, quota=quota)
            except QuotaExceededError as exc:
                with lock:
                    refused.append(exc)
            else:
                with lock:
                    accepted.append(key)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(writer, worker) for worker in range(threads)]:
            future.result()

    assert len(accepted) == 25
    assert len(refused) == threads * 10 - 25
    assert all(exc.needed == quota + per_entry for exc in refused)
    for store in two:
        assert sorted(accepted) == store.list_keys(A)
        assert store.usage(A, quota=quota) == StorageUsage(quota, quota, 25)
    assert exact_usage(path, A) == (quota, 25)


def test_writes_through_one_connection_count_against_the_quota_seen_by_another(
    two: tuple[SqliteStorage, SqliteStorage],
) -> None:
    first, second = two
    first.set(A, "a", b"x" * 9, quota=20)
    with pytest.raises(QuotaExceededError) as info:
        second.set(A, "b", b"x" * 10, quota=20)
    assert info.value.needed == 21
    first.delete(A, "a")
    second.set(A, "b", b"x" * 19, quota=20)  # the space the other connection freed
    assert first.get(A, "b") == b"x" * 19
    assert first.usage(A, quota=20) == StorageUsage(20, 20, 1)


def test_totals_stay_exact_over_overwrites_and_deletes_from_both_connections(
    path: Path, two: tuple[SqliteStorage, SqliteStorage]
) -> None:
    first, second = two
    for i in range(30):
        store = two[i % 2]
        store.set(A, f"k{i % 7}", b"x" * i, quota=BIG)
        if i % 5 == 0:
            (second if store is first else first).delete(A, f"k{(i + 3) % 7}")
    used, count = exact_usage(path, A)
    assert first.usage(A, quota=BIG) == second.usage(A, quota=BIG) == StorageUsage(used, BIG, count)


def test_a_write_refused_while_another_connection_frees_space_is_made_after_all(
    two: tuple[SqliteStorage, SqliteStorage], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two
    first.set(A, "a", b"x" * 9, quota=20)
    refused = first._set_or_refuse  # runs after the one-statement write was refused

    def other_host_deletes_first(params: tuple[str, bytearray, bytes, int]) -> None:
        second.delete(A, "a")
        refused(params)

    monkeypatch.setattr(first, "_set_or_refuse", other_host_deletes_first)
    first.set(A, "b", b"x" * 19, quota=20)  # exactly the quota, once "a" is gone
    assert second.get(A, "b") == b"x" * 19
    assert second.usage(A, quota=20) == StorageUsage(20, 20, 1)


def _old_schema_database(path: Path) -> None:
    """A database as an earlier wactor left it: the same tables, totals written by the writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE kv_entries (component TEXT NOT NULL, key BLOB NOT NULL, "
            "value BLOB NOT NULL, PRIMARY KEY (component, key))"
        )
        conn.execute(
            "CREATE TABLE kv_usage (component TEXT PRIMARY KEY, used_bytes INTEGER NOT NULL, "
            "key_count INTEGER NOT NULL)"
        )
        conn.execute("INSERT INTO kv_entries VALUES (?, ?, ?)", (A, b"old", b"12345"))
        conn.execute("INSERT INTO kv_usage VALUES (?, ?, ?)", (A, 8, 1))
    finally:
        conn.close()


def _old_writer_set(path: Path, key: bytes, value: bytes) -> None:
    """A write as the earlier wactor made it: entry first, then the total as an absolute value."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(
            "SELECT length(value) FROM kv_entries WHERE component = ? AND key = ?", (A, key)
        ).fetchone()
        used, count = conn.execute(
            "SELECT used_bytes, key_count FROM kv_usage WHERE component = ?", (A,)
        ).fetchone()
        if row is None:
            count += 1
        else:
            used -= len(key) + row[0]
        used += len(key) + len(value)
        conn.execute(
            "INSERT INTO kv_entries VALUES (?, ?, ?) "
            "ON CONFLICT (component, key) DO UPDATE SET value = excluded.value",
            (A, key, value),
        )
        conn.execute(
            "UPDATE kv_usage SET used_bytes = ?, key_count = ? WHERE component = ?",
            (used, count, A),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_a_database_of_an_earlier_version_keeps_exact_totals(path: Path) -> None:
    _old_schema_database(path)
    store = SqliteStorage(path)
    try:
        assert store.usage(A, quota=BIG) == StorageUsage(8, BIG, 1)
        store.set(A, "old", b"1234567", quota=BIG)
        store.set(A, "new", b"x", quota=BIG)
        # the earlier version writing to the same file, after this one added its triggers
        _old_writer_set(path, b"new", b"xyz")
        _old_writer_set(path, b"third", b"")
        store.delete(A, "old")
        used, count = exact_usage(path, A)
        assert store.usage(A, quota=BIG) == StorageUsage(used, BIG, count)
        assert (used, count) == (3 + 3 + 5, 2)
    finally:
        store.close()
