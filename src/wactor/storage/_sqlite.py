"""The durable single-host backend: one SQLite file in WAL mode, ``synchronous=FULL``.

Schema: ``kv_entries(component, key BLOB, value BLOB)`` with ``(component, key)`` as primary key,
and ``kv_usage(component, used_bytes, key_count)``, kept up to date by triggers on ``kv_entries``
inside the statement that writes the entry, so ``usage`` is one row lookup and no write can leave
the two apart. Keys are stored as their UTF-8 bytes and prefixes are matched as byte ranges
(``key >= prefix AND key < successor(prefix)``), never with ``LIKE``.

A ``set`` is one statement, ``INSERT INTO kv_write (component, key, value, quota)``: the view's
``INSTEAD OF`` trigger refuses the write when the usage after it would pass the quota (``RAISE``
undoes the whole statement) and otherwise upserts the entry, so check and write are one atomic,
durable SQLite transaction, exact against every other connection to the file too. Only a refused
write pays a second, explicit transaction, to report the size it would have reached.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wactor._sqlitedb import open_database
from wactor.errors import QuotaExceededError, StorageIOError
from wactor.storage._base import StorageUsage, encode_key, encode_prefix

__all__ = ["SqliteStorage"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS kv_entries (
        component TEXT NOT NULL,
        key BLOB NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (component, key)
    )""",
    """CREATE TABLE IF NOT EXISTS kv_usage (
        component TEXT PRIMARY KEY,
        used_bytes INTEGER NOT NULL,
        key_count INTEGER NOT NULL
    )""",
    # The triggers add deltas, so a database whose totals an earlier version kept (writing them
    # as absolute values after the entry) stays exact under both.
    """CREATE TRIGGER IF NOT EXISTS kv_usage_on_insert AFTER INSERT ON kv_entries BEGIN
        INSERT INTO kv_usage (component, used_bytes, key_count)
        VALUES (NEW.component, length(NEW.key) + length(NEW.value), 1)
        ON CONFLICT (component) DO UPDATE SET
            used_bytes = used_bytes + excluded.used_bytes, key_count = key_count + 1;
    END""",
    """CREATE TRIGGER IF NOT EXISTS kv_usage_on_update AFTER UPDATE ON kv_entries BEGIN
        UPDATE kv_usage SET used_bytes = used_bytes
            + length(NEW.key) + length(NEW.value) - length(OLD.key) - length(OLD.value)
        WHERE component = NEW.component;
    END""",
    """CREATE TRIGGER IF NOT EXISTS kv_usage_on_delete AFTER DELETE ON kv_entries BEGIN
        UPDATE kv_usage SET used_bytes = used_bytes - length(OLD.key) - length(OLD.value),
            key_count = key_count - 1
        WHERE component = OLD.component;
    END""",
    # set() inserts (component, key, value, quota) into this view. One statement that checks and
    # writes measured cheaper than an explicit transaction of several, and than INSERT ... SELECT
    # (which copies its source row into a scratch table, since it reads the table it writes).
    """CREATE VIEW IF NOT EXISTS kv_write AS
        SELECT component, key, value, 0 AS quota FROM kv_entries WHERE 0""",
    """CREATE TRIGGER IF NOT EXISTS kv_write_checked INSTEAD OF INSERT ON kv_write BEGIN
        SELECT RAISE(ABORT, 'storage quota exceeded')
        WHERE coalesce((SELECT used_bytes FROM kv_usage WHERE component = NEW.component), 0)
            - coalesce((SELECT length(key) + length(value) FROM kv_entries
                        WHERE component = NEW.component AND key = NEW.key), 0)
            + length(NEW.key) + length(NEW.value) > NEW.quota;
        INSERT INTO kv_entries (component, key, value) VALUES (NEW.component, NEW.key, NEW.value)
        ON CONFLICT (component, key) DO UPDATE SET value = excluded.value;
    END""",
)

# The usage after writing ?3 under ?2 for component ?1: today's total, less the old entry.
_USAGE_AFTER = (
    "coalesce((SELECT used_bytes FROM kv_usage WHERE component = ?1), 0)"
    " - coalesce((SELECT length(key) + length(value) FROM kv_entries"
    " WHERE component = ?1 AND key = ?2), 0)"
    " + length(?2) + length(?3)"
)
_SET = "INSERT INTO kv_write (component, key, value, quota) VALUES (?, ?, ?, ?)"
_REFUSED = sqlite3.SQLITE_CONSTRAINT_TRIGGER  # what the RAISE in kv_write_checked gives
_GET = "SELECT value FROM kv_entries WHERE component = ? AND key = ?"


