"""Actors and their cells alone (no wasm): answers, failures, crashes, restarts, stopping."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wactor.actors import Actor, ActorCell, ExitReason, FailureAction, Outcome
from wactor.errors import ActorStoppedError, RequestTimeoutError


class Recorder(Actor[Any]):
    """Answers ``("echo", x)`` with x, raises on ``("fail", text)``, crashes on ``("crash", _)``,
    waits on ``("block", event)``; counts its lifecycle hooks in a shared journal."""

    def __init__(self, journal: list[str]) -> None:
        self.journal = journal

    async def on_start(self) -> None:
        self.journal.append("start")

    async def on_message(self, message: Any) -> Any:
        kind, arg = message
        self.journal.append(f"{kind}:{arg if kind != 'block' else ''}")
        if kind == "fail":
            raise ValueError(arg)
        if kind == "crash":
            raise RuntimeError(arg)
        if kind == "block":
            await arg.wait()
            return None
        return arg

    async def on_failure(self, exc: BaseException, message: Any) -> FailureAction:
        return "crash" if isinstance(exc, RuntimeError) else "resume"

    async def on_stop(self) -> None:
        self.journal.append("stop")


def _cell(journal: list[str], **kwargs: Any) -> ActorCell[Any]:
    return ActorCell("t/a/0", lambda: Recorder(journal), **kwargs)


async def test_ask_returns_what_the_actor_answers() -> None:
    cell = _cell([])
    await cell.start()
    assert await cell.ref.ask(("echo", 7), timeout=5) == 7
    await cell.stop()


async def test_a_resumed_failure_fails_only_its_own_message() -> None:
    journal: list[str] = []
    cell = _cell(journal)
    await cell.start()
    with pytest.raises(ValueError, match="bad"):
        await cell.ref.ask(("fail", "bad"), timeout=5)
    assert await cell.ref.ask(("echo", "next"), timeout=5) == "next"
    stats = cell.statistics()
    assert (stats.processed, stats.failed, stats.restarts) == (1, 1, 0)
    assert stats.last_failure == "bad"
    assert journal.count("start") == 1
    await cell.stop()


async def test_a_crash_is_reported_to_the_exit_handler_and_the_queue_is_kept() -> None:
    journal: list[str] = []
    exits: list[ExitReason] = []
    crashed = asyncio.Event()

    async def on_exit(cell: ActorCell[Any], reason: ExitReason) -> None:
        exits.append(reason)
        crashed.set()

    gate = asyncio.Event()
    cell = _cell(journal, on_exit=on_exit)
    await cell.start()
    blocked = cell.ref.ask_nowait(("block", gate))
    doomed = cell.ref.ask_nowait(("crash", "boom"))
    kept = cell.ref.ask_nowait(("echo", "kept"))
    gate.set()
    assert await blocked is None
    with pytest.raises(RuntimeError, match="boom"):
        await doomed
    await asyncio.wait_for(crashed.wait(), 5)
    assert isinstance(exits[0], RuntimeError)
    assert cell.state == "failed"
    assert "stop" not in journal  # on_stop does not run after a crash
    await cell.resume()  # what a supervisor does: a fresh incarnation takes the queue over
    assert await asyncio.wait_for(kept, 5) == "kept"
    assert cell.statistics().restarts == 1
    assert journal.count("start") == 2
    await cell.stop()


async def test_without_a_supervisor_a_crashed_actor_restarts_and_keeps_its_queue() -> None:
    journal: list[str] = []
    cell = _cell(journal)
    await cell.start()
    doomed = cell.ref.ask_nowait(("crash", "boom"))
    kept = cell.ref.ask_nowait(("echo", "kept"))
    with pytest.raises(RuntimeError):
        await doomed
    assert await asyncio.wait_for(kept, 5) == "kept"
    assert cell.statistics().restarts == 1
    await cell.stop()


async def test_stop_lets_the_current_message_finish_and_fails_the_queued_ones() -> None:
    journal: list[str] = []
    gate = asyncio.Event()
    cell = _cell(journal)
    await cell.start()
    current = cell.ref.ask_nowait(("block", gate))
    queued = cell.ref.ask_nowait(("echo", "never"))
    await asyncio.sleep(0)  # let the actor take the first letter
    stopping = asyncio.create_task(cell.stop(timeout=5))
    await asyncio.sleep(0)
    gate.set()
    await stopping
    assert await current is None
    with pytest.raises(ActorStoppedError):
        await queued
    assert journal[-1] == "stop"
    assert cell.state == "terminated"
    with pytest.raises(ActorStoppedError):
        cell.ref.tell_nowait(("echo", 1))


async def test_work_stuck_past_the_shutdown_timeout_is_killed_and_its_asker_told() -> None:
    killed: list[bool] = []
    cell = _cell([], on_kill=lambda: killed.append(True))
    await cell.start()
    stuck = cell.ref.ask_nowait(("block", asyncio.Event()))  # never set
    await asyncio.sleep(0)
    await cell.stop(timeout=0.01)
    assert killed == [True]
    with pytest.raises(ActorStoppedError, match="shutdown timeout"):
        await stuck
    assert cell.state == "terminated"


async def test_a_normal_exit_reaches_the_exit_handler_as_none() -> None:
    exits: list[ExitReason] = []
    done = asyncio.Event()

    async def on_exit(cell: ActorCell[Any], reason: ExitReason) -> None:
        exits.append(reason)
        done.set()

    journal: list[str] = []
    cell = _cell(journal, on_exit=on_exit)
    await cell.start()
    cell.ref.stop()
    await asyncio.wait_for(done.wait(), 5)
    assert exits == [None]
    assert journal == ["start", "stop"]


async def test_ask_with_a_timeout_raises_the_request_timeout_error() -> None:
    cell = _cell([])
    await cell.start()
    gate = asyncio.Event()
    with pytest.raises(RequestTimeoutError):
        await cell.ref.ask(("block", gate), timeout=0.01)
    gate.set()
    await cell.stop()


async def test_an_asker_that_gave_up_before_its_turn_is_skipped() -> None:
    journal: list[str] = []
    gate = asyncio.Event()
    cell = _cell(journal)
    await cell.start()
    first = cell.ref.ask_nowait(("block", gate))
    abandoned = cell.ref.ask_nowait(("echo", "abandoned"))
    abandoned.cancel()
    gate.set()
    await first
    assert await cell.ref.ask(("echo", "after"), timeout=5) == "after"
    assert "echo:abandoned" not in journal
    await cell.stop()


class Batcher(Actor[int]):
    batch_limit = 8

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches

    async def on_message(self, message: int) -> int:
        self.batches.append([message])
        return message

    async def on_batch(self, messages: list[int]) -> list[Outcome]:
        self.batches.append(list(messages))
        return [(True, m * 10) for m in messages]


async def test_queued_messages_are_handed_over_in_batches_and_each_asker_answered() -> None:
    batches: list[list[int]] = []
    cell: ActorCell[int] = ActorCell("t/b/0", lambda: Batcher(batches))
    await cell.start()
    futures = [cell.ref.ask_nowait(i) for i in range(20)]
    assert [await f for f in futures] == [i * 10 for i in range(20)]
    assert [m for b in batches for m in b] == list(range(20))  # in order, each once
    assert max(len(b) for b in batches) == 8
    assert cell.statistics().processed == 20
    await cell.stop()
