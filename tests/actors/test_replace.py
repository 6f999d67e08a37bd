"""Swapping an actor for a new one while keeping its mailbox, and restarting one on request.

The message in progress finishes on the old actor, everything queued behind it is handled by
the new one in order, nothing is lost; a new actor that fails to start changes nothing.
"""

from __future__ import annotations

import asyncio

import pytest

from wactor.actors import Actor, Backoff, ChildSpec, Supervisor, SupervisorEvent, SupervisorSpec
from wactor.errors import ActorStoppedError

DEADLINE = 10.0
NO_PAUSE = Backoff(initial=0.0, maximum=0.0, jitter=0.0)


class Tagger(Actor[str]):
    """Answers ``<tag>:<message>``; ``hold`` waits until released, ``count`` counts."""

    def __init__(self, tag: str, gate: asyncio.Event | None = None) -> None:
        self.tag = tag
        self.gate = gate
        self.entered = asyncio.Event()
        self.started = asyncio.Event()
        self.stopped = False
        self.count = 0

    async def on_start(self) -> None:
        self.started.set()

    async def on_stop(self) -> None:
        self.stopped = True

    async def on_message(self, message: str) -> str:
        if message == "hold":
            self.entered.set()
            assert self.gate is not None
            await self.gate.wait()
        if message == "count":
            self.count += 1
            return f"{self.tag}:{self.count}"
        return f"{self.tag}:{message}"


class FailsToStart(Actor[str]):
    async def on_start(self) -> None:
        raise RuntimeError("new code refused to start")


async def _tree(actor: Actor[str]) -> tuple[Supervisor, list[SupervisorEvent]]:
    events: list[SupervisorEvent] = []
    sup = Supervisor("top", SupervisorSpec(), on_event=events.append)
    await sup.start_child(ChildSpec("a", lambda: actor, backoff=NO_PAUSE))
    return sup, events


async def test_the_call_in_progress_ends_on_the_old_actor_and_the_queue_goes_to_the_new() -> None:
    gate = asyncio.Event()
    old = Tagger("old", gate)
    sup, events = await _tree(old)
    cell = sup.child("a")
    held = cell.ref.ask_nowait("hold")
    await asyncio.wait_for(old.entered.wait(), DEADLINE)
    queued = [cell.ref.ask_nowait(f"m{i}") for i in range(20)]
    new = Tagger("new")
    swap = asyncio.create_task(sup.replace_child("a", lambda: new))
    # the new actor starts while the old one is still busy; the swap waits its turn
    await asyncio.wait_for(new.started.wait(), DEADLINE)
    assert not swap.done()
    assert not old.stopped
    gate.set()
    await asyncio.wait_for(swap, DEADLINE)
    assert await held == "old:hold"
    assert [await q for q in queued] == [f"new:m{i}" for i in range(20)]
    assert old.stopped
    assert not new.stopped
    assert await cell.ref.ask("x", timeout=DEADLINE) == "new:x"
    assert [e.kind for e in events if e.child == "a"] == ["started", "reloaded"]
    assert cell.restarts == 0
    await sup.stop()


async def test_a_new_actor_that_fails_to_start_leaves_the_old_one_running() -> None:
    old = Tagger("old")
    sup, events = await _tree(old)
    cell = sup.child("a")
    assert await cell.ref.ask("count", timeout=DEADLINE) == "old:1"
    with pytest.raises(RuntimeError, match="refused to start"):
        await sup.replace_child("a", FailsToStart)
    assert await cell.ref.ask("count", timeout=DEADLINE) == "old:2"  # same actor, state kept
    assert not old.stopped
    assert "reloaded" not in [e.kind for e in events]
    await sup.stop()


async def test_later_restarts_make_the_new_actor() -> None:
    sup, _ = await _tree(Tagger("old"))
    cell = sup.child("a")
    await sup.replace_child("a", lambda: Tagger("new"))
    await sup.restart_child("a")
    assert await cell.ref.ask("x", timeout=DEADLINE) == "new:x"
    await sup.stop()


async def test_a_swap_behind_a_stop_fails_and_stops_the_new_actor() -> None:
    gate = asyncio.Event()
    old = Tagger("old", gate)
    sup, _ = await _tree(old)
    cell = sup.child("a")
    held = cell.ref.ask_nowait("hold")
    await asyncio.wait_for(old.entered.wait(), DEADLINE)
    new = Tagger("new")
    swap = asyncio.create_task(sup.replace_child("a", lambda: new))
    await asyncio.wait_for(new.started.wait(), DEADLINE)
    stopping = asyncio.create_task(sup.terminate_child("a"))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(stopping, DEADLINE)
    assert await held == "old:hold"
    with pytest.raises(ActorStoppedError):
        await asyncio.wait_for(swap, DEADLINE)
    assert new.stopped  # it never took over, and does not linger


async def test_restart_on_request_keeps_the_queue_and_starts_fresh() -> None:
    gate = asyncio.Event()
    actors: list[Tagger] = []

    def make() -> Tagger:
        actors.append(Tagger(f"gen{len(actors)}", gate))
        return actors[-1]

    events: list[SupervisorEvent] = []
    sup = Supervisor("top", SupervisorSpec(), on_event=events.append)
    cell = await sup.start_child(ChildSpec("a", make, backoff=NO_PAUSE))
    assert await cell.ref.ask("count", timeout=DEADLINE) == "gen0:1"
    held = cell.ref.ask_nowait("hold")
    await asyncio.wait_for(actors[0].entered.wait(), DEADLINE)
    queued = [cell.ref.ask_nowait("count") for _ in range(3)]
    restart = asyncio.create_task(sup.restart_child("a"))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(restart, DEADLINE)
    assert await held == "gen0:hold"
    assert [await q for q in queued] == ["gen1:1", "gen1:2", "gen1:3"]  # fresh state
    assert cell.restarts == 1
    assert [e.kind for e in events] == ["started", "restarted"]
    assert events[-1].reason == "restart requested"
    await sup.stop()


async def test_a_failed_child_cannot_be_swapped_or_restarted() -> None:
    sup, _ = await _tree(Tagger("old"))
    await sup.terminate_child("a")
    with pytest.raises(KeyError):
        await sup.replace_child("a", lambda: Tagger("new"))
    with pytest.raises(KeyError):
        await sup.restart_child("a")


async def test_a_swap_given_up_before_its_turn_changes_nothing() -> None:
    gate = asyncio.Event()
    old = Tagger("old", gate)
    sup, events = await _tree(old)
    cell = sup.child("a")
    held = cell.ref.ask_nowait("hold")
    await asyncio.wait_for(old.entered.wait(), DEADLINE)
    new = Tagger("new")
    swap = asyncio.create_task(sup.replace_child("a", lambda: new))
    await asyncio.wait_for(new.started.wait(), DEADLINE)
    swap.cancel()
    with pytest.raises(asyncio.CancelledError):
        await swap
    assert new.stopped  # started, never installed: stopped, not left behind
    gate.set()
    assert await held == "old:hold"
    assert await cell.ref.ask("x", timeout=DEADLINE) == "old:x"
    assert not old.stopped
    assert "reloaded" not in [e.kind for e in events]
    await sup.stop()
