"""The host's lifecycle events: kept, audited, logged, and told to whoever watches."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable

from wactor._ids import ComponentId
from wactor.actors import SupervisorEvent
from wactor.errors import WactorError
from wactor.security import AuditLog

__all__ = ["LifecycleEvents"]

_log = logging.getLogger("wactor.host")
_AUDITED_EVENTS = {
    "started": "start",
    "restarted": "restart",
    "removed": "stop",
    "gave_up": "restart",
}


class LifecycleEvents:
    """The last lifecycle events of the supervision tree, and their listeners."""

    def __init__(self, audit: AuditLog, keep: int = 1000) -> None:
        self._audit = audit
        self.events: collections.deque[SupervisorEvent] = collections.deque(maxlen=keep)
        self._listeners: list[Callable[[SupervisorEvent], None]] = []

    def record(self, event: SupervisorEvent) -> None:
        """Keep an event, audit it if it is a decision, and log it at its weight."""
        self.events.append(event)
        audited = _AUDITED_EVENTS.get(event.kind)
        if audited is not None:
            try:
                self._audit.record(
                    audited,
                    event.child,
                    allowed=event.kind != "gave_up",
                    action=event.kind,
                    reason=event.reason or "",
                )
            except WactorError as exc:  # the audit log is failing: say so, the host goes on
                _log.error("%s %s not audited: %s", event.kind, event.child, exc)
        routine = event.reason in ("shutdown", "terminated")
        # "started" is logged by Host.start (with the digest); a routine removal follows its stop
        if event.kind != "started" and not (event.kind == "removed" and routine):
            quiet = event.kind in ("stopped", "restarted", "reloaded") or routine
            suffix = f": {event.reason}" if event.reason else ""
            _log.log(
                logging.INFO if quiet else logging.WARNING,
                "%s %s%s",
                event.kind,
                event.child,
                suffix,
            )

    def notify(self, event: SupervisorEvent) -> None:
        """Tell every listener about an event."""
        for listener in list(self._listeners):
            listener(event)

    async def wait(
        self, kind: str, child: ComponentId | str, *, count: int = 1, timeout: float = 30.0
    ) -> SupervisorEvent:
        """Wait until ``count`` events of ``kind`` for ``child`` happened (counting past ones)."""
        name = str(child)

        def matching() -> list[SupervisorEvent]:
            return [e for e in self.events if e.kind == kind and e.child == name]

        if len(matching()) >= count:
            return matching()[count - 1]
        arrived = asyncio.Event()

        def listener(event: SupervisorEvent) -> None:
            if event.kind == kind and event.child == name and len(matching()) >= count:
                arrived.set()

        unsubscribe = self.watch(listener)
        try:
            await asyncio.wait_for(arrived.wait(), timeout)
        finally:
            unsubscribe()
        return matching()[count - 1]

    def watch(self, listener: Callable[[SupervisorEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with every lifecycle event; return a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)
