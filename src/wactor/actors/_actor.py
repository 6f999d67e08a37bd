"""Actors: a base class with lifecycle hooks, and the cell that runs one with its mailbox.

Callers hold an :class:`ActorRef`, never the actor. The cell takes one message at a time from a
bounded mailbox and hands it to ``on_message``; the value it returns answers an ``ask``. An
exception from ``on_message`` first goes to ``on_failure``: returning ``"resume"`` fails only that
message (its asker gets the exception), returning ``"crash"`` also ends this incarnation of the
actor, and the cell's exit handler (a supervisor) decides whether a fresh one takes over the
remaining mailbox. When the cell stops for good, every pending ``ask`` fails: no caller hangs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from wactor._deadline import wait_answer
from wactor._tasks import TaskOwner
from wactor.actors._mailbox import Backpressure, Mailbox
from wactor.errors import ActorStoppedError, RequestTimeoutError

__all__ = [
    "NOT_NOW",
    "Actor",
    "ActorCell",
    "ActorRef",
    "ActorState",
    "ActorStats",
    "ExitHandler",
    "ExitReason",
    "FailureAction",
    "Outcome",
]

M = TypeVar("M")
FailureAction = Literal["resume", "crash"]
ActorState = Literal["creating", "starting", "ready", "stopping", "terminated", "failed"]


Outcome = tuple[bool, Any]
"""The result of one message in a batch: ``(True, answer)`` or ``(False, exception)``."""

NOT_NOW: Any = object()
"""What :meth:`Actor.handle_now` returns when it cannot handle a message synchronously."""


class Actor(Generic[M]):
    """Base class of actors; override the hooks you need."""

    batch_limit = 1
    """More than 1: queued messages are handed to :meth:`on_batch` together (up to this many),
    for actors whose per-message overhead is a hand-off (e.g. to a worker thread)."""

    async def on_start(self) -> None:
        """Run once before the first message of this incarnation."""

    async def on_message(self, message: M) -> Any:
        """Handle one message; the return value answers an ``ask``."""
        raise NotImplementedError

    async def on_batch(self, messages: list[M]) -> list[Outcome]:
        """Handle several queued messages in order; return one outcome per message handled.

        May stop early (return fewer outcomes), after a failure that ends the incarnation or
        to let the loop run; the messages not handled stay queued, first in line. The default
        handles them one by one.
        """
        out: list[Outcome] = []
        for message in messages:
            try:
                out.append((True, await self.on_message(message)))
            except Exception as exc:  # noqa: BLE001 - reported per message
                out.append((False, exc))
        return out

    def handle_now(self, message: M) -> Any:
        """Handle ``message`` synchronously, now, if that takes no waiting; else ``NOT_NOW``.

        Called only while the actor is idle (nothing queued, nothing in flight), by whoever
        asks it something: an answer here saves the hand-off to the actor's task. A failure
        raised here goes through :meth:`on_failure` on the actor's task, as if the message had
        been queued. The default never handles anything now.
        """
        return NOT_NOW

    async def on_stop(self) -> None:
        """Run once when this incarnation stops (not after a crash)."""

    async def on_failure(self, exc: BaseException, message: M) -> FailureAction:
        """Decide what a failed message means: ``resume`` (default) or ``crash``."""
        return "resume"


@dataclass(frozen=True, slots=True)
class ActorStats:
    """A snapshot of one actor."""

    id: str
    state: ActorState
    depth: int
    capacity: int
    processed: int
    failed: int
    restarts: int
    refused: int
    last_failure: str | None


@dataclass(slots=True)
class _Letter(Generic[M]):
    message: M
    reply: asyncio.Future[Any] | None
    outcome: Outcome | None = None  # handled already (a failure of handle_now): settle only


ExitReason = BaseException | None
"""Why an incarnation ended: ``None`` for a normal exit, else the exception that crashed it."""
ExitHandler = Callable[["ActorCell[Any]", ExitReason], Awaitable[None]]

# The message of a control letter: with no reply future it asks the actor to stop normally;
# with one, it hands the cell to the actor of a swap waiting under that future (one identity
# check per message tells both from a message).
_CONTROL = object()


@dataclass(slots=True)
class _Swap(Generic[M]):
    """The letter that hands the cell to an actor already started (a code swap)."""

    actor: Actor[M]
    factory: Callable[[], Actor[M]]
    on_kill: Callable[[], None] | None
    stop_timeout: float


_FAIR_SLICE = 0.001  # seconds a busy actor may keep the loop before it lets the others run
# After this many answers given at once (handle_now) in a row, the next goes through the
# mailbox: a caller asking in a tight loop then lets the loop run too.
_NOW_RUN = 15
_log = logging.getLogger("wactor.actors")


class ActorCell(Generic[M]):
    """Runs one actor: its mailbox, its task, its incarnations."""

    def __init__(
        self,
        actor_id: str,
        factory: Callable[[], Actor[M]],
        *,
        capacity: int = 1024,
        backpressure: Backpressure = "reject",
        on_exit: ExitHandler | None = None,
        on_kill: Callable[[], None] | None = None,
    ) -> None:
        self.id = actor_id
        self._factory = factory
        self.mailbox: Mailbox[_Letter[M]] = Mailbox(actor_id, capacity, backpressure)
        self._on_exit = on_exit
        self._on_kill = on_kill
        self.actor: Actor[M] | None = None
        self.state: ActorState = "creating"
        self._task: asyncio.Task[None] | None = None
        self._inflight: list[_Letter[M]] = []
        self._swaps: dict[asyncio.Future[None], _Swap[M]] = {}  # swaps waiting their turn
        self._now_run = 0  # answers given at once in a row (call_now)
        self.processed = 0
        self.failed = 0
        self.restarts = 0
        self.last_failure: str | None = None
        self._stopped = asyncio.Event()
        self._exits = TaskOwner(f"{actor_id} exit handler")  # exit handlers in flight
        self.ref: ActorRef[M] = ActorRef(self)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the actor, run ``on_start`` and begin taking messages."""
        self.state = "starting"
        actor = self._factory()
        try:
            await actor.on_start()
        except BaseException:
            self.state = "failed"
            raise
        self.actor = actor
        self.state = "ready"
        self._stopped.clear()
        self._task = asyncio.create_task(self._run(actor), name=f"actor:{self.id}")

    async def resume(self) -> None:
        """Start a fresh incarnation that takes over the queued messages (a restart)."""
        self.restarts += 1
        self.mailbox.reopen()
        await self.start()

    async def suspend(self, timeout: float = 5.0) -> None:
        """End the current incarnation (for a restart); queued messages stay in the mailbox."""
        self.state = "stopping"
        await self._end_task(timeout)
        await self._run_on_stop(timeout)
        self.state = "creating"

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop for good: let the current message finish (up to ``timeout``), run ``on_stop``.

        Messages still queued fail with ``ActorStoppedError``; so does a message cut off by the
        timeout. Work stuck past the timeout is killed (``on_kill``), then abandoned.
        """
        if self.state == "terminated":
            return
        self.state = "stopping"
        for letter in self.mailbox.close():
            _fail(letter, ActorStoppedError(self.id))
        await self._end_task(timeout)
        await self._run_on_stop(timeout)
        await self._join_exits(timeout)
        self.state = "terminated"
        self._stopped.set()

    async def _join_exits(self, timeout: float) -> None:
        """Wait for exit handlers in flight (a restart under way); cancel one stuck past
        ``timeout``. The caller's own handler, if it is one, is not waited for."""
        try:
            await asyncio.wait_for(self._exits.join(), timeout)
        except TimeoutError:
            _log.warning("%s: exit handler still running after %g s; cancelled", self.id, timeout)
            self._exits.cancel()
            await self._exits.join()

    def request_stop(self) -> None:
        """Ask the actor to exit normally after its current message (its supervisor decides
        whether a new incarnation takes over the queued messages)."""
        self.mailbox.push_front([_Letter(_CONTROL, None)])  # type: ignore[arg-type]

    async def replace(
        self,
        factory: Callable[[], Actor[M]],
        *,
        on_kill: Callable[[], None] | None = None,
        stop_timeout: float = 5.0,
    ) -> None:
        """Hand this cell to a new actor made by ``factory``, keeping its mailbox (a code swap).

        The new actor starts first (``on_start``) while the current one goes on; if that
        fails, the error is raised and nothing changed. Otherwise the swap waits its turn
        ahead of the queued messages: the message in progress finishes on the current actor,
        whose ``on_stop`` then runs, and the new one takes every queued message in order.
        Later restarts make their actor with ``factory``. If the cell stops first, the new
        actor is stopped too and :class:`ActorStoppedError` is raised.
        """
        actor = factory()
        await actor.on_start()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.mailbox.closed:  # stopped for good (a stop fails what is queued, this too)
            done.set_exception(ActorStoppedError(self.id))
        else:
            self._swaps[done] = _Swap(actor, factory, on_kill, stop_timeout)
            self.mailbox.push_front([_Letter(_CONTROL, done)])  # type: ignore[arg-type]
        try:
            await done
        except BaseException:
            if self.actor is not actor:  # never took over: it must not linger
                await self._on_stop(actor, stop_timeout)
            raise
        finally:
            self._swaps.pop(done, None)

    async def _take_over(self, old: Actor[M], letter: _Letter[M]) -> Actor[M]:
        """Install the swapped-in actor (its ``on_start`` already ran), stop the old one."""
        swap = None if letter.reply is None else self._swaps.pop(letter.reply, None)
        if swap is None:  # its caller gave up (cancelled) before its turn came
            return old
        self.actor = swap.actor
        self._factory = swap.factory
        if swap.on_kill is not None:
            self._on_kill = swap.on_kill
        await self._on_stop(old, swap.stop_timeout)
        if letter.reply is not None and not letter.reply.done():
            letter.reply.set_result(None)
        return swap.actor

    def terminate(self, reason: str) -> None:
        """Give up on this actor: fail everything queued; no hooks run (it already died)."""
        if self.state != "terminated":
            self.state = "failed"
        self.last_failure = reason
        for letter in self.mailbox.close():
            _fail(letter, ActorStoppedError(self.id, reason))
        self.actor = None
        self._stopped.set()

    async def _end_task(self, timeout: float) -> None:
        task = self._task
        if task is None or task.done():
            return
        self.mailbox.wake()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done and self._on_kill is not None:
            self._on_kill()  # e.g. interrupt a guest stuck in a loop
            done, _ = await asyncio.wait({task}, timeout=1.0)
        if not done:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # noqa: BLE001 - reported; the stop goes on
                _log.warning("%s: ended with an error: %s", self.id, str(exc) or type(exc).__name__)
        for letter in self._inflight:
            _fail(letter, ActorStoppedError(self.id, "stopped (shutdown timeout)"))
        self._inflight = []

    async def _run_on_stop(self, timeout: float) -> None:
        actor, self.actor = self.actor, None
        if actor is not None:
            await self._on_stop(actor, timeout)

    async def _on_stop(self, actor: Actor[M], timeout: float | None) -> None:
        """Run ``on_stop``; a failure is logged with the actor's id (the stop goes on)."""
        try:
            await asyncio.wait_for(actor.on_stop(), timeout)
        except TimeoutError:
            _log.warning("%s: on_stop did not finish within %g s", self.id, timeout)
        except Exception as exc:  # noqa: BLE001 - reported here; the stop itself goes on
            _log.warning("%s: on_stop failed: %s", self.id, str(exc) or type(exc).__name__)

    async def wait_stopped(self) -> None:
        """Wait until the actor has stopped for good."""
        await self._stopped.wait()

    def statistics(self) -> ActorStats:
        """Return a snapshot of state, mailbox and counters."""
        mb = self.mailbox.statistics()
        return ActorStats(
            self.id,
            self.state,
            mb.depth + len(self._inflight),
            mb.capacity,
            self.processed,
            self.failed,
            self.restarts,
            mb.refused,
            self.last_failure,
        )

    # -- the loop ------------------------------------------------------------------------------

    async def _run(self, actor: Actor[M]) -> None:
        mailbox = self.mailbox
        clock = time.monotonic
        since = clock()  # when this task last let the others run
        # messages taken without waiting since then: the clock is read every 16 of them (every
        # time for an actor that takes batches, a batch being up to a slice of the loop)
        streak = 0
        every = 0 if actor.batch_limit > 1 else 15
        while self.state == "ready":
            letter = mailbox.take_nowait()
            if letter is None:
                letter = await mailbox.get()  # it waits: the others run meanwhile
                streak = 0
                since = clock()
                if letter is None:  # woken: closed, or asked to end this incarnation
                    if mailbox.closed:
                        return
                    continue
            else:
                streak += 1
                if not streak & every and clock() - since > _FAIR_SLICE:
                    # a busy actor (one that keeps sending to itself, say) must not starve
                    # the others of the loop: let them run between its messages now and then
                    mailbox.push_front([letter])
                    await asyncio.sleep(0)
                    since = clock()
                    continue
            if self.state != "ready":  # ending this incarnation: keep the letter queued
                mailbox.push_front([letter])
                return
            if letter.message is _CONTROL:
                if letter.reply is None:  # stop
                    await self._exit(actor, None)
                    return
                actor = await self._take_over(actor, letter)
                every = 0 if actor.batch_limit > 1 else 15
                continue
            if letter.outcome is not None:  # handle_now failed: settle it here
                outcome, letter.outcome = letter.outcome, None
                if not await self._settle(actor, [letter], [outcome]):
                    return
                continue
            if actor.batch_limit == 1 or not len(mailbox):
                if not await self._handle_one(actor, letter):
                    return
                continue
            batch = [letter, *mailbox.take_ready(actor.batch_limit - 1)]
            # An asker that gave up before we started needs no answer; a stop request ends the
            # batch (it is put back and taken next).
            for i, item in enumerate(batch):
                if item.message is _CONTROL:
                    mailbox.push_front(batch[i:])
                    batch = batch[:i]
                    break
            batch = [b for b in batch if b.reply is None or not b.reply.done()]
            if not batch:
                continue
            self._inflight = batch
            outcomes = await actor.on_batch([b.message for b in batch])
            self._inflight = []
            if not await self._settle(actor, batch, outcomes):
                return

    def call_now(self, letter: _Letter[M]) -> bool:
        """Try to answer ``letter`` at once on the caller's task; ``False``: queue it instead.

        Only while the actor is idle: ready, its task waiting for mail, nothing queued or in
        flight, so the answer comes in the same order as through the mailbox. A failure is
        queued first in line, already handled, for the actor's task to settle.
        """
        actor = self.actor
        if (
            actor is None
            or self.state != "ready"
            or self._inflight
            or len(self.mailbox)
            or not self.mailbox.waiting
        ):
            return False
        if self._now_run >= _NOW_RUN:
            self._now_run = 0
            return False
        self._now_run += 1
        try:
            result = actor.handle_now(letter.message)
        except Exception as exc:  # noqa: BLE001 - the actor's task settles it
            letter.outcome = (False, exc)
            self.mailbox.push_front([letter])
            return True
        if result is NOT_NOW:
            return False
        self.processed += 1
        reply = letter.reply
        if reply is not None and not reply.done():
            reply.set_result(result)
        return True

    async def _handle_one(self, actor: Actor[M], letter: _Letter[M]) -> bool:
        """Handle a single message (the common, unbatched case); False if the actor crashed."""
        reply = letter.reply
        if reply is not None and reply.done():  # the asker gave up before we started
            return True
        self._inflight = [letter]
        try:
            result = await actor.on_message(letter.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - goes to the asker and the hook
            self._inflight = []
            return await self._settle(actor, [letter], [(False, exc)])
        self._inflight = []
        self.processed += 1
        if reply is not None and not reply.done():
            reply.set_result(result)
        return True

    async def _settle(
        self, actor: Actor[M], batch: list[_Letter[M]], outcomes: list[Outcome]
    ) -> bool:
        """Answer the askers of a handled batch; return False if the incarnation crashed."""
        for i, (ok, value) in enumerate(outcomes):
            letter = batch[i]
            if ok:
                self.processed += 1
                if letter.reply is not None and not letter.reply.done():
                    letter.reply.set_result(value)
                continue
            exc = value
            self.failed += 1
            self.last_failure = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            _fail(letter, exc)
            if await actor.on_failure(exc, letter.message) == "crash":
                self.mailbox.push_front(batch[i + 1 :])  # kept for the next incarnation
                self.state = "failed"
                self.actor = None
                await self._notify_exit(exc)
                return False
        if len(outcomes) < len(batch):
            self.mailbox.push_front(batch[len(outcomes) :])
        return True

    async def _exit(self, actor: Actor[M], reason: ExitReason) -> None:
        self.state = "stopping"
        self.actor = None
        await self._on_stop(actor, None)
        self.state = "terminated"
        await self._notify_exit(reason)

    async def _notify_exit(self, reason: ExitReason) -> None:
        if self._on_exit is not None:
            # The handler may restart this cell: run it outside this (ending) task.
            handler = self._on_exit

            async def run_handler() -> None:
                await handler(self, reason)

            self._exits.spawn(run_handler(), name=f"exit:{self.id}")
        elif reason is not None:
            await self.resume()  # no supervisor: restart at once, keeping queued messages
        else:
            self.terminate("stopped")


def _fail(letter: _Letter[Any], exc: BaseException) -> None:
    if letter.reply is not None and not letter.reply.done():
        letter.reply.set_exception(exc)


class ActorRef(Generic[M]):
    """What callers hold: a way to message an actor, never the actor itself."""

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell[M]) -> None:
        self._cell = cell

    @property
    def id(self) -> str:
        """The actor's id."""
        return self._cell.id

    def tell_nowait(self, message: M) -> None:
        """Enqueue a message or raise ``QueueFullError`` / ``ActorStoppedError`` at once."""
        self._cell.mailbox.put_nowait(_Letter(message, None))

    async def tell(self, message: M) -> None:
        """Enqueue a message, waiting for room if the mailbox's policy says so."""
        await self._cell.mailbox.put(_Letter(message, None))

    def ask_nowait(self, message: M) -> asyncio.Future[Any]:
        """Enqueue a message and return the future of its answer (no waiting for room)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        letter = _Letter(message, fut)
        if not self._cell.call_now(letter):
            self._cell.mailbox.put_nowait(letter)
        return fut

    async def submit(self, message: M) -> asyncio.Future[Any]:
        """Enqueue (waiting for room if the mailbox says so); return the answer's future."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        letter = _Letter(message, fut)
        if not self._cell.call_now(letter):
            await self._cell.mailbox.put(letter)
        return fut

    async def ask(self, message: M, timeout: float | None = None) -> Any:
        """Send a message and wait for the actor's answer (or its failure, or the timeout)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        letter = _Letter(message, fut)
        if not self._cell.call_now(letter):
            await self._cell.mailbox.put(letter)
        if timeout is None:
            return await fut
        return await wait_answer(fut, timeout, lambda: RequestTimeoutError(self._cell.id, timeout))

    def stop(self) -> None:
        """Ask the actor to exit normally after its current message."""
        self._cell.request_stop()

    def statistics(self) -> ActorStats:
        """Return a snapshot of the actor."""
        return self._cell.statistics()
