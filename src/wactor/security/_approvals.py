"""The approval queue: unknown components wait here until an operator approves or denies them.

A request is keyed by ``(component, wasm digest, manifest digest)``: asking again for the same
triple returns the existing record, while a changed binary or manifest is a new request that needs
its own decision. Decisions are durable (SQLite, WAL, ``synchronous=FULL``) and survive restarts;
one connection behind a lock serves every thread, and other processes (the ``wactor approvals``
CLI next to a running host) share the file through SQLite's own locking.

Capabilities are stored in the dict form of ``wactor.security._policy``; ``granted`` is the full
narrowed set, so ``narrow_capabilities(manifest.capabilities, approval.granted)`` reproduces it.
Beside them, under ``"limits"``, the resource limits the component asked for (after the host's
defaults filled in what its manifest left out) in the form of ``wactor.security._limits``; an
approval may lower them (``{"limits": {"message-rate": 10}}``).
"""

from __future__ import annotations

import builtins
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args

from wactor._ids import ComponentId
from wactor._sqlitedb import open_database
from wactor.errors import ConfigError, StorageIOError
from wactor.security._audit import AuditLog
from wactor.security._capabilities import (
    capabilities_from_dict,
    capabilities_to_dict,
    narrow_capabilities,
)
from wactor.security._limits import check_narrowing

__all__ = ["Approval", "ApprovalStatus", "ApprovalStore"]

