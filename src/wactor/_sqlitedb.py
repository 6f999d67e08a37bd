"""Opening a SQLite database the way every durable store of wactor wants it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from wactor.errors import StorageIOError

__all__ = ["BUSY_TIMEOUT_S", "open_database"]

BUSY_TIMEOUT_S = 30.0  # another process (the CLI, a second host) may hold the write lock


def open_database(path: Path, schema: Sequence[str], *, what: str) -> sqlite3.Connection:
    """Open (creating it and its directory) a database in WAL mode with durable commits.

    The connection is shared across threads under the owner's lock and runs in autocommit mode
    (owners issue ``BEGIN IMMEDIATE``/``COMMIT`` themselves). Failures raise ``StorageIOError``
    naming the file and ``what`` it holds.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.Error) as exc:
        raise StorageIOError(f"{path}: cannot open {what}: {exc}") from exc
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a write that returned survives power loss
        for statement in schema:
            conn.execute(statement)
    except sqlite3.Error as exc:
        conn.close()
        raise StorageIOError(f"{path}: cannot open {what}: {exc}") from exc
    return conn
