"""The thread↔loop bridge: a worker thread waits for the loop until its call's deadline, no more."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest

from wactor._bridge import (
    LoopGoneError,
    LoopWaitTimeout,
    run_on_loop,
    run_on_thread,
    set_thread_deadline,
    thread_deadline,
)


async def test_a_worker_gets_the_loops_answer() -> None:
    loop = asyncio.get_running_loop()

    async def answer() -> int:
        return 42

    assert await run_on_thread(None, lambda: run_on_loop(loop, answer)) == 42


async def test_the_wait_ends_at_the_threads_deadline_and_the_work_is_cancelled() -> None:
    loop = asyncio.get_running_loop()
    cancelled = asyncio.Event()

    async def never() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def worker() -> None:
        set_thread_deadline(time.monotonic() + 0.05)
        try:
            run_on_loop(loop, never)
        finally:
            set_thread_deadline(math.inf)

    with pytest.raises(LoopWaitTimeout):
        await run_on_thread(None, worker)
    await asyncio.wait_for(cancelled.wait(), 10)


def test_a_wait_without_deadline_ends_when_the_loop_stops() -> None:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    outcome: list[BaseException] = []

    async def never() -> None:
        started.set()
        await asyncio.Event().wait()

    def worker() -> None:
        try:
            run_on_loop(loop, never)
        except BaseException as exc:  # noqa: BLE001 - what the worker saw is the result
            outcome.append(exc)

    def stop_when_started() -> None:
        started.wait(10)
        loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=worker)
    stopper = threading.Thread(target=stop_when_started)
    loop.call_soon(thread.start)
    loop.call_soon(stopper.start)
    loop.run_forever()
    thread.join(10)
    stopper.join(10)
    pending = asyncio.all_tasks(loop)
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()

    assert not thread.is_alive()
    assert [type(e) for e in outcome] == [LoopGoneError]


def test_the_deadline_belongs_to_the_thread() -> None:
    previous = set_thread_deadline(123.0)
    seen: list[float] = []
    other = threading.Thread(target=lambda: seen.append(thread_deadline()))
    other.start()
    other.join()
    assert thread_deadline() == 123.0
    set_thread_deadline(previous)
    assert seen == [math.inf]


async def test_calling_it_on_the_loops_own_thread_is_refused() -> None:
    async def answer() -> int:
        return 1

    with pytest.raises(RuntimeError, match="own thread"):
        run_on_loop(asyncio.get_running_loop(), answer)
