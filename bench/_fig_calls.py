"""Figures 2, 3 and 4: request round trips to echo components against stock wasmtime-py calls
(figure 6, the payload sizes, is in _fig_payload.py).

The baseline is what a user would write without wactor: stock ``Func.__call__`` on
``handle-message`` with a ``wasmtime.component.Record`` message, then ``post_return``, in a plain
loop on one thread. It uses the same engine settings and the same compiled artifact as the host
(fuel and epochs on, an unreachable budget), so the ratio isolates the host's own path: envelope,
mailbox, actor, worker thread, calling layer.

Figure 2 also has the peer baseline (Extism's Python SDK calling a WAT plugin that echoes) and
the decomposition of one request: our calling layer called directly, a bare executor round trip,
and what the path adds to the direct call (see _baselines.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _baselines import BaselineUnavailable, DirectInstance, ExtismEcho, executor_round_trip_rate
from _common import (
    Ctx,
    FigureResult,
    Row,
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


def _us(rate: float) -> float:
    return 1e6 / rate


@dataclass
class _Peers:
    """The WAT echo's extra baselines: Extism, our calling layer alone, the thread hand-off."""

    direct: DirectInstance
    extism: ExtismEcho | None
    extism_missing: str | None

    @classmethod
    def open(cls, engine: Any, wasm: Path) -> _Peers:
        direct = DirectInstance(engine, wasm)
        _check(direct.call(P16), P16, "direct instance")
        try:
            extism: ExtismEcho | None = ExtismEcho()
        except BaselineUnavailable as exc:
            return cls(direct, None, str(exc))
        assert extism is not None
        _check(extism.call(P16), P16, "extism")
        return cls(direct, extism, None)

    def close(self) -> None:
        self.direct.close()
        if self.extism is not None:
            self.extism.close()


