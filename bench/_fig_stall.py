"""Figure 11: the worst stall of the host's event loop that a hostile guest achieves.

The guest (``bench/wat/spin.wat``) answers at once for most payloads and computes for ~30 ms
when the payload says so. A driver sends it requests one after another through ``host.request``,
50 fast ones then one slow one, for a fixed time; every run has a component of its own, started
for it. Meanwhile a probe task on the same loop sleeps 1 ms at a time and records by how much
each sleep overshot: a loop blocked by a call shows up as one late probe. The baseline is the
same probe while the driver sends only fast requests.

Only the public API is used, so the figure measures whatever the host does with such a guest
(run every call on a worker thread, or run short calls on the loop and move a component that
overstays away from it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from _common import (
    Ctx,
    FigureResult,
    Row,
    median,
    open_host,
    percentile,
    perf,
    stock_setup,
    summary,
    write_manifest,
)
from _spin import compute_ms, rounds_per_ms, spin_payload, spin_wasm

SLOW_MS = 30.0
FAST_PER_SLOW = 50
PROBE_S = 0.001
STALL_S = 0.002  # a probe later than this counts toward the total stall time
TIMEOUT = 60.0
FAST = b"0123456789abcdef"


@dataclass
class _Run:
    lags: list[float] = field(default_factory=list)  # seconds each probe overshot
    requests: int = 0
    slow: int = 0
    slow_latency: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def worst_ms(self) -> float:
        return max(self.lags, default=0.0) * 1e3

    @property
    def stalled_ms(self) -> float:
        return sum(lag for lag in self.lags if lag > STALL_S) * 1e3

    @property
    def stalls(self) -> int:
        return sum(1 for lag in self.lags if lag > STALL_S)

    def as_dict(self) -> dict[str, Any]:
        lags = sorted(self.lags)
        return {
            "seconds": self.seconds,
            "requests": self.requests,
            "slow_requests": self.slow,
            "slow_request_ms_median": median(self.slow_latency) * 1e3
            if self.slow_latency
            else None,
            "probes": len(lags),
            "worst_ms": self.worst_ms,
            "p99_ms": percentile(lags, 99) * 1e3,
            "stalled_ms": self.stalled_ms,
            "stalls": self.stalls,
        }


async def _probe_run(host: Any, target: str, slow: bytes | None, seconds: float) -> _Run:
    run = _Run()
    stop = asyncio.Event()

    async def probe() -> None:
        sleep, lags = asyncio.sleep, run.lags
        while not stop.is_set():
            start = perf()
            await sleep(PROBE_S)
            lags.append(perf() - start - PROBE_S)

    prober = asyncio.get_running_loop().create_task(probe())
    await asyncio.sleep(0)
    request = host.request
    began = perf()
    end = began + seconds
    i = 0
    try:
        while perf() < end:
            i += 1
            if slow is not None and i % (FAST_PER_SLOW + 1) == 0:
                t0 = perf()
                await request(target, slow, timeout=TIMEOUT)
                run.slow_latency.append(perf() - t0)
                run.slow += 1
            else:
                await request(target, FAST, timeout=TIMEOUT)
        run.requests = i
        run.seconds = perf() - began
    finally:
        stop.set()
        await prober
    return run


async def run(ctx: Ctx) -> FigureResult:
    res = FigureResult()
    wasm = spin_wasm()
    seconds = 1.2 if ctx.quick else 2.5
    setup = stock_setup(ctx, wasm, wasi=False)
    try:
        stock = setup.instance()
        slow = spin_payload(round(rounds_per_ms(stock) * SLOW_MS))
        slow_ms = compute_ms(stock, slow)
    finally:
        setup.close()
    base: list[_Run] = []
    hostile: list[_Run] = []
    async with open_host(ctx) as host:
        folder = ctx.fresh_dir("m")

        async def fresh(name: str) -> str:
            # Each run gets a component of its own: where the host runs a component's calls may
            # depend on its history, and one run must not inherit the last one's.
            target = f"bench/{name}/0"
            await host.start(write_manifest(folder, target, wasm))
            if await host.request(target, FAST, timeout=TIMEOUT) != FAST:
                raise RuntimeError("spin component did not echo its payload")
            return target

        warm = await fresh("warm")
        if await host.request(warm, slow, timeout=TIMEOUT) != slow:
            raise RuntimeError("spin component did not echo its payload after computing")
        await _probe_run(host, warm, slow, 0.3)  # warm up
        await host.stop(warm)
        for i in range(ctx.reps):  # interleaved, so drift hits both sides alike
            for side, pattern in ((base, None), (hostile, slow)):
                target = await fresh(f"{'hostile' if pattern else 'fast'}{i}")
                side.append(await _probe_run(host, target, pattern, seconds))
                await host.stop(target)
    res.details = {
        "slow_call_ms_stock": slow_ms,
        "fast_per_slow": FAST_PER_SLOW,
        "probe_sleep_ms": PROBE_S * 1e3,
        "stall_threshold_ms": STALL_S * 1e3,
        "seconds_per_run": seconds,
        "fast_only": [r.as_dict() for r in base],
        "hostile": [r.as_dict() for r in hostile],
        "worst_ms": {
            "fast_only": summary([r.worst_ms for r in base]),
            "hostile": summary([r.worst_ms for r in hostile]),
        },
    }
    slow_seen = [ms for r in hostile for ms in r.slow_latency]
    res.rows.append(
        Row(
            f"11. worst event-loop stall, hostile guest ({FAST_PER_SLOW} fast calls : "
            f"1 of ~{SLOW_MS:g} ms)",
            "ms",
            median(r.worst_ms for r in hostile),
            median(r.worst_ms for r in base),
            runs=ctx.reps,
            note=f"probe: asyncio.sleep({PROBE_S:g}) overshoot on the host's loop during "
            f"{seconds:g} s of sequential requests; baseline: the same with fast calls only; "
            f"one slow call: {slow_ms:.1f} ms stock, "
            f"{median(slow_seen) * 1e3 if slow_seen else float('nan'):.1f} ms as a request; "
            "lower is better",
        )
    )
    res.rows.append(
        Row(
            f"11. total event-loop stall (probes late by > {STALL_S * 1e3:g} ms), hostile guest",
            "ms",
            median(r.stalled_ms for r in hostile),
            median(r.stalled_ms for r in base),
            runs=ctx.reps,
            note=f"per {seconds:g} s run; late probes per run: "
            f"{median(r.stalls for r in hostile):.0f} hostile, "
            f"{median(r.stalls for r in base):.0f} fast only; "
            f"requests per run: {median(r.requests for r in hostile):.0f} hostile "
            f"({median(r.slow for r in hostile):.0f} slow), "
            f"{median(r.requests for r in base):.0f} fast only; lower is better",
        )
    )
    return res
