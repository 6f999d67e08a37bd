"""An idle actor may answer at once on the asker's task (handle_now), with the same outcomes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wactor.actors import NOT_NOW, Actor, ActorCell, ExitReason, FailureAction


class Quick(Actor[Any]):
    """Answers ``("echo", x)`` at once, ``("slow", x)`` only on its task; ``("crash", text)``
    raises at once; the journal says which path each message took."""

    def __init__(self, journal: list[str]) -> None:
        self.journal = journal

    def handle_now(self, message: Any) -> Any:
        kind, arg = message
        if kind == "slow":
            return NOT_NOW
        self.journal.append(f"now:{arg}")
        if kind == "crash":
            raise RuntimeError(arg)
        return arg

    async def on_message(self, message: Any) -> Any:
        kind, arg = message
        self.journal.append(f"task:{arg}")
        if kind == "slow":
            await asyncio.sleep(0)
        return arg

    async def on_failure(self, exc: BaseException, message: Any) -> FailureAction:
        self.journal.append(f"failure:{exc}")
        return "crash"


async def test_an_idle_actor_answers_at_once_and_counts_it() -> None:
    journal: list[str] = []
    cell: ActorCell[Any] = ActorCell("t/q/0", lambda: Quick(journal))
    await cell.start()
    await asyncio.sleep(0)  # its task now waits for mail
    fut = cell.ref.ask_nowait(("echo", 1))
    assert fut.done()  # answered before the asker yielded once
    assert fut.result() == 1
    assert journal == ["now:1"]
    assert cell.statistics().processed == 1
    await cell.stop()


async def test_a_busy_actor_keeps_mailbox_order() -> None:
    journal: list[str] = []
    cell: ActorCell[Any] = ActorCell("t/q/0", lambda: Quick(journal))
    await cell.start()
    await asyncio.sleep(0)
    first = cell.ref.ask_nowait(("slow", "a"))  # queued: only its task handles it
    second = cell.ref.ask_nowait(("echo", "b"))  # something is queued: no answer at once
    assert not second.done()
    assert await asyncio.gather(first, second) == ["a", "b"]
    assert journal == ["task:a", "task:b"]
    await cell.stop()


async def test_a_failure_at_once_goes_through_on_failure_and_the_exit_handler() -> None:
    journal: list[str] = []
    exits: list[ExitReason] = []
    exited = asyncio.Event()

    async def on_exit(cell: ActorCell[Any], reason: ExitReason) -> None:
        exits.append(reason)
        exited.set()

    cell: ActorCell[Any] = ActorCell("t/q/0", lambda: Quick(journal), on_exit=on_exit)
    await cell.start()
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="boom"):
        await cell.ref.ask(("crash", "boom"), timeout=5)
    await asyncio.wait_for(exited.wait(), 5)
    assert journal == ["now:boom", "failure:boom"]
    assert isinstance(exits[0], RuntimeError)
    stats = cell.statistics()
    assert (stats.processed, stats.failed, stats.state) == (0, 1, "failed")
    await cell.stop()


async def test_asking_in_a_tight_loop_still_lets_the_loop_run() -> None:
    journal: list[str] = []
    cell: ActorCell[Any] = ActorCell("t/q/0", lambda: Quick(journal))
    await cell.start()
    await asyncio.sleep(0)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(ticker())
    for i in range(1000):
        assert await cell.ref.ask(("echo", i)) == i
    other.cancel()
    assert ticks > 10  # the other task ran meanwhile
    assert sum(1 for j in journal if j.startswith("task:")) > 10  # some went by the mailbox
    await cell.stop()
