"""Figure 13: operating a running host, through its control socket and its observe endpoint.

One ``wactor run`` process on a temporary config holds 100 WAT echoes (``bench/echo/0`` … ``/99``)
and serves ``[observe] listen = "127.0.0.1:0"``. Rows, each interleaved with its baseline:

* a ``wactor call``-style request (``RunningHost.request("call", …)`` of ``cli/_remote.py``, the
  CLI's own client) on a kept connection, and with a new connection per request (connect, greet,
  call, close: what each ``wactor call`` process does), against ``Host.request`` to the same WAT
  echo in a host in this process: the socket hop's cost;
* a ``ping`` round trip, against a bare asyncio server in another process speaking the same
  framing (``bench/_framed.py``);
* the ``wactor call`` command itself (a process: interpreter, imports, connect, call), against
  ``python -c pass``;
* a ``/metrics`` scrape and an ``/api/status`` fetch (a plain ``http.client`` connection per
  request, the whole round trip) once every component has handled requests; the scrape against
  ``prometheus_client`` serving a registry with the same series (``bench/_webserver.py``,
  another process, same client) and against ``generate_latest`` of that registry alone; the
  status against the same JSON bytes served as a static file (the floor of moving them).
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _webserver
from _common import (
    CACHE_ROOT,
    COMPILED_CACHE,
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
from _framed import FramedClient

COMPONENTS = 100
CALLS_EACH = 3  # requests every component handles before the scrapes
P16 = b"0123456789abcdef"
TIMEOUT = 30.0


def _config(ctx: Ctx) -> Path:
    folder = ctx.fresh_dir("operate")
    echo = wat_binary("echo")
    manifests = [write_manifest(folder / "m", f"bench/echo/{i}", echo) for i in range(COMPONENTS)]
    listed = ", ".join(f'"{m}"' for m in manifests)
    config = folder / "wactor.toml"
    config.write_text(
        f'state-dir = "{folder / "state"}"\ncache-dir = "{COMPILED_CACHE}"\n'
        f"components = [{listed}]\n\n"
        f'[observe]\nlisten = "127.0.0.1:0"\n\n'
        f'[trust]\npaths = ["{folder}", "{CACHE_ROOT}"]\n'
    )
    return config


def _start_host(config: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``wactor run`` the config; return the process once it is ready, and its observe URL."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wactor", "run", str(config)],
            stdout=out,
            stderr=out,
        )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        found = re.search(r"dashboard at (http://\S+/) ", text)
        if "host ready:" in text and found:
            return proc, found.group(1)
        if proc.poll() is not None:
            raise RuntimeError(f"wactor run exited ({proc.returncode}): {text.strip()[-400:]}")
        time.sleep(0.1)
    _stop(proc)
    raise RuntimeError("wactor run did not get ready within 300 s")


def _stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Remote:
    """The CLI's client of the running host."""

    def __init__(self, config: Path) -> None:
        from wactor.cli._remote import RunningHost
        from wactor.host import load_host_config
        from wactor.host._control_wire import decode_bytes, encode_bytes

        self._find = RunningHost.find
        self._config = load_host_config(config)
        self._encode = encode_bytes
        self._decode = decode_bytes
        self.host = self._connect()

    def _connect(self) -> Any:
        host = self._find(self._config)
        if host is None:
            raise RuntimeError("no control socket: the host is not running")
        return host

    def call(self, target: str, payload: bytes, host: Any = None) -> bytes:
        args = {"target": target, "payload": self._encode(payload), "timeout": 10}
        answer = (host or self.host).request("call", args, timeout=TIMEOUT)
        reply: bytes = self._decode(answer["reply"], "reply")
        return reply

    def call_new_connection(self, target: str, payload: bytes) -> bytes:
        with self._connect() as host:
            return self.call(target, payload, host)

    def reconnect(self) -> None:
        """A new kept connection in place of the old one."""
        self.host.close()
        self.host = self._connect()

    def every_component_handles(self, calls: int) -> None:
        """Send ``calls`` requests to each of the host's echoes, so each has numbers to show."""
        for i in range(COMPONENTS):
            for _ in range(calls):
                if self.call(f"bench/echo/{i}", P16) != P16:
                    raise RuntimeError(f"bench/echo/{i} did not echo")

    def ping(self) -> None:
        self.host.request("ping", timeout=TIMEOUT)

    def snapshot(self) -> Any:
        self.reconnect()
        return self.host.request("ps", timeout=TIMEOUT)

    def close(self) -> None:
        self.host.close()


