"""Resident memory per extra instance, measured in a fresh process (so that memory freed by an
earlier measurement cannot be reused and hide the cost of the next one).

    python bench/_memprobe.py --who ours|stock --wasm PATH --count N --wasi 0|1 --memory 32MiB

Prints one JSON object: RSS after the first instance (and its first message), RSS after ``count``
more instances (each of which got one message), and the difference per instance.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import psutil
from _common import COMPILED_CACHE, Ctx, collect, open_host, stock_setup, write_manifest

PAYLOAD = b"0123456789abcdef"


def _rss() -> int:
    collect()
    return int(psutil.Process().memory_info().rss)


async def _ours(ctx: Ctx, wasm: Path, count: int, memory: str) -> dict[str, Any]:
    folder = ctx.fresh_dir("manifests")
    manifests = [
        write_manifest(folder, f"mem/c{i}/0", wasm, memory=memory) for i in range(count + 1)
    ]
    async with open_host(ctx) as host:
        await host.start(manifests[0])
        await host.request("mem/c0/0", PAYLOAD, timeout=60)
        before = _rss()
        for i, path in enumerate(manifests[1:], start=1):
            await host.start(path)
            await host.request(f"mem/c{i}/0", PAYLOAD, timeout=60)
        after = _rss()
        running = len(host.components())
    return {"before": before, "after": after, "running": running}


def _stock(ctx: Ctx, wasm: Path, count: int, wasi: bool) -> dict[str, Any]:
    setup = stock_setup(ctx, wasm, wasi=wasi)
    try:
        first = setup.instance()
        first.call(PAYLOAD)
        before = _rss()
        keep = []
        for _ in range(count):
            inst = setup.instance()
            inst.call(PAYLOAD)
            keep.append(inst)
        after = _rss()
        return {"before": before, "after": after, "running": len(keep) + 1}
    finally:
        setup.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--who", choices=("ours", "stock"), required=True)
    parser.add_argument("--wasm", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--wasi", type=int, default=0)
    parser.add_argument("--memory", default="32MiB")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="wactor-memprobe-"))
    ctx = Ctx(quick=True, reps=1, scratch=scratch, cache_dir=COMPILED_CACHE)
    try:
        if args.who == "ours":
            out = asyncio.run(_ours(ctx, args.wasm, args.count, args.memory))
        else:
            out = _stock(ctx, args.wasm, args.count, bool(args.wasi))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out["count"] = args.count
    out["per_instance_bytes"] = (out["after"] - out["before"]) / args.count
    print(json.dumps(out))


if __name__ == "__main__":
    main()
