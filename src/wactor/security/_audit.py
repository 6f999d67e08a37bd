"""The audit log: every grant, denial, approval decision and lifecycle event, durably in SQLite.

``record`` only queues the entry (a few microseconds, any thread); one background writer thread
drains the queue and writes each batch in one transaction (WAL, ``synchronous=FULL``). The queue
is bounded: when it is full, entries are shed and counted, and as soon as the writer frees room it
writes one ``audit-shed`` entry saying how many were lost, so a gap is never silent. Entries a
guest can cause at will (grants, denials, quota breaches) also have a budget per component per
second: past it they are shed and one ``audit-shed`` entry for that component says how many.
``flush`` waits until everything queued before it is durable; ``close`` flushes and stops
(idempotent).

Schema: ``audit(id INTEGER PRIMARY KEY, time REAL, event TEXT, component TEXT NULL,
allowed INTEGER, action TEXT, target TEXT, reason TEXT)``; ``time`` is Unix seconds.
"""

from __future__ import annotations

import atexit
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

from wactor._sqlitedb import open_database
from wactor.errors import StorageIOError

__all__ = ["AUDIT_EVENTS", "AuditEntry", "AuditEvent", "AuditLog"]

AuditEvent = Literal[
    "grant",
    "denial",
    "approval-requested",
    "approved",
    "denied",
    "quota-breach",
    "start",
    "stop",
    "restart",
    "reload",
    "signature-ok",
    "signature-bad",
    "audit-shed",
]
AUDIT_EVENTS: Final[tuple[str, ...]] = get_args(AuditEvent)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        event TEXT NOT NULL,
        component TEXT,
        allowed INTEGER NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        reason TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS audit_component ON audit (component, id)",
    "CREATE INDEX IF NOT EXISTS audit_time ON audit (time)",
)
_INSERT = (
    "INSERT INTO audit (time, event, component, allowed, action, target, reason) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)

_DEFAULT_QUEUE_LIMIT = 100_000
_BATCH_LIMIT = 2048  # entries per transaction: one fsync amortised, a bounded commit latency
_RETRY_DELAY_S = 0.5  # after a failed batch (disk full, locked …) the writer keeps it and retries

_Row = tuple[float, str, str | None, int, str, str, str]

# What a guest can make the host record as often as it likes; each component gets a budget per
# second of these (lifecycle and operator decisions are never shed).
_METERED: Final = frozenset({"grant", "denial", "quota-breach"})


class _ComponentMeter:
    """Admit at most ``rate`` metered entries per component per one-second window; count the rest.

    A window with shed entries yields one ``audit-shed`` row for that component once it ends (or
    at a flush), so the log says how many were lost and when.
    """

    def __init__(self, rate: int) -> None:
        self._rate = rate
        self._lock = threading.Lock()
        self._windows: dict[str, list[float]] = {}  # component -> [start, admitted, shed]
        self.pending = False  # some window has shed entries not yet summarised

    def admit(self, component: str, now: float) -> tuple[bool, _Row | None]:
        """Tell whether to keep this entry, and the summary row of the window just ended."""
        with self._lock:
            window = self._windows.get(component)
            summary = None
            if window is None or now - window[0] >= 1.0:
                if window is not None and window[2]:
                    summary = self._summary(component, int(window[2]))
                self._windows[component] = [now, 1, 0]
                return True, summary
            if window[1] < self._rate:
                window[1] += 1
                return True, None
            window[2] += 1
            self.pending = True
            return False, None

    def drain(self, now: float, *, force: bool) -> list[_Row]:
        """Return the summaries of ended windows (of every window with ``force``)."""
        rows = []
        with self._lock:
            for component, window in list(self._windows.items()):
                ended = now - window[0] >= 1.0
                if window[2] and (ended or force):
                    rows.append(self._summary(component, int(window[2])))
                    window[2] = 0
                if ended:
                    del self._windows[component]
            self.pending = any(w[2] for w in self._windows.values())
        return rows

    def _summary(self, component: str, shed: int) -> _Row:
        reason = f"{shed} audit entries shed: more than {self._rate} per second from this component"
        return (time.time(), "audit-shed", component, 0, "audit", "", reason)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    time: float  # Unix seconds
    event: str
    component: str | None
    allowed: bool
    action: str
    target: str
    reason: str


class _Marker:
    """A flush or stop request travelling through the queue behind the entries before it."""

    __slots__ = ("error", "event", "stop")

    def __init__(self, *, stop: bool = False) -> None:
        self.event = threading.Event()
        self.error: StorageIOError | None = None
        self.stop = stop


class AuditLog:
    """An append-only audit log in the SQLite file at ``path`` (created with its directories)."""

    filename: Final = "audit.sqlite3"

    def __init__(
        self,
        path: str | Path,
        *,
        queue_limit: int = _DEFAULT_QUEUE_LIMIT,
        component_rate: int | None = None,
    ) -> None:
        self._path = Path(path)
        # None: no per-component budget (tools that only read or record operator decisions)
        self._meter = _ComponentMeter(component_rate) if component_rate else None
        self._lock = threading.Lock()  # guards the connection
        self._state_lock = threading.Lock()  # orders record() against close()
        self._shed_lock = threading.Lock()
        self._shed = 0
        self._closed = False
        # Entries and markers. A deque append under an uncontended lock costs far less than
        # queue.Queue's put (a condition notify each time); the writer is woken only when idle.
        # Markers do not count against the limit and are never shed.
        self._buffer: deque[_Row | _Marker] = deque()
        self._limit = max(1, queue_limit)
        self._wake = threading.Event()
        self._idle = False
        self._conn = open_database(self._path, _SCHEMA, what="audit log")
        self._writer = threading.Thread(
            target=self._run, name=f"wactor-audit:{self._path.name}", daemon=True
        )
        self._writer.start()
        # A daemon writer would die with queued entries at interpreter exit; close() drains it.
        atexit.register(self.close)

    @classmethod
    def for_state_dir(cls, state_dir: Path, **kwargs: int) -> AuditLog:
        """Open the audit log of the host whose state lives in ``state_dir``."""
        return cls(Path(state_dir) / cls.filename, **kwargs)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def shed_count(self) -> int:
        """Entries shed since the last ``audit-shed`` entry was written."""
        return self._shed

    # --- writing ------------------------------------------------------------------------------

    def record(
        self,
        event: str,
        component: str | None,
        *,
        allowed: bool,
        action: str = "",
        target: str = "",
        reason: str = "",
    ) -> None:
        """Queue one entry; never blocks. Raise ``StorageIOError`` once the log is closed."""
        row: _Row = (time.time(), event, component, int(allowed), action, target, reason)
        summary = None
        if self._meter is not None and component is not None and event in _METERED:
            keep, summary = self._meter.admit(component, time.monotonic())
            if not keep:
                if self._closed:
                    raise StorageIOError(f"{self._path}: audit log is closed ({event} lost)")
                return
        with self._state_lock:
            if self._closed:
                raise StorageIOError(f"{self._path}: audit log is closed ({event} not recorded)")
            if summary is not None:
                self._buffer.append(summary)  # never shed: it is what tells of a gap
            if len(self._buffer) < self._limit:
                self._buffer.append(row)
                if self._idle:
                    self._wake.set()
                return
        with self._shed_lock:
            self._shed += 1

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every entry queued before this call is durable.

        Raises ``StorageIOError`` if the writer cannot write (the entries stay queued and are
        retried), or if ``timeout`` seconds pass first.
        """
        marker = _Marker()
        with self._state_lock:
            if self._closed:
                return  # close() already flushed
            self._buffer.extend(self._summaries(force=True))
            self._buffer.append(marker)
            self._wake.set()
        if not marker.event.wait(timeout):
            raise StorageIOError(f"{self._path}: audit log flush timed out after {timeout}s")
        if marker.error is not None:
            raise marker.error

    def close(self) -> None:
        """Flush, stop the writer and close the file; idempotent."""
        marker = _Marker(stop=True)
        with self._state_lock:
            if self._closed:
                return
            self._closed = True  # from here on nothing can enter the buffer behind the marker
            self._buffer.extend(self._summaries(force=True))
            self._buffer.append(marker)
            self._wake.set()
        atexit.unregister(self.close)
        self._writer.join()
        with self._lock:
            self._conn.close()
        if marker.error is not None:
            raise marker.error

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _summaries(self, *, force: bool) -> list[_Row]:
        meter = self._meter
        if meter is None or not meter.pending:
            return []
        return meter.drain(time.monotonic(), force=force)

    def _run(self) -> None:
        pending: list[_Row] = []
        markers: list[_Marker] = []
        buffer = self._buffer
        while True:
            if not pending and not markers and not self._shed:
                self._idle = True
                if not buffer:  # checked after _idle is set: a record() in between wakes us
                    # a window with shed entries is summarised once it ends, even if the
                    # component records nothing more
                    meter_pending = self._meter is not None and self._meter.pending
                    self._wake.wait(1.0 if meter_pending else None)
                self._wake.clear()
                self._idle = False
                late = self._summaries(force=False)
                if late:
                    with self._state_lock:
                        if not self._closed:
                            buffer.extend(late)
            while buffer and len(pending) < _BATCH_LIMIT and not any(m.stop for m in markers):
                item = buffer.popleft()
                if isinstance(item, _Marker):
                    markers.append(item)
                else:
                    pending.append(item)
            with self._shed_lock:
                shed, self._shed = self._shed, 0
            rows = list(pending)
            if shed:
                rows.append(
                    (
                        time.time(),
                        "audit-shed",
                        None,
                        0,
                        "",
                        "",
                        f"{shed} audit entries were lost: the audit queue was full",
                    )
                )
            error = self._write(rows)
            if error is None:
                pending.clear()
                for marker in markers:
                    marker.event.set()
                if any(m.stop for m in markers):
                    return
                markers.clear()
                continue
            # Keep the batch and the shed count; tell the waiting flushes, then retry.
            with self._shed_lock:
                self._shed += shed
            for marker in markers:
                if marker.stop:
                    continue
                marker.error = error
                marker.event.set()
            markers = [m for m in markers if m.stop]
            if markers:
                # Closing while the disk refuses writes: report it from close() rather than hang.
                for marker in markers:
                    marker.error = StorageIOError(
                        f"{error}; {len(pending)} entries and {shed} shed could not be written"
                    )
                    marker.event.set()
                return
            time.sleep(_RETRY_DELAY_S)

    def _write(self, rows: list[_Row]) -> StorageIOError | None:
        if not rows:
            return None
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(_INSERT, rows)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.rollback()
                return StorageIOError(f"{self._path}: cannot write audit entries: {exc}")
        return None

    # --- reading ------------------------------------------------------------------------------

    def query(
        self,
        component: str | None = None,
        denied_only: bool = False,
        since: float | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """Return the latest ``limit`` matching entries, oldest first (flushes first)."""
        self.flush()
        clauses: list[str] = []
        params: list[object] = []
        if component is not None:
            clauses.append("component = ?")
            params.append(component)
        if denied_only:
            clauses.append("allowed = 0")
        if since is not None:
            clauses.append("time >= ?")
            params.append(since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = (
            "SELECT id, time, event, component, allowed, action, target, reason FROM audit "
            f"{where} ORDER BY id DESC LIMIT ?"
        )
        params.append(max(0, limit))
        with self._lock:
            try:
                rows = self._conn.execute(sql, params).fetchall()
            except sqlite3.ProgrammingError as exc:  # the connection is closed
                raise StorageIOError(f"{self._path}: audit log is closed") from exc
            except sqlite3.Error as exc:
                raise StorageIOError(f"{self._path}: {exc}") from exc
        return [
            AuditEntry(
                id=int(r[0]),
                time=float(r[1]),
                event=str(r[2]),
                component=r[3],
                allowed=bool(r[4]),
                action=str(r[5]),
                target=str(r[6]),
                reason=str(r[7]),
            )
            for r in reversed(rows)
        ]