def _successor(prefix: bytes) -> bytes | None:
    """Return the smallest byte string greater than every string starting with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None  # every key from ``prefix`` upwards matches
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


class SqliteStorage:
    """Key-value storage in the SQLite file at ``path`` (created with its parent directories).

    One connection guarded by a lock serves every thread: measured against one connection per
    thread (WAL, 2-8 threads, get/set/mixed) it was as fast or faster from two threads up, since
    the GIL serialises the Python side anyway and contended writers skip SQLite's busy-wait sleeps.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = open_database(self._path, _SCHEMA, what="storage")

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    # --- connections -------------------------------------------------------------------------

    @contextmanager
    def _connection(self, component: str) -> Iterator[sqlite3.Connection]:
        """Yield the connection under the lock; turn ``sqlite3.Error`` into ``StorageIOError``."""
        with self._lock:
            if self._conn is None:
                raise self._closed(component)
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StorageIOError(f"{self._path}: {exc}", component=component) from exc

    @contextmanager
    def _transaction(self, component: str) -> Iterator[sqlite3.Connection]:
        """Yield the connection inside ``BEGIN IMMEDIATE``; commit on success, else roll back."""
        with self._connection(component) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise

    def _closed(self, component: str) -> StorageIOError:
        return StorageIOError(f"{self._path}: storage is closed", component=component)

    @staticmethod
    def _totals(conn: sqlite3.Connection, component: str) -> tuple[int, int]:
        row = conn.execute(
            "SELECT used_bytes, key_count FROM kv_usage WHERE component = ?", (component,)
        ).fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    # --- the backend -------------------------------------------------------------------------
    # get and set are the guests' hot path: the lock and the error mapping are written out
    # rather than entered through _connection.

    def get(self, component: str, key: str) -> bytes | None:
        """Return the value of ``key``, or ``None`` when it is not set."""
        # The key goes in as a bytearray: it binds as the same BLOB, without the adapter lookup
        # (a caught AttributeError) the sqlite3 module makes for every bytes parameter.
        params = (component, bytearray(encode_key(component, key)))
        with self._lock:
            conn = self._conn
            if conn is None:
                raise self._closed(component)
            try:
                row = conn.execute(_GET, params).fetchone()
            except sqlite3.Error as exc:
                raise StorageIOError(f"{self._path}: {exc}", component=component) from exc
        return None if row is None else bytes(row[0])

    def set(self, component: str, key: str, value: bytes, *, quota: int) -> None:
        """Store ``value`` under ``key``; past the quota, raise and change nothing."""
        params = (component, bytearray(encode_key(component, key)), bytes(value), quota)
        with self._lock:
            conn = self._conn
            if conn is None:
                raise self._closed(component)
            try:
                conn.execute(_SET, params)
            except sqlite3.IntegrityError as exc:
                if exc.sqlite_errorcode != _REFUSED:
                    raise StorageIOError(f"{self._path}: {exc}", component=component) from exc
            except sqlite3.Error as exc:
                raise StorageIOError(f"{self._path}: {exc}", component=component) from exc
            else:
                return
        self._set_or_refuse(params)

    def _set_or_refuse(self, params: tuple[str, bytearray, bytes, int]) -> None:
        """The write was refused: in one transaction, find the size it would reach and raise,
        or write after all if another connection has freed the space since."""
        component, key, value, quota = params
        with self._transaction(component) as conn:
            needed = int(
                conn.execute(f"SELECT {_USAGE_AFTER}", (component, key, value)).fetchone()[0]
            )
            if needed <= quota:
                conn.execute(_SET, params)
                return
        raise QuotaExceededError(component, quota, needed)

    def delete(self, component: str, key: str) -> bool:
        """Remove ``key``; tell whether it was there."""
        key_bytes = encode_key(component, key)
        with self._connection(component) as conn:
            cursor = conn.execute(
                "DELETE FROM kv_entries WHERE component = ? AND key = ?", (component, key_bytes)
            )
            return cursor.rowcount > 0

    def exists(self, component: str, key: str) -> bool:
        """Tell whether ``key`` is set."""
        key_bytes = encode_key(component, key)
        with self._connection(component) as conn:
            row = conn.execute(
                "SELECT 1 FROM kv_entries WHERE component = ? AND key = ?", (component, key_bytes)
            ).fetchone()
        return row is not None

    def list_keys(self, component: str, prefix: str | None = None) -> list[str]:
        """Return the component's keys starting with ``prefix``, sorted by code point."""
        low = encode_prefix(component, prefix)
        high = _successor(low)
        # BLOBs compare with memcmp, which on UTF-8 is code point order: the same order as sorted().
        if high is None:
            sql = "SELECT key FROM kv_entries WHERE component = ? AND key >= ? ORDER BY key"
            params: tuple[object, ...] = (component, low)
        else:
            sql = (
                "SELECT key FROM kv_entries WHERE component = ? AND key >= ? AND key < ? "
                "ORDER BY key"
            )
            params = (component, low, high)
        with self._connection(component) as conn:
            rows = conn.execute(sql, params).fetchall()
        return [bytes(row[0]).decode("utf-8") for row in rows]

    def usage(self, component: str, *, quota: int) -> StorageUsage:
        """Return the component's used bytes and key count, with ``quota`` echoed back."""
        with self._connection(component) as conn:
            used, count = self._totals(conn, component)
        return StorageUsage(used, quota, count)

    def close(self) -> None:
        """Close the database; idempotent. Later calls raise ``StorageIOError``."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as exc:
                raise StorageIOError(f"{self._path}: cannot close: {exc}") from exc