async def _echo_figure(
    ctx: Ctx,
    *,
    number: str,
    label: str,
    wasm: Path,
    wasi: bool,
    memory: str,
    n: int,
    target: float,
    goal: float,
    peers: bool,
) -> FigureResult:
    res = FigureResult()
    inflight = 16
    setup = stock_setup(ctx, wasm, wasi=wasi)
    extra: _Peers | None = None
    samples: dict[str, list[float]] = {
        k: [] for k in ("ours", "conc", "base", "extism", "direct", "executor")
    }
    try:
        stock = setup.instance()
        _check(stock.call(P16), P16, "stock")
        if peers:
            extra = _Peers.open(setup.engine, wasm)
        async with open_host(ctx) as host:
            target_id = "bench/echo/0"
            await host.start(write_manifest(ctx.fresh_dir("m"), target_id, wasm, memory=memory))
            _check(await host.request(target_id, P16, timeout=TIMEOUT), P16, "host")
            # warm up every side
            warm = max(50, n // 10)
            rate_sync(lambda: stock.call(P16), warm)
            await _seq_rate(host, target_id, P16, warm)
            await _concurrent_rate(host, [target_id], P16, max(64, warm), inflight)
            if extra is not None:
                rate_sync(lambda: extra.direct.call(P16), warm)
                await executor_round_trip_rate(warm)
                if extra.extism is not None:
                    rate_sync(lambda: extra.extism.call(P16), warm * 5)  # type: ignore[union-attr]
            for _ in range(ctx.reps):  # interleaved, so drift hits every side alike
                samples["base"].append(rate_sync(lambda: stock.call(P16), n))
                samples["ours"].append(await _seq_rate(host, target_id, P16, n))
                samples["conc"].append(await _concurrent_rate(host, [target_id], P16, n, inflight))
                if extra is None:
                    continue
                samples["direct"].append(rate_sync(lambda: extra.direct.call(P16), n))
                samples["executor"].append(await executor_round_trip_rate(n))
                if extra.extism is not None:
                    samples["extism"].append(
                        rate_sync(lambda: extra.extism.call(P16), n * 5)  # type: ignore[union-attr]
                    )
    finally:
        if extra is not None:
            extra.close()
        setup.close()
    ours, base = median(samples["ours"]), median(samples["base"])
    res.details = {
        "requests_per_run": n,
        "payload_bytes": len(P16),
        "ours_sequential": summary(samples["ours"]),
        f"ours_{inflight}_in_flight": summary(samples["conc"]),
        "baseline_stock_call": summary(samples["base"]),
    }
    row = Row(
        f"{number}. {label} `host.request` 16 B sequential ÷ direct stock call",
        "rt/s",
        ours,
        base,
        target=f"ratio ≥ {target:g} (goal {goal:g})",
        runs=ctx.reps,
        note=f"{n} requests/run; host.request {_us(ours):.0f} µs, stock call {_us(base):.0f} µs",
    )
    row.met = row.ratio is not None and row.ratio >= target
    res.rows.append(row)
    res.rows.append(
        Row(
            f"{number}. {label} `host.request` 16 B, {inflight} in flight",
            "rt/s",
            median(samples["conc"]),
            base,
            runs=ctx.reps,
            note="one component; baseline is the sequential stock call (it has no concurrency)",
        )
    )
    if extra is not None:
        _peer_rows(res, extra, samples, n, ctx.reps)
    return res


def _peer_rows(
    res: FigureResult, extra: _Peers, samples: dict[str, list[float]], n: int, reps: int
) -> None:
    ours = median(samples["ours"])
    if extra.extism is not None:
        res.details["extism"] = {
            "version": extra.extism.version,
            "calls_per_run": n * 5,
            "rate": summary(samples["extism"]),
        }
        ext = median(samples["extism"])
        row = Row(
            '2. WAT echo `host.request` 16 B sequential ÷ Extism `plugin.call("echo")` 16 B',
            "rt/s",
            ours,
            ext,
            target="ratio ≥ 0.2 (goal 0.5)",
            runs=reps,
            note=f"Extism {extra.extism.version} Python SDK, hand-written WAT plugin "
            f"(bench/wat/extism_echo.wat), direct synchronous call: {_us(ext):.1f} µs",
        )
        row.met = row.ratio is not None and row.ratio >= 0.2
    else:
        res.details["extism"] = {"unavailable": extra.extism_missing}
        row = Row(
            '2. WAT echo `host.request` 16 B sequential ÷ Extism `plugin.call("echo")` 16 B',
            "rt/s",
            ours,
            None,
            target="ratio ≥ 0.2 (goal 0.5)",
            runs=reps,
            note=f"no baseline: {extra.extism_missing}",
        )
    res.rows.append(row)
    direct_us = [_us(r) for r in samples["direct"]]
    executor_us = [_us(r) for r in samples["executor"]]
    overhead_us = [
        _us(o) - d for o, d in zip(samples["ours"], direct_us, strict=True)
    ]  # the same run's two sides
    stock_us = median(_us(r) for r in samples["base"])
    res.details["decomposition_us"] = {
        "host_request": summary([_us(r) for r in samples["ours"]]),
        "direct_instance_call": summary(direct_us),
        "executor_round_trip": summary(executor_us),
        "path_overhead": summary(overhead_us),
        "stock_call": summary([_us(r) for r in samples["base"]]),
        "calls_per_run": n,
    }
    res.rows.append(
        Row(
            "2. decomposition: direct instance call (`ComponentInstance.handle_message`), 16 B",
            "µs",
            median(direct_us),
            stock_us,
            runs=reps,
            note="our calling layer on the same compiled echo, no host (envelope built per call); "
            "baseline: the direct stock call; lower is better",
        )
    )
    res.rows.append(
        Row(
            "2. decomposition: bare `loop.run_in_executor(None, int)` round trip",
            "µs",
            median(executor_us),
            None,
            runs=reps,
            note="the floor of one hand-off to a worker thread and back on this machine",
        )
    )
    res.rows.append(
        Row(
            "2. decomposition: path overhead = `host.request` - direct instance call",
            "µs",
            median(overhead_us),
            None,
            runs=reps,
            note=f"host.request {_us(ours):.0f} µs - direct call {median(direct_us):.0f} µs, "
            "per run: envelope, broker, mailbox, actor and any thread hand-off",
        )
    )


async def run_wat_echo(ctx: Ctx) -> FigureResult:
    return await _echo_figure(
        ctx,
        number="2",
        label="WAT echo",
        wasm=wat_binary("echo"),
        wasi=False,
        memory="32MiB",
        n=ctx.q(2000, 600),
        target=3,
        goal=10,
        peers=True,
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
        target=2,
        goal=5,
        peers=False,
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
