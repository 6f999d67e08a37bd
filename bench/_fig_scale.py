"""Figure 7: total request throughput with 1, 10, 100 and 1000 WAT echo components receiving
concurrently, and how much of the two cores the process uses (CPU time / wall time)."""

from __future__ import annotations

from typing import Any

import psutil
from _common import (
    Ctx,
    FigureResult,
    Row,
    collect,
    median,
    open_host,
    perf,
    stock_setup,
    summary,
    wat_binary,
    write_manifest,
)
from _fig_calls import P16, _concurrent_rate

COUNTS = (1, 10, 100, 1000)
INFLIGHT = 64


def _cpu() -> float:
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


def _measured(fn: Any) -> Any:
    async def wrapped() -> tuple[float, float]:
        c0, w0 = _cpu(), perf()
        rate = await fn()
        return rate, (_cpu() - c0) / (perf() - w0)

    return wrapped


async def run(ctx: Ctx) -> FigureResult:
    res = FigureResult()
    wasm = wat_binary("echo")
    total = ctx.q(3000, 1000)
    setup = stock_setup(ctx, wasm, wasi=False)
    try:
        for count in COUNTS:
            collect()
            folder = ctx.fresh_dir(f"scale{count}")
            targets = [f"scale/c{i}/0" for i in range(count)]
            manifests = [write_manifest(folder, t, wasm) for t in targets]
            stock = [setup.instance() for _ in range(count)]
            async with open_host(ctx) as host:
                t0 = perf()
                for path in manifests:
                    await host.start(path)
                started = perf() - t0

                async def ours_run(host: Any = host, targets: list[str] = targets) -> float:
                    return await _concurrent_rate(host, targets, P16, total, INFLIGHT)

                async def stock_run(stock: list[Any] = stock) -> float:
                    n = len(stock)
                    start = perf()
                    for i in range(total):
                        stock[i % n].call(P16)
                    return total / (perf() - start)

                measured_ours = _measured(ours_run)
                measured_stock = _measured(stock_run)
                await measured_ours()  # warm up: every component gets messages
                await measured_stock()
                ours: list[tuple[float, float]] = []
                base: list[tuple[float, float]] = []
                for _ in range(ctx.reps):
                    base.append(await measured_stock())
                    ours.append(await measured_ours())
            del stock
            res.details[str(count)] = {
                "components": count,
                "start_all_s": started,
                "requests_per_run": total,
                "in_flight": INFLIGHT,
                "ours_rps": summary([r for r, _ in ours]),
                "ours_cpu_per_wall": summary([c for _, c in ours]),
                "baseline_rps": summary([r for r, _ in base]),
                "baseline_cpu_per_wall": summary([c for _, c in base]),
            }
            cpu = median(c for _, c in ours)
            res.rows.append(
                Row(
                    f"7. throughput, {count} WAT echo component{'s' if count > 1 else ''}",
                    "req/s",
                    median(r for r, _ in ours),
                    median(r for r, _ in base),
                    runs=ctx.reps,
                    note=f"{INFLIGHT} in flight across all; process CPU/wall {cpu:.2f} "
                    f"(2 cores = 2.0); baseline: stock calls round-robin on one thread; "
                    f"starting all {count}: {started:.2f} s",
                )
            )
    finally:
        setup.close()
    return res
