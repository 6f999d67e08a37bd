"""Figure 5: component start time (warm compile cache, cold compile) and memory per instance."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import (
    BENCH,
    Ctx,
    FigureResult,
    Row,
    StockInstance,
    collect,
    median,
    open_host,
    perf,
    stock_linker,
    summary,
    wat_binary,
    write_manifest,
)

GIB = 1 << 30
PAYLOAD = b"0123456789abcdef"
PY_COLD_BUDGET = 150.0  # seconds for the Python guest's cold compiles, ours and stock together


async def _ours_start(ctx: Ctx, manifest: Path, cache_dir: Path | None = None) -> dict[str, float]:
    """``host.start`` in a fresh host (fresh WasmEngine: empty in-memory component table)."""
    t0 = perf()
    async with open_host(ctx, cache_dir=cache_dir) as host:
        t1 = perf()
        handle = await host.start(manifest)
        t2 = perf()
        reply = await host.request(handle.id, PAYLOAD, timeout=60)
        if reply != PAYLOAD:
            raise RuntimeError("started component did not echo")
        stats = host.engine.cache_statistics()
    return {
        "start_s": t2 - t1,
        "host_open_s": t1 - t0,
        "cache_hits": stats.hits if stats else -1,
        "cache_misses": stats.misses if stats else -1,
    }


def _stock_start(wasm: Path, artifact: Path | None, *, wasi: bool) -> dict[str, float]:
    """Stock wasmtime-py: load (``deserialize_file`` of ``artifact``, a serialized compile of
    the same ``.wasm`` made outside the timer, or compile with ``Component.from_file`` when
    ``artifact`` is None), then Store, instantiate and ``initialize``. Engine and Linker are made
    outside the timer (the host makes them when it opens, outside ``start`` too). Reading and
    hashing the ``.wasm`` (what the host does when the file changed since it last hashed it) is
    timed apart and not counted: a user of stock wasmtime-py who keeps the artifact's path needs
    neither."""
    from wasmtime.component import Component

    from wactor.wasm import WasmEngine

    engine = WasmEngine(None)  # same settings as the host's engine; no cache of its own
    try:
        t0 = perf()
        data = wasm.read_bytes()
        hashlib.sha256(data).hexdigest()
        t1 = perf()
        if artifact is None:
            component = Component.from_file(engine.engine, str(wasm))
        else:
            component = Component.deserialize_file(engine.engine, str(artifact))
        t2 = perf()
        linker = stock_linker(engine.engine, component, wasi=wasi)
        t3 = perf()
        inst = StockInstance(engine.engine, linker, component, wasi=wasi)
        inst.initialize()
        t4 = perf()
        if inst.call(PAYLOAD) != PAYLOAD:
            raise RuntimeError("stock instance did not echo")
    finally:
        engine.close()
    return {
        "start_s": (t2 - t1) + (t4 - t3),
        "read_and_sha256_s": t1 - t0,
        "load_s": t2 - t1,
        "instantiate_initialize_s": t4 - t3,
    }


def _stock_artifact(ctx: Ctx, wasm: Path) -> Path:
    """Compile ``wasm`` with the host's engine settings and serialize it, as a stock user would
    keep it; the stock side never reads the host's compile cache (its layout is the host's)."""
    from wasmtime.component import Component

    from wactor.wasm import WasmEngine

    engine = WasmEngine(None)
    try:
        out = ctx.fresh_dir("stock-artifact") / f"{wasm.stem}.cwasm"
        out.write_bytes(Component.from_file(engine.engine, str(wasm)).serialize())
        return out
    finally:
        engine.close()


def _field(runs: list[dict[str, float]], name: str) -> list[float]:
    return [r[name] for r in runs]


async def _start_pair(
    ctx: Ctx, wasm: Path, *, wasi: bool, memory: str, cold: bool, reps: int, budget: float | None
) -> dict[str, Any]:
    manifest = write_manifest(ctx.fresh_dir("m"), "bench/start/0", wasm, memory=memory)
    artifact = None if cold else _stock_artifact(ctx, wasm)
    if not cold:  # make sure the cache entry exists, and warm up the code paths
        await _ours_start(ctx, manifest)
        _stock_start(wasm, artifact, wasi=wasi)
    ours: list[dict[str, float]] = []
    base: list[dict[str, float]] = []
    began = perf()
    for i in range(reps):
        # Stop early when one more pair would likely overrun the budget (at least one pair runs).
        if budget is not None and i > 0 and (perf() - began) * (i + 1) / i > budget:
            break
        collect()
        base.append(_stock_start(wasm, artifact, wasi=wasi))
        cache = ctx.fresh_dir("cold-cache") if cold else None
        try:
            ours.append(await _ours_start(ctx, manifest, cache_dir=cache))
        finally:
            if cache is not None:
                shutil.rmtree(cache, ignore_errors=True)
    return {
        "ours_ms": summary([x * 1000 for x in _field(ours, "start_s")]),
        "ours_host_open_ms": summary([x * 1000 for x in _field(ours, "host_open_s")]),
        "ours_cache_hits": _field(ours, "cache_hits"),
        "baseline_ms": summary([x * 1000 for x in _field(base, "start_s")]),
        "baseline_parts_ms": {
            part: median(x * 1000 for x in _field(base, part))
            for part in ("read_and_sha256_s", "load_s", "instantiate_initialize_s")
        },
    }


def _memprobe(who: str, wasm: Path, count: int, *, wasi: bool, memory: str) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "_memprobe.py"),
            "--who",
            who,
            "--wasm",
            str(wasm),
            "--count",
            str(count),
            "--wasi",
            "1" if wasi else "0",
            "--memory",
            memory,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memprobe {who} failed: {proc.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _memory(ctx: Ctx, wasm: Path, count: int, *, wasi: bool, memory: str) -> dict[str, Any]:
    reps = 3
    ours = []
    base = []
    for _ in range(reps):
        base.append(_memprobe("stock", wasm, count, wasi=wasi, memory=memory))
        ours.append(_memprobe("ours", wasm, count, wasi=wasi, memory=memory))
    return {
        "extra_instances": count,
        "ours_kib": summary([r["per_instance_bytes"] / 1024 for r in ours]),
        "baseline_kib": summary([r["per_instance_bytes"] / 1024 for r in base]),
        "ours_raw": ours,
        "baseline_raw": base,
    }


async def run(ctx: Ctx) -> FigureResult:
    res = FigureResult()
    wat = wat_binary("echo")
    py = ctx.py_echo()
    d = res.details

    d["warm_wat"] = await _start_pair(
        ctx, wat, wasi=False, memory="32MiB", cold=False, reps=ctx.reps, budget=None
    )
    d["warm_python"] = await _start_pair(
        ctx, py, wasi=True, memory="64MiB", cold=False, reps=ctx.reps, budget=None
    )
    d["cold_wat"] = await _start_pair(
        ctx, wat, wasi=False, memory="32MiB", cold=True, reps=ctx.reps, budget=None
    )
    if ctx.quick:
        d["cold_python"] = {
            "skipped": "cold compile of the Python guest takes 5-30 s; not in --quick"
        }
    else:
        d["cold_python"] = await _start_pair(
            ctx, py, wasi=True, memory="64MiB", cold=True, reps=3, budget=PY_COLD_BUDGET
        )

    for key, label, target in (
        ("warm_wat", "5. start from warm cache, WAT echo", None),
        ("warm_python", "5. start from warm cache, Python echo", 5.0),
        ("cold_wat", "5. cold compile + start, WAT echo", None),
        ("cold_python", "5. cold compile + start, Python echo", None),
    ):
        entry = d[key]
        if "skipped" in entry:
            res.rows.append(Row(label, "ms", None, None, note=entry["skipped"]))
            continue
        ours_ms = entry["ours_ms"]["median"]
        parts = entry["baseline_parts_ms"]
        row = Row(
            label,
            "ms",
            ours_ms,
            entry["baseline_ms"]["median"],
            runs=entry["ours_ms"]["runs"],
            note=(
                "host.start in a fresh host (opening it: "
                f"{entry['ours_host_open_ms']['median']:.1f} ms, not counted); baseline = load "
                f"{parts['load_s']:.1f} + instantiate+initialize "
                f"{parts['instantiate_initialize_s']:.1f} ms (reading and hashing the .wasm, "
                "which the host does only when the file changed since it last hashed it: "
                f"{parts['read_and_sha256_s']:.1f} ms, not in the baseline); lower is better"
            ),
        )
        if target is not None:
            row.target = f"ours ≤ {target:g} ms"
            row.met = ours_ms <= target
        res.rows.append(row)

    collect()
    d["memory_wat"] = _memory(ctx, wat, ctx.q(200, 50), wasi=False, memory="32MiB")
    d["memory_python"] = _memory(ctx, py, ctx.q(20, 5), wasi=True, memory="64MiB")
    for key, label, min_per_gib in (
        ("memory_wat", "WAT echo", 1000),
        ("memory_python", "Python echo", None),
    ):
        entry = d[key]
        o = entry["ours_kib"]["median"]
        b = entry["baseline_kib"]["median"]
        n = entry["extra_instances"]
        res.rows.append(
            Row(
                f"5. RSS per extra instance, {label}",
                "KiB",
                o,
                b,
                runs=entry["ours_kib"]["runs"],
                note=f"{n} extra instances, each after one message; fresh process per run; "
                "baseline: stock Store+instance; lower is better",
            )
        )
        per_gib_ours = GIB / (o * 1024) if o > 0 else None
        per_gib_base = GIB / (b * 1024) if b > 0 else None
        row = Row(
            f"5. {label} instances per GiB (from RSS per instance)",
            "instances",
            per_gib_ours,
            per_gib_base,
            runs=entry["ours_kib"]["runs"],
        )
        if min_per_gib is not None:
            row.target = f"ours ≥ {min_per_gib}"
            row.met = per_gib_ours is not None and per_gib_ours >= min_per_gib
        res.rows.append(row)
    return res