ApprovalStatus = Literal["pending", "approved", "denied"]
_STATUSES: Final[tuple[str, ...]] = get_args(ApprovalStatus)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS approvals (
        id TEXT PRIMARY KEY,
        component TEXT NOT NULL,
        wasm_digest TEXT NOT NULL,
        manifest_digest TEXT NOT NULL,
        status TEXT NOT NULL,
        requested TEXT NOT NULL,
        granted TEXT,
        created REAL NOT NULL,
        decided REAL,
        reason TEXT NOT NULL DEFAULT '',
        UNIQUE (component, wasm_digest, manifest_digest)
    )""",
    "CREATE INDEX IF NOT EXISTS approvals_component ON approvals (component, created)",
)
_COLUMNS = (
    "id, component, wasm_digest, manifest_digest, status, requested, granted, created, "
    "decided, reason"
)


@dataclass(frozen=True, slots=True)
class Approval:
    """One approval request and its decision."""

    id: str  # 8 hex digits, what ``wactor approvals list`` shows
    component: str
    wasm_digest: str  # sha256 hex of the wasm bytes
    manifest_digest: str  # sha256 hex of the manifest file bytes
    status: ApprovalStatus
    requested: dict[str, Any]  # capabilities the manifest declares (dict form)
    granted: dict[str, Any] | None  # what was approved (narrowed); None unless approved
    created: float  # Unix seconds
    decided: float | None
    reason: str = ""  # why it was denied, or how it was narrowed


def _approval(row: tuple[Any, ...]) -> Approval:
    return Approval(
        id=str(row[0]),
        component=str(row[1]),
        wasm_digest=str(row[2]),
        manifest_digest=str(row[3]),
        status=row[4],
        requested=json.loads(row[5]),
        granted=None if row[6] is None else json.loads(row[6]),
        created=float(row[7]),
        decided=None if row[8] is None else float(row[8]),
        reason=str(row[9]),
    )


class ApprovalStore:
    """Approval requests and decisions in the SQLite file at ``path``.

    ``audit``, when given, receives an ``approved`` or ``denied`` entry for every decision.
    """

    filename: Final = "approvals.sqlite3"

    def __init__(self, path: str | Path, *, audit: AuditLog | None = None) -> None:
        self._path = Path(path)
        self._audit = audit
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = open_database(self._path, _SCHEMA, what="approvals")

    @classmethod
    def for_state_dir(cls, state_dir: Path, *, audit: AuditLog | None = None) -> ApprovalStore:
        """Open the approval store of the host whose state lives in ``state_dir``."""
        return cls(Path(state_dir) / cls.filename, audit=audit)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def close(self) -> None:
        """Close the file; idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ApprovalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise StorageIOError(f"{self._path}: approval store is closed")
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.rollback()
                    raise
            except sqlite3.Error as exc:
                raise StorageIOError(f"{self._path}: {exc}") from exc

    # --- requests -----------------------------------------------------------------------------

    def request(
        self,
        component_id: str,
        wasm_digest: str,
        manifest_digest: str,
        requested: Mapping[str, Any],
    ) -> Approval:
        """Return the request for this exact binary and manifest, creating a pending one."""
        # Validate, and store the full normal form: "granted == requested" then means unnarrowed.
        normal = capabilities_to_dict(capabilities_from_dict(requested))
        if requested.get("limits") is not None:
            normal["limits"] = check_narrowing(None, requested["limits"])
        requested_json = json.dumps(normal, sort_keys=True)
        component = str(component_id)
        with self._transaction() as conn:
            existing = self._find(conn, component, wasm_digest, manifest_digest)
            if existing is not None:
                return existing
            while True:
                request_id = secrets.token_hex(4)
                taken = conn.execute("SELECT 1 FROM approvals WHERE id = ?", (request_id,))
                if taken.fetchone() is None:
                    break
            conn.execute(
                f"INSERT INTO approvals ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request_id,
                    component,
                    wasm_digest,
                    manifest_digest,
                    "pending",
                    requested_json,
                    None,
                    time.time(),
                    None,
                    "",
                ),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM approvals WHERE id = ?", (request_id,)
            ).fetchone()
        return _approval(row)

    @staticmethod
    def _find(
        conn: sqlite3.Connection, component: str, wasm_digest: str, manifest_digest: str
    ) -> Approval | None:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM approvals "
            "WHERE component = ? AND wasm_digest = ? AND manifest_digest = ?",
            (component, wasm_digest, manifest_digest),
        ).fetchone()
        return None if row is None else _approval(row)

    def decision(
        self, component_id: str, wasm_digest: str, manifest_digest: str
    ) -> Approval | None:
        """Return the record for this exact binary and manifest (any status), or ``None``."""
        with self._transaction() as conn:
            return self._find(conn, str(component_id), wasm_digest, manifest_digest)

    def list(self, status: ApprovalStatus | None = None) -> builtins.list[Approval]:
        """Return every request, oldest first, optionally only those with ``status``."""
        if status is not None and status not in _STATUSES:
            raise ConfigError(f"unknown status {status!r}", expected=", ".join(_STATUSES))
        with self._transaction() as conn:
            if status is None:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM approvals ORDER BY created, rowid"
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM approvals WHERE status = ? ORDER BY created, rowid",
                    (status,),
                ).fetchall()
        return [_approval(row) for row in rows]

    # --- decisions ----------------------------------------------------------------------------

    def _resolve(self, conn: sqlite3.Connection, ref: str) -> Approval:
        """Find a request by id, else the component's latest pending (else latest) request."""
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM approvals WHERE id = ?", (ref.lower(),)
        ).fetchone()
        if row is not None:
            return _approval(row)
        try:
            component = str(ComponentId.parse(ref))
        except ValueError:
            raise ConfigError(
                f"no approval request {ref!r}",
                key="ID",
                expected="a request id from 'wactor approvals list' or a component id",
            ) from None
        for condition in ("AND status = 'pending'", ""):
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM approvals WHERE component = ? {condition} "
                "ORDER BY created DESC, rowid DESC LIMIT 1",
                (component,),
            ).fetchone()
            if row is not None:
                return _approval(row)
        raise ConfigError(f"no approval request for component {component}", key="ID")

    def approve(self, ref: str, *, narrow: Mapping[str, Any] | None = None) -> Approval:
        """Approve request ``ref`` (request id, or component id: its latest pending request).

        ``narrow`` may only remove capabilities (``ConfigError`` otherwise). A decided request
        can be decided again: approving a denied one, or re-approving with other narrowing.
        """
        with self._transaction() as conn:
            current = self._resolve(conn, ref)
            requested = capabilities_from_dict(current.requested)
            granted_caps = requested if narrow is None else narrow_capabilities(requested, narrow)
            granted = capabilities_to_dict(granted_caps)
            limits = current.requested.get("limits")
            if narrow is not None and "limits" in narrow:
                limits = check_narrowing(limits, narrow["limits"])
            if limits is not None:
                granted["limits"] = limits
            reason = "" if narrow is None else f"narrowed: {json.dumps(narrow, sort_keys=True)}"
            conn.execute(
                "UPDATE approvals SET status = 'approved', granted = ?, decided = ?, reason = ? "
                "WHERE id = ?",
                (json.dumps(granted, sort_keys=True), time.time(), reason, current.id),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM approvals WHERE id = ?", (current.id,)
            ).fetchone()
        approval = _approval(row)
        if self._audit is not None:
            self._audit.record(
                "approved",
                approval.component,
                allowed=True,
                action="approve",
                target=approval.id,
                reason=reason or "as requested",
            )
        return approval

    def deny(self, ref: str, reason: str = "") -> Approval:
        """Deny request ``ref`` (request id, or component id: its latest pending request).

        Denying an approved request revokes it: the host refuses the component from its next start.
        """
        with self._transaction() as conn:
            current = self._resolve(conn, ref)
            conn.execute(
                "UPDATE approvals SET status = 'denied', granted = NULL, decided = ?, reason = ? "
                "WHERE id = ?",
                (time.time(), reason, current.id),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM approvals WHERE id = ?", (current.id,)
            ).fetchone()
        approval = _approval(row)
        if self._audit is not None:
            self._audit.record(
                "denied",
                approval.component,
                allowed=False,
                action="deny",
                target=approval.id,
                reason=reason,
            )
        return approval
