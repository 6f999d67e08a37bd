"""Figures 2, 3, 4 and 6: request round trips to echo components against stock wasmtime-py calls.

The baseline is what a user would write without wactor: stock ``Func.__call__`` on
``handle-message`` with a ``wasmtime.component.Record`` message, then ``post_return``, in a plain
loop on one thread. It uses the same engine settings and the same compiled artifact as the host
(fuel and epochs on, an unreachable budget), so the ratio isolates the host's own path: envelope,
mailbox, actor, worker thread, calling layer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import (
    Ctx,
    FigureResult,
    Row,
    StockInstance,
    median,
    open_host,
    percentile,
    perf,
    rate_sync,
    stock_setup,
    summary,
    wat_binary,
    write_manifest,
)

TIMEOUT = 60.0
P16 = b"0123456789abcdef"


async def _seq_rate(host: Any, target: str, payload: bytes, n: int) -> float:
    request = host.request
    start = perf()
    for _ in range(n):
        await request(target, payload, timeout=TIMEOUT)
    return n / (perf() - start)


async def _concurrent_rate(
    host: Any, targets: list[str], payload: bytes, total: int, inflight: int
) -> float:
    """``inflight`` tasks each keep one request outstanding, round-robin over ``targets``."""
    request = host.request
    per_task = max(1, total // inflight)
    count = len(targets)

    async def worker(k: int) -> None:
        for j in range(per_task):
            await request(targets[(k + j * inflight) % count], payload, timeout=TIMEOUT)

    start = perf()
    await asyncio.gather(*(worker(k) for k in range(inflight)))
    return per_task * inflight / (perf() - start)


def _check(reply: Any, payload: bytes, who: str) -> None:
    if reply != payload:
        raise RuntimeError(
            f"{who}: echo returned {len(reply or b'')} bytes, expected {len(payload)}"
        )


async def _echo_figure(
    ctx: Ctx, *, number: str, label: str, wasm: Path, wasi: bool, memory: str, n: int
) -> FigureResult:
    res = FigureResult()
    inflight = 16
    setup = stock_setup(ctx, wasm, wasi=wasi)
    try:
        stock = setup.instance()
        _check(stock.call(P16), P16, "stock")
        async with open_host(ctx) as host:
            target = "bench/echo/0"
            await host.start(write_manifest(ctx.fresh_dir("m"), target, wasm, memory=memory))
            _check(await host.request(target, P16, timeout=TIMEOUT), P16, "host")
            # warm up both sides
            rate_sync(lambda: stock.call(P16), max(50, n // 10))
            await _seq_rate(host, target, P16, max(50, n // 10))
            await _concurrent_rate(host, [target], P16, max(64, n // 10), inflight)
            ours: list[float] = []
            conc: list[float] = []
            base: list[float] = []
            for _ in range(ctx.reps):
                base.append(rate_sync(lambda: stock.call(P16), n))
                ours.append(await _seq_rate(host, target, P16, n))
                conc.append(await _concurrent_rate(host, [target], P16, n, inflight))
    finally:
        setup.close()
    b = median(base)
    res.details = {
        "requests_per_run": n,
        "payload_bytes": len(P16),
        "ours_sequential": summary(ours),
        f"ours_{inflight}_in_flight": summary(conc),
        "baseline_stock_call": summary(base),
    }
    row = Row(
        f"{number}. {label} `host.request` 16 B, sequential",
        "rt/s",
        median(ours),
        b,
        target="ratio ≥ 0.6",
        runs=ctx.reps,
        note=f"{n} requests/run",
    )
    row.met = row.ratio is not None and row.ratio >= 0.6
    res.rows.append(row)
    res.rows.append(
        Row(
            f"{number}. {label} `host.request` 16 B, {inflight} in flight",
            "rt/s",
            median(conc),
            b,
            runs=ctx.reps,
            note="one component; baseline is the sequential stock call (it has no concurrency)",
        )
    )
    return res


async def run_wat_echo(ctx: Ctx) -> FigureResult:
    return await _echo_figure(
        ctx,
        number="2",
        label="WAT echo",
        wasm=wat_binary("echo"),
        wasi=False,
        memory="32MiB",
        n=ctx.q(2000, 600),
    )


async def run_python_echo(ctx: Ctx) -> FigureResult:
    return await _echo_figure(
        ctx,
        number="3",
        label="Python echo",
        wasm=ctx.py_echo(),
        wasi=True,
        memory="64MiB",
        n=ctx.q(1000, 300),
    )


# --- figure 4: latency ----------------------------------------------------------------------


async def _latencies_seq(call: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = perf()
        await call()
        out.append(perf() - start)
    return out


async def _latencies_concurrent(
    call: Callable[[], Awaitable[Any]], n: int, requesters: int
) -> list[float]:
    out: list[float] = []
    per = max(1, n // requesters)

    async def requester() -> None:
        for _ in range(per):
            start = perf()
            await call()
            out.append(perf() - start)

    await asyncio.gather(*(requester() for _ in range(requesters)))
    return out


def _pcts(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return percentile(s, 50) * 1e6, percentile(s, 99) * 1e6


async def run_latency(ctx: Ctx) -> FigureResult:
    res = FigureResult()
    wasm = wat_binary("echo")
    n = ctx.q(2000, 500)
    requesters = 64
    setup = stock_setup(ctx, wasm, wasi=False)
    try:
        stock = setup.instance()
        async with open_host(ctx) as host:
            target = "bench/echo/0"
            await host.start(write_manifest(ctx.fresh_dir("m"), target, wasm))

            async def call() -> Any:
                return await host.request(target, P16, timeout=TIMEOUT)

            async def stock_call() -> Any:
                return stock.call(P16)

            await _latencies_seq(call, 200)
            await _latencies_concurrent(call, 640, requesters)
            await _latencies_seq(stock_call, 200)
            runs: dict[str, list[tuple[float, float]]] = {"light": [], "saturated": [], "stock": []}
            for _ in range(ctx.reps):
                runs["stock"].append(_pcts(await _latencies_seq(stock_call, n)))
                runs["light"].append(_pcts(await _latencies_seq(call, n)))
                runs["saturated"].append(
                    _pcts(await _latencies_concurrent(call, n * 2, requesters))
                )
    finally:
        setup.close()
    med = {k: (median(p[0] for p in v), median(p[1] for p in v)) for k, v in runs.items()}
    res.details = {
        k: {"p50_us_runs": [p[0] for p in v], "p99_us_runs": [p[1] for p in v]}
        for k, v in runs.items()
    }
    res.details["samples_per_run"] = {"light": n, "saturated": n * 2, "stock": n}
    res.details["requesters_saturated"] = requesters
    for i, pct in enumerate(("p50", "p99")):
        res.rows.append(
            Row(
                f"4. WAT echo latency {pct}, light load (sequential)",
                "µs",
                med["light"][i],
                med["stock"][i],
                runs=ctx.reps,
                note="baseline: stock direct call, same percentile; lower is better",
            )
        )
    for i, pct in enumerate(("p50", "p99")):
        res.rows.append(
            Row(
                f"4. WAT echo latency {pct}, {requesters} concurrent requesters",
                "µs",
                med["saturated"][i],
                None,
                runs=ctx.reps,
                note="queueing included (Little's law: ≈ requesters / throughput)",
            )
        )
    return res


# --- figure 6: payload sweep ----------------------------------------------------------------

SIZES = (("16 B", 16), ("1 KiB", 1024), ("64 KiB", 64 << 10), ("1 MiB", 1 << 20))
RUN_SECONDS = 0.3
STOCK_BOX_SECONDS = 5.0
STOCK_BOX_CALLS = 3


def _stock_sweep(stock: StockInstance, payload: bytes, reps: int) -> dict[str, Any]:
    start = perf()
    reply = stock.call(payload)
    one = perf() - start
    _check(reply, payload, "stock")
    if one > 0.5:
        # Time-boxed: a handful of single calls, the rate is 1 / median call time.
        calls = [one]
        spent = one
        while len(calls) < STOCK_BOX_CALLS and spent + one < STOCK_BOX_SECONDS:
            start = perf()
            stock.call(payload)
            calls.append(perf() - start)
            spent += calls[-1]
        return {
            "median": 1 / median(calls),
            "runs": len(calls),
            "call_seconds": calls,
            "time_boxed": (
                f"{len(calls)} single calls (≤{STOCK_BOX_CALLS} calls, "
                f"≤{STOCK_BOX_SECONDS:.0f} s); rate = 1 / median call time"
            ),
        }
    n = max(3, min(3000, round(RUN_SECONDS / one)))
    samples = [rate_sync(lambda: stock.call(payload), n) for _ in range(reps)]
    return {**summary(samples), "calls_per_run": n}


async def run_payload_sweep(ctx: Ctx) -> FigureResult:
    res = FigureResult()
    wasm = wat_binary("echo")
    setup = stock_setup(ctx, wasm, wasi=False)
    try:
        stock = setup.instance()
        async with open_host(ctx) as host:
            target = "bench/echo/0"
            await host.start(write_manifest(ctx.fresh_dir("m"), target, wasm, memory="64MiB"))
            for label, size in SIZES:
                payload = bytes(i % 251 for i in range(size))
                entry: dict[str, Any] = {"bytes": size}
                try:
                    start = perf()
                    _check(await host.request(target, payload, timeout=TIMEOUT), payload, "host")
                    one = perf() - start
                    n = max(3, min(5000, round(RUN_SECONDS / max(one, 1e-6))))
                    await _seq_rate(host, target, payload, max(1, n // 5))  # warm up
                    ours = [await _seq_rate(host, target, payload, n) for _ in range(ctx.reps)]
                    entry["ours"] = {**summary(ours), "requests_per_run": n}
                except Exception as exc:  # noqa: BLE001 - one size failing must not hide the others
                    entry["ours"] = {"error": f"{type(exc).__name__}: {exc}"}
                try:
                    entry["baseline"] = _stock_sweep(stock, payload, ctx.reps)
                except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
                    entry["baseline"] = {"error": f"{type(exc).__name__}: {exc}"}
                res.details[label] = entry
                o = entry["ours"].get("median")
                b = entry["baseline"].get("median")
                target_text = met = None
                if size == 64 << 10:
                    target_text = "ours ≥ 1000 rt/s"
                    met = o is not None and o >= 1000
                notes = []
                if "time_boxed" in entry["baseline"]:
                    notes.append("baseline time-boxed: " + entry["baseline"]["time_boxed"])
                for side in ("ours", "baseline"):
                    if "error" in entry[side]:
                        notes.append(f"{side} failed: {entry[side]['error']}")
                res.rows.append(
                    Row(
                        f"6. WAT echo `host.request` {label}",
                        "rt/s",
                        o,
                        b,
                        target=target_text,
                        met=met,
                        runs=entry["ours"].get("runs"),
                        note="; ".join(notes) or None,
                    )
                )
    finally:
        setup.close()
    return res
