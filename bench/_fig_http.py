"""Figure 12: outbound HTTP, a guest's ``wactor:http`` fetch against raw httpcore.

The server is ``bench/_webserver.py`` on loopback, in a process of its own. The guest is the test
suite's fetcher (``tests/guests/fetcher``, built with ``--with http``), whose payload names the
URL and whose reply is a JSON object (status, headers, size, the body's first 64 KiB). The
baseline is what a program does without wactor: ``httpcore`` (the host's own client library)
making the same GET from Python, a new connection each time as the host makes one per exchange
(a ``ConnectionPool`` that keeps no idle connection; the server's connection count checks it).

Rows, each measured interleaved with its baseline: the whole guest fetch through
``host.request``; the host's ``HttpClient.fetch`` alone, called from Python (checks, slots, the
connection, httpcore); what the guest path adds (the difference); a denied fetch (no I/O: the
checks, the audit and the guest round trip) against the Python echo's round trip; and a 1 MiB
body, through the guest (the ``list<u8>`` crosses into it one value per byte) and through the
client alone.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import _webserver
from _common import Ctx, FigureResult, Row, median, open_host, perf, python_guest, summary
from _common import write_manifest as _write_manifest

TIMEOUT = 60.0
BIG = len(_webserver.BIG)
SMALL = len(_webserver.SMALL)


def _grant(port: int) -> str:
    # message-rate belongs to [resources] (write_manifest's last table before the extra text):
    # every fetch spends one message, and the default 1000/s would refuse the fast rows.
    return f'message-rate = 100000\n\n[capabilities.network]\nconnect = ["127.0.0.1:{port}"]\n'


def _sync_us(fn: Callable[[], Any], n: int) -> float:
    start = perf()
    for _ in range(n):
        fn()
    return (perf() - start) / n * 1e6


async def _async_us(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    start = perf()
    for _ in range(n):
        await fn()
    return (perf() - start) / n * 1e6


class _Raw:
    """The baseline: raw httpcore, a new connection per request."""

    def __init__(self) -> None:
        import httpcore

        self.pool = httpcore.ConnectionPool(max_keepalive_connections=0)

    def get(self, url: str, size: int) -> None:
        response = self.pool.request("GET", url)
        if response.status != 200 or len(response.content) != size:
            raise RuntimeError(f"raw httpcore: {response.status}, {len(response.content)} bytes")

    def close(self) -> None:
        self.pool.close()


class _Client:
    """The host's ``HttpClient.fetch`` called from Python, with the policy a component gets."""

    def __init__(self, ctx: Ctx, port: int) -> None:
        from wactor.host import HttpConfig
        from wactor.host._http import HttpClient
        from wactor.security import AuditLog, CapabilityPolicy, RateLimit, load_manifest

        folder = ctx.fresh_dir("client")
        caps = load_manifest(
            _write_manifest(folder, "bench/client/0", python_guest("fetcher"), extra=_grant(port))
        ).capabilities
        self.audit = AuditLog(folder / "audit.sqlite3")
        self.policy = CapabilityPolicy(caps, "bench/client/0", self.audit, rate=RateLimit(100_000))
        self.client = HttpClient(HttpConfig())

    def fetch(self, url: str, size: int) -> None:
        response = self.client.fetch(
            self.policy,
            "bench/client",
            method="GET",
            url=url,
            headers=[],
            body=b"",
            timeout_ms=None,
            call_deadline=time.monotonic() + TIMEOUT,
        )
        if response.status != 200 or len(response.body) != size:
            raise RuntimeError(f"HttpClient: {response.status}, {len(response.body)} bytes")

    def denied(self, url: str) -> None:
        from wactor.errors import CapabilityDeniedError

        try:
            self.fetch(url, 0)
        except CapabilityDeniedError:
            return
        raise RuntimeError(f"HttpClient fetched {url}, which is not granted")

    def close(self) -> None:
        self.client.close()
        self.audit.close()


async def _guest_fetch(host: Any, url: str) -> dict[str, Any]:
    reply = await host.request("bench/fetch/0", json.dumps({"url": url}).encode(), timeout=TIMEOUT)
    answer = json.loads(reply)
    assert isinstance(answer, dict)
    return answer


def _check_answer(answer: dict[str, Any], size: int, url: str) -> None:
    if answer.get("status") != 200 or answer.get("size") != size:
        raise RuntimeError(f"the guest's fetch of {url} answered {str(answer)[:200]}")


def _check_denied(answer: dict[str, Any], url: str) -> None:
    if answer.get("error") != "denied":
        raise RuntimeError(f"the guest's fetch of {url} was not denied: {str(answer)[:200]}")


