"""Figure 1: actor ``tell`` throughput (no wasm) against a bare ``asyncio.Queue``."""

from __future__ import annotations

import asyncio
from typing import Any

from _common import Ctx, FigureResult, Row, perf, summary

BATCH = 256  # the producer yields to the loop every BATCH messages
CAPACITY = 1024


async def _actor_run(n: int, *, awaiting: bool) -> float:
    from wactor.actors import Actor, ActorCell

    class Sink(Actor[Any]):
        async def on_message(self, message: Any) -> None:
            return None

    cell: ActorCell[Any] = ActorCell(
        "bench/sink/0",
        Sink,
        capacity=CAPACITY,
        backpressure="wait" if awaiting else "reject",
    )
    await cell.start()
    ref = cell.ref
    try:
        start = perf()
        if awaiting:
            for i in range(n):
                await ref.tell(i)
        else:
            for i in range(n):
                ref.tell_nowait(i)
                if i % BATCH == BATCH - 1:
                    await asyncio.sleep(0)
        # The mailbox is FIFO: the answer to this ask comes once every tell was processed.
        await ref.ask(None)
        elapsed = perf() - start
        processed = cell.processed
    finally:
        await cell.stop()
    if processed != n + 1:
        raise RuntimeError(f"actor processed {processed} of {n + 1} messages")
    return n / elapsed


async def _queue_run(n: int, *, awaiting: bool) -> float:
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=CAPACITY)
    loop = asyncio.get_running_loop()

    async def consumer() -> None:
        while True:
            item = await queue.get()
            if isinstance(item, asyncio.Future):
                item.set_result(None)
                return

    task = loop.create_task(consumer())
    await asyncio.sleep(0)
    start = perf()
    if awaiting:
        for i in range(n):
            await queue.put(i)
    else:
        for i in range(n):
            queue.put_nowait(i)
            if i % BATCH == BATCH - 1:
                await asyncio.sleep(0)
    done = loop.create_future()
    await queue.put(done)
    await done
    elapsed = perf() - start
    await task
    return n / elapsed


async def run(ctx: Ctx) -> FigureResult:
    n = ctx.q(200_000, 50_000)
    res = FigureResult()
    for awaiting in (False, True):
        await _actor_run(n // 10, awaiting=awaiting)  # warm up
        await _queue_run(n // 10, awaiting=awaiting)
        ours: list[float] = []
        base: list[float] = []
        for _ in range(ctx.reps):  # interleaved, so drift hits both sides alike
            base.append(await _queue_run(n, awaiting=awaiting))
            ours.append(await _actor_run(n, awaiting=awaiting))
        key = "await_tell" if awaiting else "tell_nowait"
        res.details[key] = {"messages": n, "ours": summary(ours), "baseline": summary(base)}
        o, b = summary(ours)["median"], summary(base)["median"]
        if awaiting:
            res.rows.append(
                Row(
                    "1b. actor `await tell` (backpressure=wait) vs `await Queue.put`",
                    "msg/s",
                    o,
                    b,
                    runs=ctx.reps,
                    note=f"mailbox and queue bounded at {CAPACITY}; informational",
                )
            )
        else:
            row = Row(
                "1. actor `tell_nowait` vs asyncio.Queue `put_nowait`",
                "msg/s",
                o,
                b,
                target="ratio ≥ 0.7",
                runs=ctx.reps,
                note=f"{n} msgs/run, producer yields every {BATCH}; bounded at {CAPACITY}",
            )
            row.met = row.ratio is not None and row.ratio >= 0.7
            res.rows.append(row)
    return res