def _get(port: int, path: str) -> bytes:
    """One GET on a new connection, the whole body read."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status}")
        return body
    finally:
        conn.close()


def _us(fn: Any, n: int) -> float:
    start = perf()
    for _ in range(n):
        fn()
    return (perf() - start) / n * 1e6


def _command_env(scratch: Path) -> dict[str, str]:
    """The environment of the timed commands: bytecode cached (in the scratch directory), as an
    installed wactor has it, even where ``PYTHONDONTWRITEBYTECODE`` is set (without it, each
    process would compile wactor's sources again: ~0.2 s here)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    return env


def _run_command(args: list[str], expect: bytes, env: dict[str, str]) -> None:
    done = subprocess.run(args, capture_output=True, timeout=120, check=False, env=env)
    if done.returncode != 0 or done.stdout.strip() != expect:
        raise RuntimeError(f"{' '.join(args[-4:])}: exit {done.returncode}, {done.stderr[-300:]!r}")


def _components(snapshot: Any) -> dict[str, int]:
    """How many components the running host's tree lists, and the messages they processed."""
    count = processed = 0
    stack = [snapshot.get("tree", {})] if isinstance(snapshot, dict) else []
    while stack:
        node = stack.pop()
        for child in node.get("children", ()):
            if child.get("kind") == "supervisor":
                stack.append(child)
            else:
                count += 1
                processed += int(child.get("processed", 0))
    return {"listed": count, "processed": processed}


def _series(text: str) -> int:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(len(family.samples) for family in text_string_to_metric_families(text))


class _Setup:
    """The running host with its components warmed, the baselines' servers and clients."""

    def __init__(self, ctx: Ctx) -> None:
        self.config = _config(ctx)
        folder = self.config.parent
        self._procs: list[subprocess.Popen[Any]] = []
        self.remote: _Remote | None = None
        self.framed: FramedClient | None = None
        proc, url = _start_host(self.config, folder / "run.log")
        self._procs.append(proc)
        self.port = int(url.rstrip("/").rsplit(":", 1)[1])
        try:
            self.remote = _Remote(self.config)
            self.remote.every_component_handles(CALLS_EACH)
            self.metrics = _get(self.port, "/metrics")
            self.status = _get(self.port, "/api/status")
            (folder / "metrics.txt").write_bytes(self.metrics)
            (folder / "status.json").write_bytes(self.status)
            static, self.static_port = _webserver.spawn(
                folder / "status.json", folder / "metrics.txt"
            )
            self._procs.append(static)
            self.registry = _webserver.equivalent_registry(self.metrics.decode())
            self.baseline_metrics = _get(self.static_port, "/metrics")
            socket_path = str(folder / "bare.sock")
            bare = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("_framed.py")), socket_path],
                stdout=subprocess.PIPE,
                text=True,
            )
            self._procs.append(bare)
            assert bare.stdout is not None
            bare.stdout.readline()  # "ready"
            self.framed = FramedClient(socket_path)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.framed is not None:
            self.framed.close()
        if self.remote is not None:
            self.remote.close()
        for proc in reversed(self._procs):
            _stop(proc)


def _sides(setup: _Setup, local: Any) -> dict[str, Any]:
    """Every side of the figure, by key: a function of ``n`` giving µs per call (a coroutine
    function for the in-process host)."""
    from prometheus_client import generate_latest

    remote, framed, registry = setup.remote, setup.framed, setup.registry
    assert remote is not None
    assert framed is not None
    port, static = setup.port, setup.static_port
    command = [sys.executable, "-m", "wactor", "call", "bench/echo/0", "x"]
    command += ["--config", str(setup.config)]
    python = [sys.executable, "-c", "pass"]
    env = _command_env(setup.config.parent)
    request = local.request

    async def local_us(n: int) -> float:
        start = perf()
        for _ in range(n):
            await request("bench/echo/0", P16, timeout=TIMEOUT)
        return (perf() - start) / n * 1e6

    def timed(fn: Any) -> Any:
        return lambda n: _us(fn, n)

    def kept(fn: Any) -> Any:
        def measure(n: int) -> float:
            remote.reconnect()  # untimed: the host closes a connection silent for 30 s
            return _us(fn, n)

        return measure

    return {  # in this order, each baseline just before its row (interleaved run by run)
        "local": local_us,
        "remote": kept(lambda: remote.call("bench/echo/0", P16)),
        "remote_new": timed(lambda: remote.call_new_connection("bench/echo/0", P16)),
        "bare_ping": timed(lambda: framed.request({"op": "ping", "args": {}})),
        "ping": kept(remote.ping),
        "python": timed(lambda: _run_command(python, b"", env)),
        "command": timed(lambda: _run_command(command, b"x", env)),
        "prom_http": timed(lambda: _get(static, "/metrics")),
        "metrics": timed(lambda: _get(port, "/metrics")),
        "prom_generate": timed(lambda: generate_latest(registry)),
        "static_status": timed(lambda: _get(static, "/status")),
        "status": timed(lambda: _get(port, "/api/status")),
    }