def _server_connections(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as answer:
        return int(answer.read())


Measure = Callable[[int], Awaitable[float]]


def _sync(fn: Callable[[], Any]) -> Measure:
    async def measure(n: int) -> float:
        return _sync_us(fn, n)

    return measure


def _async(fn: Callable[[], Awaitable[Any]]) -> Measure:
    async def measure(n: int) -> float:
        return await _async_us(fn, n)

    return measure


def _sides(host: Any, raw: _Raw, client: _Client, port: int) -> dict[str, Measure]:
    """Every side of the figure, by key: a function of ``n`` giving µs per call."""
    small = f"http://127.0.0.1:{port}/small"
    big = f"http://127.0.0.1:{port}/big"
    other = 9 if port != 9 else 10  # a port the manifest does not grant
    refused = f"http://127.0.0.1:{other}/small"  # denied before any I/O

    async def guest_small() -> None:
        _check_answer(await _guest_fetch(host, small), SMALL, small)

    async def guest_big() -> None:
        _check_answer(await _guest_fetch(host, big), BIG, big)

    async def guest_denied() -> None:
        _check_denied(await _guest_fetch(host, refused), refused)

    async def py_echo() -> None:
        if await host.request("bench/pyecho/0", _webserver.SMALL, timeout=TIMEOUT) is None:
            raise RuntimeError("the Python echo returned nothing")

    return {  # in this order, each baseline just before its row (interleaved run by run)
        "raw": _sync(lambda: raw.get(small, SMALL)),
        "guest": _async(guest_small),
        "client": _sync(lambda: client.fetch(small, SMALL)),
        "echo": _async(py_echo),
        "denied": _async(guest_denied),
        "client_denied": _sync(lambda: client.denied(refused)),
        "raw_big": _sync(lambda: raw.get(big, BIG)),
        "guest_big": _async(guest_big),
        "client_big": _sync(lambda: client.fetch(big, BIG)),
    }


async def run(ctx: Ctx) -> FigureResult:
    res = FigureResult()
    fetcher = python_guest("fetcher")
    echo = ctx.py_echo()
    small, denied, big_guest, big_raw = ctx.q(200, 60), ctx.q(1000, 300), ctx.q(5, 3), ctx.q(40, 15)
    counts = {"raw": small, "guest": small, "client": small, "echo": denied, "denied": denied}
    counts |= {"client_denied": denied, "raw_big": big_raw, "guest_big": big_guest}
    counts |= {"client_big": big_raw}
    server, port = _webserver.spawn()
    raw = _Raw()
    client = _Client(ctx, port)
    s: dict[str, list[float]] = {k: [] for k in counts}
    try:
        async with open_host(ctx) as host:
            folder = ctx.fresh_dir("m")
            manifest = _write_manifest(
                folder, "bench/fetch/0", fetcher, memory="128MiB", extra=_grant(port)
            )
            await host.start(manifest)
            await host.start(_write_manifest(folder, "bench/pyecho/0", echo, memory="64MiB"))
            sides = _sides(host, raw, client, port)
            # warm up every side (and check that raw httpcore opens a connection per request)
            before = _server_connections(port)
            await sides["raw"](50)
            res.details["raw_connections_per_request"] = (
                _server_connections(port) - before - 1
            ) / 50
            for key, measure in sides.items():
                await measure(max(1, counts[key] // 5))
            for _ in range(ctx.reps):  # interleaved: each row beside its baseline
                for key, measure in sides.items():
                    s[key].append(await measure(counts[key]))
    finally:
        client.close()
        raw.close()
        _webserver.stop(server)
    _rows(res, s, ctx.reps)
    res.details["per_run"] = counts
    res.details["body_bytes"] = {"small": SMALL, "big": BIG}
    res.details["us"] = {k: summary(v) for k, v in s.items()}
    return res


def _rows(res: FigureResult, s: dict[str, list[float]], reps: int) -> None:
    guest_path = [g - c for g, c in zip(s["guest"], s["client"], strict=True)]
    res.rows += [
        Row(
            "12. guest `wactor:http` fetch, 16 B body, `host.request` ÷ raw httpcore GET",
            "µs",
            median(s["guest"]),
            median(s["raw"]),
            runs=reps,
            note="the fetcher guest (Python, --with http) fetches a loopback server's 16 B body "
            "and answers JSON; baseline: httpcore from Python, a new connection per request, "
            "as the host makes one per exchange; lower is better",
        ),
        Row(
            "12. decomposition: the host's `HttpClient.fetch` alone, 16 B ÷ raw httpcore GET",
            "µs",
            median(s["client"]),
            median(s["raw"]),
            runs=reps,
            note="called from Python with the component's policy: request check, grant check, "
            "rate, slots, connect to the checked address, httpcore over the host's stream",
        ),
        Row(
            "12. decomposition: guest path = `host.request` fetch - `HttpClient.fetch`",
            "µs",
            median(guest_path),
            None,
            runs=reps,
            note="the request, the worker thread, the guest's JSON, the record into and out of "
            "the guest (per run, then the median)",
        ),
        Row(
            "12. denied fetch (no I/O) `host.request` ÷ Python echo `host.request`",
            "µs",
            median(s["denied"]),
            median(s["echo"]),
            runs=reps,
            note=f"an ungranted port: the guest round trip, the checks and the audit (denials "
            f"past the component's audit-per-second are shed, counted); the checks alone "
            f"(`HttpClient.fetch` raising denied): {median(s['client_denied']):.1f} µs; "
            "baseline: the Python echo guest answering 16 B, a round trip that fetches nothing",
        ),
        Row(
            "12. guest fetch, 1 MiB body, `host.request` ÷ raw httpcore GET",
            "ms",
            median(s["guest_big"]) / 1e3,
            median(s["raw_big"]) / 1e3,
            runs=reps,
            note=f"the body crosses into the guest as a list<u8>, one value per byte "
            f"({1e6 / median(s['guest_big']):.1f} MiB/s); the guest answers its size and first "
            "64 KiB; [http] max-response is 1 MiB by default",
        ),
        Row(
            "12. decomposition: `HttpClient.fetch` alone, 1 MiB ÷ raw httpcore GET",
            "ms",
            median(s["client_big"]) / 1e3,
            median(s["raw_big"]) / 1e3,
            runs=reps,
            note="the body counted as it streams in, against the size limit",
        ),
    ]
