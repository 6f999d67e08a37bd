"""Owned tasks: what an owner starts it tracks, and its close() cancels and joins."""

from __future__ import annotations

import asyncio

import pytest

from wactor._tasks import TaskOwner


async def test_close_cancels_and_joins_every_task() -> None:
    owner = TaskOwner("test")
    unwound: list[str] = []

    async def sleeper(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # unwinding takes a turn of the loop: close must wait for it
            unwound.append(name)

    owner.spawn(sleeper("a"))
    owner.spawn(sleeper("b"))
    await asyncio.sleep(0)

    await owner.close()

    assert sorted(unwound) == ["a", "b"]
    assert len(owner) == 0


async def test_nothing_starts_after_close_and_close_is_idempotent() -> None:
    owner = TaskOwner("test")
    await owner.close()
    await owner.close()

    async def work() -> None:
        return None

    with pytest.raises(RuntimeError, match="closed"):
        owner.spawn(work())


async def test_a_task_may_cancel_its_siblings_without_cancelling_itself() -> None:
    owner = TaskOwner("test")
    done = asyncio.Event()

    async def sibling() -> None:
        await asyncio.Event().wait()

    async def leader() -> None:
        owner.cancel()
        await owner.join()
        await asyncio.sleep(0)
        done.set()

    owner.spawn(sibling())
    owner.spawn(leader())

    await asyncio.wait_for(done.wait(), 10)
    await owner.close()
