"""Supervisors with Erlang/OTP semantics.

A supervisor owns an ordered list of children (actor cells or other supervisors) and reacts when
one of them exits:

* restart types: ``permanent`` children are always restarted, ``transient`` ones only after an
  abnormal exit (a crash), ``temporary`` ones never;
* strategies: ``one_for_one`` restarts the exited child, ``one_for_all`` all children,
  ``rest_for_one`` the exited child and those started after it (siblings are stopped in reverse
  start order, then everything is started again in start order);
* intensity: more than ``max_restarts`` restarts within ``within_seconds`` and the supervisor
  gives up: it stops all its children and exits abnormally itself, so its own parent (or, at the
  top, the owner's ``on_give_up``) decides what happens next;
* budgets: a child with a budget of its own (``ChildSpec.max_restarts``, e.g. from a component
  manifest) is charged its own crashes only, not the supervisor's intensity. Past its budget it
  is given up alone: terminated (its pending messages fail), kept in :meth:`children` with
  state ``failed`` and its last failure, and the supervisor goes on with the others;
* significant children (OTP's ``significant``): their crashes count against their own budget
  *and* the supervisor's intensity, and when their own budget is spent the supervisor gives up
  (escalates) instead of going on without them. A child without a budget of its own (a nested
  supervisor, for one) counts toward the supervisor's intensity as well;
* a sibling stopped and started again because of another child's crash (``one_for_all``,
  ``rest_for_one``) is not charged: only the crashed child's budget is;
* exponential backoff with jitter before each restart, bounded by a maximum;
* ordered shutdown: children stop in reverse start order, each within its shutdown timeout.

Messages queued for a child while it is being restarted stay in its mailbox.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from wactor._tasks import TaskOwner
from wactor.actors._actor import Actor, ActorCell, ExitReason
from wactor.actors._mailbox import Backpressure
from wactor.errors import ActorStoppedError

__all__ = [
    "Backoff",
    "ChildSpec",
    "RestartType",
    "Strategy",
    "Supervisor",
    "SupervisorEvent",
    "SupervisorSpec",
]

RestartType = Literal["permanent", "transient", "temporary"]
Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
EventKind = Literal[
    "started", "stopped", "crashed", "restarted", "reloaded", "gave_up", "escalated", "removed"
]
"""``gave_up``: the supervisor gave up on that child (out of its own budget; it stays listed as
failed) or, when the child is the supervisor itself, on everything. ``removed``: the child left
this supervisor for good (it will not be restarted)."""

_log = logging.getLogger("wactor.supervisor")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: ``initial * factor**n``, capped at ``maximum``."""

    initial: float = 0.01
    maximum: float = 2.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The pause before restart number ``attempt`` (0-based), jittered, never above max."""
        base = min(self.maximum, self.initial * self.factor ** max(0, attempt))
        spread = (rng or random).uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return max(0.0, min(self.maximum, base * (1 + spread)))


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to run and restart one child actor."""

    id: str
    factory: Callable[[], Actor[Any]]
    restart: RestartType = "permanent"
    capacity: int = 1024
    backpressure: Backpressure = "reject"
    shutdown_timeout: float = 5.0
    backoff: Backoff = field(default_factory=Backoff)
    max_restarts: int | None = None  # the child's own budget; None: only the supervisor's
    within_seconds: float = 5.0
    significant: bool = False  # also counts toward the supervisor; its final failure escalates
    on_kill: Callable[[], None] | None = None  # forcibly end work stuck past the shutdown timeout


@dataclass(frozen=True, slots=True)
class SupervisorSpec:
    """A supervisor's strategy and intensity."""

    strategy: Strategy = "one_for_one"
    max_restarts: int = 3
    within_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """Something that happened to a child, as observed by its supervisor."""

    kind: EventKind
    supervisor: str
    child: str
    reason: str | None
    time: float
    backoff: float | None = None  # for "restarted": the pause (s) taken before the restart


class _Child(Protocol):
    """What a supervisor needs from a child: an actor cell or a nested supervisor."""

    id: str

    async def start(self) -> None: ...
    async def suspend(self, timeout: float) -> None: ...
    async def resume(self) -> None: ...
    async def stop(self, timeout: float) -> None: ...
    def terminate(self, reason: str) -> None: ...


