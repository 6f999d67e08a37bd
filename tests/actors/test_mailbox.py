"""The bounded mailbox: FIFO order, the two backpressure policies, closing and reopening."""

from __future__ import annotations

import asyncio

import pytest

from wactor.actors import Mailbox, MailboxStats
from wactor.errors import ActorStoppedError, QueueFullError


async def test_items_come_out_in_the_order_they_went_in() -> None:
    box: Mailbox[int] = Mailbox("t/a/0", 8)
    for i in range(5):
        box.put_nowait(i)
    assert [await box.get() for _ in range(5)] == [0, 1, 2, 3, 4]


async def test_a_full_reject_mailbox_refuses_at_once_and_counts_it() -> None:
    box: Mailbox[int] = Mailbox("t/a/0", 2, "reject")
    await box.put(1)
    await box.put(2)
    with pytest.raises(QueueFullError) as info:
        await box.put(3)
    assert info.value.capacity == 2
    assert box.statistics() == MailboxStats(depth=2, capacity=2, accepted=2, refused=1)


async def test_a_full_wait_mailbox_holds_the_sender_until_there_is_room() -> None:
    box: Mailbox[int] = Mailbox("t/a/0", 1, "wait")
    await box.put(1)
    sender = asyncio.create_task(box.put(2))
    await asyncio.sleep(0)
    assert not sender.done()
    assert await box.get() == 1
    await asyncio.wait_for(sender, 5)
    assert await box.get() == 2
    assert box.statistics().refused == 0


async def test_closing_returns_what_was_queued_wakes_waiters_and_refuses_more() -> None:
    box: Mailbox[int] = Mailbox("t/a/0", 1, "wait")
    box.put_nowait(1)
    blocked = asyncio.create_task(box.put(2))
    await asyncio.sleep(0)
    assert box.close() == [1]
    with pytest.raises(ActorStoppedError):
        await asyncio.wait_for(blocked, 5)
    with pytest.raises(ActorStoppedError):
        box.put_nowait(3)
    assert await box.get() is None
    box.reopen()
    box.put_nowait(4)
    assert await box.get() == 4


async def test_a_waiting_get_is_woken_without_taking_anything() -> None:
    box: Mailbox[int] = Mailbox("t/a/0", 4)
    getter = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    box.wake()
    assert await asyncio.wait_for(getter, 5) is None
    assert len(box) == 0


async def test_push_front_puts_items_back_at_the_head_in_their_order() -> None:
    box: Mailbox[int] = Mailbox("t/a/0", 8)
    box.put_nowait(3)
    box.push_front([1, 2])
    assert box.take_ready(2) == [1, 2]
    assert box.take_ready(5) == [3]
    assert box.take_ready(5) == []


def test_a_mailbox_needs_room_for_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Mailbox("t/a/0", 0)
