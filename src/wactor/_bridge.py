"""The one bridge between worker threads and the event loop.

A component's export call runs on a worker thread (:func:`run_on_thread`); a host function it
calls that must touch the loop (a mailbox, a timer) waits there for the loop
(:func:`run_on_loop`). How long it waits is not a guess of this module: a worker thread
carries the deadline of the call it runs (:func:`thread_deadline`, set around each guest call),
and the wait ends at that deadline. A wait without a deadline ends when the loop stops, so a
worker thread never outlives its host waiting for an answer that cannot come.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = [
    "LoopGoneError",
    "LoopWaitTimeout",
    "run_on_loop",
    "run_on_thread",
    "set_thread_deadline",
    "thread_deadline",
]

T = TypeVar("T")

_local = threading.local()
_LIVENESS_SLICE = 0.5  # how often an unbounded wait checks that the loop still runs


class LoopWaitTimeout(TimeoutError):
    """The thread's deadline passed while it waited for the loop."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"no answer from the event loop within {waited:.3g} s")
        self.waited = waited


class LoopGoneError(RuntimeError):
    """The event loop stopped (the host is closing) while a thread waited for it."""


def thread_deadline() -> float:
    """The ``time.monotonic()`` by which this thread's current call must end (``inf``: none)."""
    deadline: float = getattr(_local, "deadline", math.inf)
    return deadline


def set_thread_deadline(deadline: float) -> float:
    """Set this thread's call deadline; return the previous one (to restore it after)."""
    previous = thread_deadline()
    _local.deadline = deadline
    return previous


def run_on_loop(loop: asyncio.AbstractEventLoop, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """From a worker thread: run ``make()`` on ``loop`` and wait for its result.

    The wait ends at the thread's deadline (:class:`LoopWaitTimeout`, the coroutine is
    cancelled) or when the loop stops (:class:`LoopGoneError`).
    """
    if _running_loop() is loop:
        raise RuntimeError("run_on_loop called on the loop's own thread")
    if loop.is_closed() or not loop.is_running():
        raise LoopGoneError("the event loop is not running")
    started = time.monotonic()
    deadline = thread_deadline()
    future = asyncio.run_coroutine_threadsafe(make(), loop)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            future.cancel()
            raise LoopWaitTimeout(time.monotonic() - started)
        try:
            return future.result(min(left, _LIVENESS_SLICE))
        except concurrent.futures.TimeoutError:
            if not loop.is_running():
                future.cancel()
                raise LoopGoneError("the event loop stopped") from None
        except concurrent.futures.CancelledError:
            raise LoopGoneError("the event loop cancelled the call") from None


async def run_on_thread(executor: concurrent.futures.Executor | None, fn: Callable[[], T]) -> T:
    """From the loop: run the blocking ``fn`` on ``executor`` (the loop's default if ``None``)."""
    return await asyncio.get_running_loop().run_in_executor(executor, fn)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