@dataclass(slots=True)
class _Entry:
    child: _Child
    restart: RestartType
    shutdown_timeout: float
    backoff: Backoff
    max_restarts: int | None
    within_seconds: float
    significant: bool = False
    history: collections.deque[float] = field(default_factory=collections.deque)
    restarting: bool = False
    failed: bool = False  # given up alone: kept for display, never restarted

    @property
    def charges_supervisor(self) -> bool:
        """Tell whether this child's crashes count toward the supervisor's intensity."""
        return self.significant or self.max_restarts is None


class Supervisor:
    """Supervises an ordered list of children; itself usable as a child of another supervisor."""

    def __init__(
        self,
        name: str,
        spec: SupervisorSpec | None = None,
        *,
        on_event: Callable[[SupervisorEvent], None] | None = None,
        on_give_up: Callable[[Supervisor, str], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.id = name
        self.spec = spec or SupervisorSpec()
        self._on_event = on_event
        self._on_give_up = on_give_up
        self._rng = rng or random.Random()
        self._entries: dict[str, _Entry] = {}
        self._history: collections.deque[float] = collections.deque()
        self._parent: Supervisor | None = None
        self._tasks = TaskOwner(f"supervisor {name}")  # restarts under way
        self._closing = False
        self.state: Literal["running", "stopped", "failed"] = "running"
        self.restarts = 0
        self.last_failure: str | None = None
        self.events: collections.deque[SupervisorEvent] = collections.deque(maxlen=1000)

    # -- children --------------------------------------------------------------------------------

    def children(self) -> list[Any]:
        """The children, in start order (actor cells and supervisors)."""
        return [e.child for e in self._entries.values()]

    def child(self, child_id: str) -> Any:
        """One child by id (``KeyError`` if absent)."""
        return self._entries[child_id].child

    def has_child(self, child_id: str) -> bool:
        """Tell whether ``child_id`` is (still) supervised here, running or failed."""
        return child_id in self._entries

    def is_failed(self, child_id: str) -> bool:
        """Tell whether ``child_id`` was given up (out of its own restarts) and stays failed."""
        entry = self._entries.get(child_id)
        return entry is not None and entry.failed

    async def start_child(self, spec: ChildSpec) -> ActorCell[Any]:
        """Create and start an actor child; it joins the end of the start order.

        An id already listed (running or failed) is refused: terminate the failed child first.
        """
        if spec.id in self._entries:
            raise ValueError(f"{self.id}: child {spec.id!r} already exists")
        cell: ActorCell[Any] = ActorCell(
            spec.id,
            spec.factory,
            capacity=spec.capacity,
            backpressure=spec.backpressure,
            on_exit=self._child_exited,
            on_kill=spec.on_kill,
        )
        entry = _Entry(
            cell,
            spec.restart,
            spec.shutdown_timeout,
            spec.backoff,
            spec.max_restarts,
            spec.within_seconds,
            spec.significant,
        )
        self._entries[spec.id] = entry
        try:
            await cell.start()
        except BaseException:
            del self._entries[spec.id]
            raise
        self._emit("started", spec.id, None)
        return cell

    async def start_supervisor(
        self, child: Supervisor, *, restart: RestartType = "permanent", shutdown_timeout: float = 30
    ) -> Supervisor:
        """Add a nested supervisor as a child (its children are added by the caller)."""
        child._parent = self
        self._entries[child.id] = _Entry(child, restart, shutdown_timeout, Backoff(), None, 5.0)
        self._emit("started", child.id, None)
        return child

    def _running_cell(self, child_id: str) -> ActorCell[Any]:
        entry = self._entries.get(child_id)
        if entry is None or not isinstance(entry.child, ActorCell):
            raise KeyError(child_id)
        if entry.failed or entry.restarting or self._closing:
            raise ActorStoppedError(child_id, "not running (failed, restarting or stopping)")
        return entry.child

    async def restart_child(self, child_id: str, reason: str = "restart requested") -> None:
        """Restart a running actor child now: its current message finishes, then a fresh
        incarnation takes over the queued messages. Not charged as a crash; a fresh
        incarnation that fails to start counts as one."""
        cell = self._running_cell(child_id)
        entry = self._entries[child_id]
        entry.restarting = True
        try:
            await cell.suspend(entry.shutdown_timeout)
            await cell.resume()
        except Exception as exc:
            entry.restarting = False
            await self._child_exited(cell, exc)
            raise
        entry.restarting = False
        self.restarts += 1
        self._emit("restarted", child_id, reason)

    async def replace_child(
        self,
        child_id: str,
        factory: Callable[[], Actor[Any]],
        *,
        on_kill: Callable[[], None] | None = None,
        reason: str = "reloaded",
    ) -> None:
        """Swap a running actor child for one made by ``factory``, keeping its mailbox (see
        :meth:`ActorCell.replace`); if the new actor fails to start, the old one goes on and
        the error is raised."""
        cell = self._running_cell(child_id)
        entry = self._entries[child_id]
        await cell.replace(factory, on_kill=on_kill, stop_timeout=entry.shutdown_timeout)
        self._emit("reloaded", child_id, reason)

    async def terminate_child(self, child_id: str, timeout: float | None = None) -> None:
        """Stop a child for good, whatever its restart type, and forget it."""
        entry = self._entries.pop(child_id, None)
        if entry is None:
            raise KeyError(child_id)
        await entry.child.stop(entry.shutdown_timeout if timeout is None else timeout)
        self._emit("stopped", child_id, "terminated")
        self._emit("removed", child_id, "terminated")

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop every child in reverse start order, each within its own shutdown timeout."""
        self._closing = True
        self._tasks.cancel()
        await self._tasks.join()
        for child_id in reversed(list(self._entries)):
            entry = self._entries[child_id]
            try:
                await entry.child.stop(entry.shutdown_timeout)
            except Exception as exc:  # noqa: BLE001 - reported; the others still stop
                _log.warning("%s: stopping %s failed: %s", self.id, child_id, exc)
            self._emit("stopped", child_id, "shutdown")
            self._emit("removed", child_id, "shutdown")
        self._entries.clear()
        if self.state == "running":
            self.state = "stopped"

    # -- the _Child protocol, when nested --------------------------------------------------------

    async def start(self) -> None:
        """Start again after a restart by the parent: every child in start order."""
        self._closing = False
        self.state = "running"
        self._history.clear()
        for entry in self._entries.values():
            if entry.failed:
                continue  # given up alone: stays failed until started anew
            await entry.child.resume()
            entry.history.clear()

    async def suspend(self, timeout: float) -> None:
        """Stop the children (reverse order) but keep them and their mailboxes for a restart."""
        for entry in reversed(list(self._entries.values())):
            if not entry.failed:
                await entry.child.suspend(entry.shutdown_timeout)

    async def resume(self) -> None:
        """Restart every child in start order."""
        await self.start()

    def terminate(self, reason: str) -> None:
        """Give up on every child for good: their queued messages fail."""
        self._closing = True
        self._tasks.cancel()
        for child_id, entry in list(self._entries.items()):
            if not entry.failed:  # a failed child keeps its own last failure
                entry.child.terminate(reason)
            self._emit("stopped", child_id, reason)
            self._emit("removed", child_id, reason)
        self._entries.clear()
        self.state = "failed"
        self.last_failure = reason

    # -- reacting to exits -----------------------------------------------------------------------

    async def _child_exited(self, child: Any, reason: ExitReason) -> None:
        entry = self._entries.get(child.id)
        if entry is None or self._closing or entry.restarting or entry.failed:
            return  # gone, shutting down, part of a restart under way, or given up
        abnormal = reason is not None
        text = _describe(reason, child.id)
        if abnormal:
            self.last_failure = f"{child.id}: {text}"
            self._emit("crashed", child.id, text)
        else:
            self._emit("stopped", child.id, "normal")
        if entry.restart == "temporary" or (entry.restart == "transient" and not abnormal):
            self._entries.pop(child.id, None)
            child.terminate(text)
            self._emit("removed", child.id, f"{entry.restart} child exited: {text}")
            if entry.significant and abnormal:  # a significant child's final failure
                await self._give_up(f"{child.id}: {text}")
            return
        now = time.monotonic()
        if entry.max_restarts is not None and _over_budget(
            entry.history, now, entry.max_restarts, entry.within_seconds
        ):
            n = entry.max_restarts
            spent = (
                f"gave up after {n} restart{'' if n == 1 else 's'} within "
                f"{entry.within_seconds:g} s: {text}"
            )
            if entry.significant:  # its final failure takes the supervisor down with it
                await self._give_up(f"{child.id}: {spent}")
                return
            # Its own budget is spent: give up on it alone; it stays listed, failed.
            entry.failed = True
            child.terminate(spent)
            self._emit("gave_up", child.id, spent)
            return
        if entry.charges_supervisor and _over_budget(
            self._history, now, self.spec.max_restarts, self.spec.within_seconds
        ):
            await self._give_up(f"{child.id}: {text}")
            return
        self._spawn(self._restart(entry, text))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.spawn(coro, name=f"{self.id}: restart")

    async def _restart(self, entry: _Entry, reason: str) -> None:
        order = list(self._entries)
        failed_id = entry.child.id
        if self.spec.strategy == "one_for_one":
            group = [failed_id]
        elif self.spec.strategy == "one_for_all":
            group = order
        else:
            group = order[order.index(failed_id) :] if failed_id in order else [failed_id]
        # Children given up alone stay down; siblings restarted here are not charged a crash.
        group = [cid for cid in group if cid == failed_id or not self._entries[cid].failed]
        for cid in group:
            self._entries[cid].restarting = True
        siblings = [cid for cid in group if cid != failed_id]
        for cid in reversed(siblings):
            sib = self._entries[cid]
            await sib.child.suspend(sib.shutdown_timeout)
        attempt = len(entry.history) - 1
        pause = entry.backoff.delay(attempt, self._rng)
        await asyncio.sleep(pause)
        for cid in group:
            target = self._entries.get(cid)
            if target is None or self._closing:
                continue
            try:
                await target.child.resume()
            except Exception as exc:  # noqa: BLE001 - a failed restart counts as another crash
                target.restarting = False
                await self._child_exited(target.child, exc)
                continue
            target.restarting = False
            self.restarts += 1
            self._emit(
                "restarted",
                cid,
                reason if cid == failed_id else f"sibling {failed_id}",
                backoff=pause,
            )

    async def _give_up(self, reason: str) -> None:
        self._emit("gave_up", self.id, reason)
        _log.error("%s: too many restarts, giving up: %s", self.id, reason)
        self._tasks.cancel()
        # Stop the children (reverse order) but keep their specs: a parent may restart us.
        for entry in reversed(list(self._entries.values())):
            entry.restarting = False
            if not entry.failed:
                await entry.child.suspend(entry.shutdown_timeout)
        self.state = "failed"
        self.last_failure = reason
        if self._parent is not None:
            self._emit("escalated", self.id, reason)
            await self._parent._child_exited(self, RuntimeError(reason))
        else:
            if self._on_give_up is not None:
                await self._on_give_up(self, reason)
            self.terminate(reason)

    def _emit(
        self, kind: EventKind, child: str, reason: str | None, *, backoff: float | None = None
    ) -> None:
        event = SupervisorEvent(kind, self.id, child, reason, time.time(), backoff)
        self.events.append(event)
        if self._on_event is not None:
            self._on_event(event)


def _over_budget(
    history: collections.deque[float], now: float, max_restarts: int, within: float
) -> bool:
    """Record a restart at ``now``; tell whether it makes more than allowed in the window."""
    history.append(now)
    while history and history[0] < now - within:
        history.popleft()
    return len(history) > max_restarts


def _describe(reason: ExitReason, child_id: str) -> str:
    if reason is None:
        return "normal"
    text = (str(reason) or type(reason).__name__).splitlines()[0]
    return text.removeprefix(f"{child_id}: ")  # the id is said once, by whoever shows this
