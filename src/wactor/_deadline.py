"""Waiting for an answer's future with a timeout, without a task or a second future.

``asyncio.wait_for`` wraps the awaited future in a waiter and a callback chain, which costs more
than a whole short request on a small machine. An answer's future is owned by its request, so
the timeout can simply fail that future: one timer, one ``await``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_answer"]

T = TypeVar("T")


async def wait_answer(
    fut: asyncio.Future[T], timeout: float, on_timeout: Callable[[], BaseException]
) -> T:
    """Await ``fut``; after ``timeout`` seconds fail it with ``on_timeout()`` (and raise that).

    Whoever would answer ``fut`` later must check ``fut.done()`` first (answers of a request
    that gave up are dropped). Cancelling the waiter cancels ``fut``, as ``wait_for`` does.
    """
    if fut.done():
        return fut.result()
    timer = fut.get_loop().call_later(timeout, _expire, fut, on_timeout)
    try:
        return await fut
    finally:
        timer.cancel()


def _expire(fut: asyncio.Future[T], on_timeout: Callable[[], BaseException]) -> None:
    if not fut.done():
        fut.set_exception(on_timeout())
