"""The dead-letter log: messages that could not be delivered or whose handling failed."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

__all__ = ["DeadLetter", "DeadLetterLog"]


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
    """A bounded in-memory log of dead letters; the count of everything ever logged is kept."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._entries: collections.deque[DeadLetter] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.total = 0

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
        return entry

    def entries(self, component: str | None = None) -> list[DeadLetter]:
        """Return the retained entries, oldest first, optionally for one component."""
        with self._lock:
            items = list(self._entries)
        return [e for e in items if component is None or e.component == component]
