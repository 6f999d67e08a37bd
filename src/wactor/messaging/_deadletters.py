"""The dead-letter log: messages that could not be delivered or whose handling failed.

Entries are kept in memory (bounded) and, when the log has a file, appended durably to SQLite so
that ``wactor dead-letters`` can show them from another process. Dead letters are rare by nature
(a fault, a full mailbox, a late reply), so each is written at once.
"""

from __future__ import annotations

import collections
import contextlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from wactor._sqlitedb import database_error, open_database

__all__ = ["DeadLetter", "DeadLetterLog"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns INTEGER NOT NULL,
    component TEXT NOT NULL,
    reason TEXT NOT NULL,
    sender TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    correlation_id TEXT
)""",
    "CREATE INDEX IF NOT EXISTS dead_letters_component ON dead_letters (component, id)",
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message that was dropped, with why."""

    component: str
    reason: str
    sender: str
    kind: str
    size: int
    correlation_id: str | None
    time_ns: int


class DeadLetterLog:
    """A bounded in-memory log of dead letters, optionally persisted to a SQLite file."""

    filename: Final = "dead-letters.sqlite3"  # a host's, in its state directory

    def __init__(self, path: Path | None = None, capacity: int = 10_000) -> None:
        self._entries: collections.deque[DeadLetter] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.total = 0
        self.write_errors = 0
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = open_database(path, _SCHEMA, what="dead-letter log")

    def record(
        self,
        component: str,
        reason: str,
        *,
        sender: str,
        kind: str,
        size: int,
        correlation_id: str | None = None,
    ) -> DeadLetter:
        """Append an entry and return it."""
        entry = DeadLetter(component, reason, sender, kind, size, correlation_id, time.time_ns())
        with self._lock:
            self._entries.append(entry)
            self.total += 1
            if self._db is not None:
                try:
                    self._db.execute(
                        "INSERT INTO dead_letters (time_ns, component, reason, sender, kind, "
                        "size, correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (entry.time_ns, component, reason, sender, kind, size, correlation_id),
                    )
                except sqlite3.Error:
                    self.write_errors += 1  # counted and visible; the in-memory entry stands
        return entry

    def entries(self, component: str | None = None) -> list[DeadLetter]:
        """Return the retained in-memory entries, oldest first, optionally for one component."""
        with self._lock:
            items = list(self._entries)
        return [e for e in items if component is None or e.component == component]

    def close(self) -> None:
        """Close the file; idempotent."""
        with self._lock:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None


def read_dead_letters(
    path: Path, component: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    """Read the newest ``limit`` persisted dead letters (oldest first) from a state file."""
    sql = "SELECT component, reason, sender, kind, size, correlation_id, time_ns FROM dead_letters"
    args: tuple[object, ...] = ()
    if component is not None:
        sql += " WHERE component = ?"
        args = (component,)
    try:
        # a URI from the path itself: '?' or '#' in a directory name stays part of the name
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise database_error(path, "dead-letter log", exc) from exc
    return [DeadLetter(*row) for row in reversed(rows)]
