"""Figure 8: the cost of a capability check and of storage set+get through the host functions.
Figure 9 lives in _fig_nats.py."""

from __future__ import annotations

import timeit

from _common import (
    KV_EXTRA,
    Ctx,
    FigureResult,
    Row,
    median,
    open_host,
    perf,
    summary,
    wat_binary,
    write_manifest,
)
from _fig_calls import P16, _seq_rate

CAPS_MANIFEST = """
[capabilities.messaging]
send = ["demo/counter/0", "shop/**", "bench/echo/*"]
"""


def _capability_check(ctx: Ctx) -> dict[str, object]:
    from wactor._ids import ComponentId
    from wactor.security import load_manifest

    path = write_manifest(
        ctx.fresh_dir("caps"), "bench/caps/0", wat_binary("echo"), extra=CAPS_MANIFEST
    )
    caps = load_manifest(path).capabilities
    number = ctx.q(200_000, 50_000)
    out: dict[str, object] = {"patterns": [p.text for p in caps.send], "calls_per_run": number}
    for case, target in (("allowed_last_pattern", "bench/echo/7"), ("denied", "other/x/0")):
        cid = ComponentId.parse(target)
        timer = timeit.Timer('allows("send", cid)', globals={"allows": caps.allows, "cid": cid})
        timer.timeit(number // 10)
        runs = [t / number * 1e9 for t in timer.repeat(repeat=ctx.reps, number=number)]
        out[case] = {"target": target, "ns": summary(runs)}
    # What the host really calls on every send/request/broadcast: the policy, whose decisions
    # are cached per (action, target).
    from wactor.security import AuditLog, MessagingPolicy

    audit = AuditLog(ctx.fresh_dir("audit") / "audit.sqlite3")
    try:
        policy = MessagingPolicy(caps, ComponentId.parse("bench/caps/0"), audit)
        cid = ComponentId.parse("bench/echo/7")
        timer = timeit.Timer('check("send", cid)', globals={"check": policy.check, "cid": cid})
        timer.timeit(number // 10)
        runs = [t / number * 1e9 for t in timer.repeat(repeat=ctx.reps, number=number)]
        out["policy_check"] = {"target": "bench/echo/7", "ns": summary(runs)}
    finally:
        audit.close()
    return out


def _raw_storage(ctx: Ctx, n: int) -> list[float]:
    from wactor.storage import SqliteStorage

    store = SqliteStorage(ctx.fresh_dir("raw-sqlite") / "state.sqlite3")
    try:
        quota = 4 << 20
        for _ in range(50):
            store.set("bench/kv/0", "k", P16, quota=quota)
            store.get("bench/kv/0", "k")
        out = []
        for _ in range(ctx.reps):
            start = perf()
            for _ in range(n):
                store.set("bench/kv/0", "k", P16, quota=quota)
                store.get("bench/kv/0", "k")
            out.append((perf() - start) / n * 1e6)
        return out
    finally:
        store.close()


async def run_capability_storage(ctx: Ctx) -> FigureResult:
    res = FigureResult()
    caps = _capability_check(ctx)
    res.details["capability_check"] = caps
    allowed = caps["allowed_last_pattern"]
    denied = caps["denied"]
    assert isinstance(allowed, dict)
    assert isinstance(denied, dict)
    res.rows.append(
        Row(
            '8. capability check `allows("send", id)`',
            "ns",
            allowed["ns"]["median"],
            None,
            runs=ctx.reps,
            note=f"3 patterns, match on the last (timeit); denied: {denied['ns']['median']:.0f} ns",
        )
    )
    policy = caps["policy_check"]
    assert isinstance(policy, dict)
    res.rows.append(
        Row(
            "8. messaging policy check on the hot path (cached decision)",
            "ns",
            policy["ns"]["median"],
            None,
            runs=ctx.reps,
            note="MessagingPolicy.check, what every guest send/request/broadcast pays",
        )
    )

    n = ctx.q(1500, 400)
    async with open_host(ctx) as host:
        folder = ctx.fresh_dir("m")
        await host.start(write_manifest(folder, "bench/kv/0", wat_binary("kv"), extra=KV_EXTRA))
        await host.start(write_manifest(folder, "bench/echo/0", wat_binary("echo")))
        if await host.request("bench/kv/0", P16, timeout=60) != P16:
            raise RuntimeError("kv component did not return its payload")
        await _seq_rate(host, "bench/kv/0", P16, max(50, n // 10))
        await _seq_rate(host, "bench/echo/0", P16, max(50, n // 10))
        kv: list[float] = []
        echo: list[float] = []
        for _ in range(ctx.reps):
            echo.append(await _seq_rate(host, "bench/echo/0", P16, n))
            kv.append(await _seq_rate(host, "bench/kv/0", P16, n))
    raw = _raw_storage(ctx, n)
    per_pair = [1e6 / k - 1e6 / e for k, e in zip(kv, echo, strict=True)]
    res.details["storage"] = {
        "requests_per_run": n,
        "kv_rps": summary(kv),
        "echo_rps": summary(echo),
        "set_get_us_from_difference": summary(per_pair),
        "raw_sqlite_set_get_us": summary(raw),
        "backend": "sqlite (host default: WAL, synchronous=FULL)",
    }
    res.rows.append(
        Row(
            "8. requests to kv.wat (set+get per message) vs echo.wat",
            "rt/s",
            median(kv),
            median(echo),
            runs=ctx.reps,
            note="16 B value, SQLite storage in the state dir",
        )
    )
    row = Row(
        "8. one set+get through the host functions (difference of per-request times)",
        "µs",
        median(per_pair),
        median(raw),
        target="ratio ≤ 2",
        runs=ctx.reps,
        note="baseline: raw SqliteStorage.set + get from Python; lower is better",
    )
    row.met = row.ratio is not None and row.ratio <= 2
    res.rows.append(row)
    return res
