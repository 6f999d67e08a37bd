"""Correlation of guest requests with their replies: timeouts, cancellation, late replies."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from wactor._ids import ComponentId

__all__ = ["CorrelationStats", "Correlator", "PendingRequest"]


@dataclass(slots=True)
class PendingRequest:
    """A request whose reply has not come back yet."""

    correlation_id: str
    requester: ComponentId
    target: ComponentId
    timeout_ms: int
    timer: asyncio.TimerHandle | None = field(default=None)


@dataclass(frozen=True, slots=True)
class CorrelationStats:
    """Counts kept by a correlator."""

    pending: int
    completed: int
    timed_out: int
    cancelled: int
    dropped_late: int


class Correlator:
    """Tracks pending requests on the event loop; each one ends exactly once."""

    def __init__(self, on_timeout: Callable[[PendingRequest], None]) -> None:
        self._pending: dict[str, PendingRequest] = {}
        self._on_timeout = on_timeout
        self._completed = 0
        self._timed_out = 0
        self._cancelled = 0
        self._dropped_late = 0

    @staticmethod
    def new_id() -> str:
        """A fresh correlation id."""
        return os.urandom(16).hex()  # 128 random bits, as a uuid4's hex but cheaper

    def open(self, pending: PendingRequest) -> None:
        """Start tracking a request and arm its timeout (call on the event loop)."""
        loop = asyncio.get_running_loop()
        pending.timer = loop.call_later(
            pending.timeout_ms / 1000, self._expire, pending.correlation_id
        )
        self._pending[pending.correlation_id] = pending

    def _expire(self, correlation_id: str) -> None:
        pending = self._pending.pop(correlation_id, None)
        if pending is None:
            return
        self._timed_out += 1
        self._on_timeout(pending)

    def complete(self, correlation_id: str) -> PendingRequest | None:
        """Close a request because its reply came; ``None`` means the reply is late or stray."""
        pending = self._pending.pop(correlation_id, None)
        if pending is None:
            self._dropped_late += 1
            return None
        if pending.timer is not None:
            pending.timer.cancel()
        self._completed += 1
        return pending

    def claim(
        self, correlation_id: str, requester: ComponentId, target: ComponentId
    ) -> PendingRequest | None:
        """Close a request of ``requester`` to ``target`` because its answer came another way
        (a callback over the lattice); ``None`` (and nothing changes) if no such request waits.
        """
        pending = self._pending.get(correlation_id)
        if pending is None or pending.requester != requester or pending.target != target:
            return None
        return self.complete(correlation_id)

    def cancel(self, correlation_id: str, requester: ComponentId) -> bool:
        """Cancel a pending request of ``requester``; tell whether there was one."""
        pending = self._pending.get(correlation_id)
        if pending is None or pending.requester != requester:
            return False
        del self._pending[correlation_id]
        if pending.timer is not None:
            pending.timer.cancel()
        self._cancelled += 1
        return True

    def is_pending(self, correlation_id: str) -> bool:
        """Tell whether the request is still waiting for its reply."""
        return correlation_id in self._pending

    def drop_requester(self, requester: ComponentId) -> None:
        """Forget the pending requests of a component that went away (their replies drop)."""
        for cid, pending in list(self._pending.items()):
            if pending.requester == requester:
                if pending.timer is not None:
                    pending.timer.cancel()
                del self._pending[cid]

    def statistics(self) -> CorrelationStats:
        """Return the counts of pending, completed, timed-out, cancelled and late replies."""
        return CorrelationStats(
            len(self._pending),
            self._completed,
            self._timed_out,
            self._cancelled,
            self._dropped_late,
        )