async def run(ctx: Ctx) -> FigureResult:
    res = FigureResult()
    calls, new, command, scrapes = ctx.q(1000, 300), ctx.q(200, 60), ctx.q(3, 2), ctx.q(20, 8)
    counts = {"local": calls, "remote": calls, "remote_new": new, "bare_ping": calls}
    counts |= {"ping": calls, "python": command, "command": command}
    for key in ("prom_http", "metrics", "prom_generate", "static_status", "status"):
        counts[key] = scrapes
    s: dict[str, list[float]] = {k: [] for k in counts}
    setup = _Setup(ctx)
    try:
        async with open_host(ctx) as local:
            echo = wat_binary("echo")
            await local.start(write_manifest(ctx.fresh_dir("m"), "bench/echo/0", echo))
            sides = _sides(setup, local)
            for key, measure in sides.items():  # warm up every side
                out = measure(max(1, counts[key] // 5))
                if asyncio.iscoroutine(out):
                    await out
            for _ in range(ctx.reps):  # interleaved: each row beside its baseline
                for key, measure in sides.items():
                    out = measure(counts[key])
                    s[key].append(await out if asyncio.iscoroutine(out) else out)
        assert setup.remote is not None
        snapshot = setup.remote.snapshot()
    finally:
        setup.close()
    res.details.update(
        {
            "components": COMPONENTS,
            "requests_each_before_scrapes": CALLS_EACH,
            "per_run": counts,
            "metrics_bytes": len(setup.metrics),
            "metrics_series": _series(setup.metrics.decode()),
            "baseline_metrics_bytes": len(setup.baseline_metrics),
            "baseline_metrics_series": _series(setup.baseline_metrics.decode()),
            "status_bytes": len(setup.status),
            "host_components": _components(snapshot),
            "us": {k: summary(v) for k, v in s.items()},
        }
    )
    _rows(res, s, ctx.reps)
    return res


def _rows(res: FigureResult, s: dict[str, list[float]], reps: int) -> None:
    d = res.details
    ms = {k: [v / 1e3 for v in values] for k, values in s.items()}
    res.rows += [
        Row(
            "13. `wactor call`-style request over the control socket ÷ `Host.request` in process",
            "µs",
            median(s["remote"]),
            median(s["local"]),
            runs=reps,
            note="16 B to a WAT echo; ours: RunningHost.request('call') on a kept connection to "
            f"a `wactor run` process holding {COMPONENTS} WAT echoes; baseline: Host.request to "
            "the same echo in a host in the benchmark's process",
        ),
        Row(
            "13. the same with a new connection per request (connect, greet, call, close)",
            "µs",
            median(s["remote_new"]),
            median(s["local"]),
            runs=reps,
            note="what each `wactor call` process does once it has started",
        ),
        Row(
            "13. control socket `ping` round trip ÷ a bare asyncio Unix-socket server",
            "µs",
            median(s["ping"]),
            median(s["bare_ping"]),
            runs=reps,
            note="baseline: bench/_framed.py in another process, the same framing, no checks "
            "and no host behind it",
        ),
        Row(
            "13. decomposition: call - ping (the call op beyond the socket's round trip)",
            "µs",
            median([c - p for c, p in zip(s["remote"], s["ping"], strict=True)]),
            median(s["local"]),
            runs=reps,
            note="per run, then the median: the payload's base64 and JSON both ways, the op's "
            "checks and Host.request in the running host; baseline: Host.request in process",
        ),
        Row(
            "13. the `wactor call` command (a process), 1 payload ÷ `python -c pass`",
            "ms",
            median(ms["command"]),
            median(ms["python"]),
            runs=reps,
            note="interpreter, imports (bytecode cached, as installed), connect, call, print; "
            "baseline: the interpreter alone",
        ),
        Row(
            f"13. `/metrics` scrape, {COMPONENTS} components ÷ prometheus-client serving the "
            "same series",
            "ms",
            median(ms["metrics"]),
            median(ms["prom_http"]),
            runs=reps,
            note=f"{d['metrics_series']} series, {d['metrics_bytes'] // 1024} KiB "
            f"(baseline {d['baseline_metrics_series']} series, "
            f"{d['baseline_metrics_bytes'] // 1024} KiB); a new http.client connection per "
            "scrape, the whole body read; baseline: Counter/Gauge/Histogram objects with the "
            "same labels, generate_latest behind http.server, in another process",
        ),
        Row(
            f"13. `/metrics` scrape, {COMPONENTS} components ÷ `generate_latest` alone",
            "ms",
            median(ms["metrics"]),
            median(ms["prom_generate"]),
            runs=reps,
            note="baseline: prometheus_client.generate_latest of that registry in the "
            "benchmark's process, no HTTP",
        ),
        Row(
            f"13. `/api/status` fetch, {COMPONENTS} components ÷ the same JSON served static",
            "ms",
            median(ms["status"]),
            median(ms["static_status"]),
            runs=reps,
            note=f"{d['status_bytes'] // 1024} KiB of JSON; baseline: those bytes served by "
            "http.server in another process (the floor of moving them, not the same work)",
        ),
    ]
