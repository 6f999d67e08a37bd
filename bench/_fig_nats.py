"""Figure 9: request round trips/s between two host processes over NATS, beside raw nats-py
request/reply between two processes against the same nats-server, in the same run."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from _common import CACHE_ROOT, Ctx, FigureResult, Row, summary, wat_binary, write_manifest

_RESPONDER = """
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    async def echo(msg):
        await msg.respond(msg.data)
    await nc.subscribe("bench.raw.echo", cb=echo)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def _spawn(args: list[str], *, pipe: bool) -> subprocess.Popen[str]:
    """Start a helper process (stdout piped when we wait for its "ready" line)."""
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE if pipe else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


async def _rate(call: object, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await call()  # type: ignore[operator]
    return n / (time.perf_counter() - start)


async def _wait_until(check: object, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await check():  # type: ignore[operator]
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the other process never became ready")
        await asyncio.sleep(0.1)


async def run_nats(ctx: Ctx) -> FigureResult:
    import nats

    from wactor.host import BrokerConfig, Host, HostConfig
    from wactor.testing import NatsServer

    res = FigureResult()
    n = ctx.q(2000, 300)
    payload = b"x" * 16
    with NatsServer() as server:
        folder = ctx.fresh_dir("nats-host")
        manifest = write_manifest(folder, "bench/echo/0", wat_binary("echo"))
        config = folder / "wactor.toml"
        config.write_text(
            f'state-dir = "{folder / "state"}"\ncomponents = ["{manifest}"]\n\n'
            f'[broker]\ntype = "nats"\nurl = "{server.url}"\n\n'
            f'[trust]\npaths = ["{folder}", "{CACHE_ROOT}"]\n'
        )
        host_proc = _spawn([sys.executable, "-m", "wactor", "run", str(config)], pipe=False)
        raw_proc = _spawn([sys.executable, "-c", _RESPONDER, server.url], pipe=True)
        try:
            assert raw_proc.stdout is not None
            raw_proc.stdout.readline()  # "ready"
            client_cfg = HostConfig(
                path=None,
                state_dir=Path(ctx.fresh_dir("nats-client")),
                broker=BrokerConfig("nats", server.url, "default"),
            )
            nc = await nats.connect(server.url)
            async with Host.open(client_cfg) as client:

                async def ours() -> bytes | None:
                    return await client.request("bench/echo/0", payload, timeout=10)

                async def raw() -> object:
                    return await nc.request("bench.raw.echo", payload, timeout=10)

                await _wait_until(lambda: _ok(ours, payload))
                for _ in range(100):
                    await ours()
                    await raw()
                our_runs, raw_runs = [], []
                for _ in range(ctx.reps):  # interleaved: both see the same machine state
                    our_runs.append(await _rate(ours, n))
                    raw_runs.append(await _rate(raw, n))
            await nc.close()
        finally:
            for proc in (host_proc, raw_proc):
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    ours_s, raw_s = summary(our_runs), summary(raw_runs)
    res.details["ours_rt_s"] = ours_s
    res.details["raw_rt_s"] = raw_s
    res.rows.append(
        Row(
            "9. NATS request between two host processes, 16 B, sequential",
            "rt/s",
            ours_s["median"],
            raw_s["median"],
            runs=ctx.reps,
            note="ours: a lattice-client host → a `wactor run` host (WAT echo) over one local "
            "nats-server; baseline: raw nats-py request → a raw nats-py responder process",
        )
    )
    return res


async def _ok(call: object, payload: bytes) -> bool:
    return await call() == payload  # type: ignore[operator,no-any-return]
