"""Opening a SQLite database the way every durable store of wactor wants it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from wactor.errors import CorruptStateError, StorageIOError

__all__ = ["BUSY_TIMEOUT_S", "database_error", "open_database"]

BUSY_TIMEOUT_S = 30.0  # another process (the CLI, a second host) may hold the write lock

# SQLITE_CORRUPT, SQLITE_NOTADB: the file is there but holds no database this host can read
_NOT_A_DATABASE = {11, 26}


def database_error(path: Path, what: str, exc: OSError | sqlite3.Error) -> StorageIOError:
    """The error for a failure to open or read ``path``: a state file that is not a database
    (corrupt, truncated, another file in its place) is the operator's to fix (exit 2); anything
    else is an I/O failure."""
    if isinstance(exc, sqlite3.Error) and exc.sqlite_errorcode in _NOT_A_DATABASE:
        return CorruptStateError(
            f"not a database ({exc}): restore or remove this {what} file", file=str(path)
        )
    return StorageIOError(f"{path}: cannot open {what}: {exc}")


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
        raise database_error(path, what, exc) from exc
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a write that returned survives power loss
        for statement in schema:
            conn.execute(statement)
    except sqlite3.Error as exc:
        conn.close()
        raise database_error(path, what, exc) from exc
    return conn
