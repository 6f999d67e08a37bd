"""Figure 6: ``host.request`` to the WAT echo with payloads from 16 B to 1 MiB.

Two baselines. The sweep's is the stock ``handle-message`` call of the same component, whose
binding converts ``list<u8>`` one element at a time (time-boxed where one call takes seconds).
The 64 KiB row's is what bulk data costs through a stock component call at best: a ``string``
echo (``bench/wat/string_echo.wat``) called with a 64 KiB Python ``str``, which the binding moves
with one memcpy each way, measured interleaved with ours.
"""

from __future__ import annotations

from typing import Any

from _baselines import StringEcho
from _common import (
    Ctx,
    FigureResult,
    Row,
    StockInstance,
    median,
    open_host,
    perf,
    rate_sync,
    stock_setup,
    summary,
    wat_binary,
    write_manifest,
)
from _fig_calls import TIMEOUT, _check, _seq_rate

SIZES = (("16 B", 16), ("1 KiB", 1024), ("64 KiB", 64 << 10), ("1 MiB", 1 << 20))
STRING_SIZE = 64 << 10
RUN_SECONDS = 0.3
STOCK_BOX_SECONDS = 5.0
STOCK_BOX_CALLS = 3
STRING_TARGET = 0.15
STRING_GOAL = 0.3


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


def _string_calls(echo: StringEcho) -> tuple[str, int]:
    text = "".join(chr(0x20 + i % 95) for i in range(STRING_SIZE))  # ASCII: 64 KiB of UTF-8
    if echo.call(text) != text:
        raise RuntimeError("string echo returned something else than its argument")
    start = perf()
    echo.call(text)
    one = perf() - start
    return text, max(3, min(20_000, round(RUN_SECONDS / max(one, 1e-6))))


async def run_payload_sweep(ctx: Ctx) -> FigureResult:
    res = FigureResult()
    wasm = wat_binary("echo")
    setup = stock_setup(ctx, wasm, wasi=False)
    try:
        stock = setup.instance()
        string_echo = StringEcho(setup.engine.engine)
        text, string_n = _string_calls(string_echo)
        async with open_host(ctx) as host:
            target = "bench/echo/0"
            await host.start(write_manifest(ctx.fresh_dir("m"), target, wasm, memory="64MiB"))
            for label, size in SIZES:
                payload = bytes(i % 251 for i in range(size))
                entry: dict[str, Any] = {"bytes": size}
                strings: list[float] = []
                try:
                    _check(await host.request(target, payload, timeout=TIMEOUT), payload, "host")
                    await _seq_rate(host, target, payload, 5)  # the first calls of a size are cold
                    start = perf()
                    await host.request(target, payload, timeout=TIMEOUT)
                    one = perf() - start
                    n = max(3, min(5000, round(RUN_SECONDS / max(one, 1e-6))))
                    await _seq_rate(host, target, payload, max(1, n // 5))  # warm up
                    if size == STRING_SIZE:
                        rate_sync(lambda: string_echo.call(text), max(1, string_n // 5))
                    ours = []
                    for _ in range(ctx.reps):  # the string baseline interleaved with ours
                        if size == STRING_SIZE:
                            strings.append(rate_sync(lambda: string_echo.call(text), string_n))
                        ours.append(await _seq_rate(host, target, payload, n))
                    entry["ours"] = {**summary(ours), "requests_per_run": n}
                except Exception as exc:  # noqa: BLE001 - one size failing must not hide the others
                    entry["ours"] = {"error": f"{type(exc).__name__}: {exc}"}
                try:
                    entry["baseline"] = _stock_sweep(stock, payload, ctx.reps)
                except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
                    entry["baseline"] = {"error": f"{type(exc).__name__}: {exc}"}
                if strings:
                    entry["baseline_string_echo"] = {**summary(strings), "calls_per_run": string_n}
                res.details[label] = entry
                res.rows.append(_sweep_row(label, size, entry))
                if size == STRING_SIZE:
                    res.rows.append(_string_row(entry, ctx.reps))
    finally:
        setup.close()
    return res


def _sweep_row(label: str, size: int, entry: dict[str, Any]) -> Row:
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
    return Row(
        f"6. WAT echo `host.request` {label}",
        "rt/s",
        o,
        b,
        target=target_text,
        met=met,
        runs=entry["ours"].get("runs"),
        note="; ".join(notes) or None,
    )


def _string_row(entry: dict[str, Any], reps: int) -> Row:
    o = entry["ours"].get("median")
    base = entry.get("baseline_string_echo", {}).get("median")
    mib = (o or 0) * STRING_SIZE / (1 << 20)
    row = Row(
        "6. WAT echo `host.request` 64 KiB ÷ stock call of a `string` echo, 64 KiB",
        "rt/s",
        o,
        base,
        target=f"ratio ≥ {STRING_TARGET:g} (goal {STRING_GOAL:g})",
        runs=reps,
        note=f"ours {o or 0:,.0f} rt/s = {mib:.1f} MiB/s each way; baseline: "
        "bench/wat/string_echo.wat `echo(string) -> string` called with a 64 KiB ASCII str "
        "(one memcpy each way), interleaved with ours",
    )
    row.met = row.ratio is not None and row.ratio >= STRING_TARGET
    return row
