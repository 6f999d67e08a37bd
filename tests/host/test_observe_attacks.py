"""Hostile clients of the observe endpoint: none stalls the host's loop, piles up connections or
reads the endpoint through another name; the components and the endpoint keep serving."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from conftest import ManifestFactory, wat_binary
from observe_client import fetch
from wactor.host import Host, ObserveConfig
from wactor.host._http_server import HttpLimits
from wactor.host._listen import parse_listen
from wactor.host._observe import Observer
from waiting import wait_until


async def _observer(host: Host, limits: HttpLimits) -> Observer:
    observer = Observer(host, ObserveConfig(parse_listen("127.0.0.1:0")), limits=limits)
    await observer.start()
    return observer


@pytest.fixture
async def echo_host(host: Host, manifest: ManifestFactory) -> Host:
    await host.start(manifest("test/echo/0", wat_binary("echo")))
    return host


@pytest.fixture
async def served(echo_host: Host) -> AsyncIterator[tuple[Host, str]]:
    """A host with an echo component and an endpoint whose limits are small."""
    observer = await _observer(
        echo_host, HttpLimits(max_connections=4, head_timeout=0.5, max_head_bytes=4096)
    )
    try:
        assert observer.url is not None
        yield echo_host, observer.url
    finally:
        await observer.close()


async def _connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def _still_serving(host: Host, url: str) -> None:
    """The endpoint answers others and the components answer their callers."""
    assert (await fetch(url, "/api/status")).status == 200
    assert await host.request("test/echo/0", b"alive") == b"alive"


async def _read_to_end(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (the test's own timeout
    catches a server that never does); a reset (the server closed with our bytes unread)
    ends it too."""
    chunks = []
    try:
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


async def test_slowloris_is_cut_off_while_others_are_served(served: tuple[Host, str]) -> None:
    host, url = served
    reader, writer = await _connect(url)
    writer.write(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")

    async def trickle() -> None:
        while not writer.is_closing():
            await _still_serving(host, url)  # the loop is free while the head dribbles in
            try:
                writer.write(b"X-a: b\r\n")
                await writer.drain()
            except ConnectionError:
                return
            await asyncio.sleep(0.05)

    trickler = asyncio.create_task(trickle())
    try:
        assert await _read_to_end(reader) == b""  # closed without an answer: no whole head
    finally:
        writer.close()
        await trickler
    await _still_serving(host, url)


async def test_idle_connection_is_closed_after_the_head_timeout(served: tuple[Host, str]) -> None:
    host, url = served
    reader, writer = await _connect(url)
    assert await _read_to_end(reader) == b""
    writer.close()
    await _still_serving(host, url)


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-pad: " + b"p" * 100_000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-a: b\r\n" * 5000 + b"\r\n",
    ],
    ids=["request-line", "one-header", "many-headers"],
)
async def test_oversized_request_head_is_refused(
    served: tuple[Host, str], request_head: bytes
) -> None:
    host, url = served
    reader, writer = await _connect(url)
    writer.write(request_head)
    with contextlib.suppress(ConnectionError):  # the server may close before taking it all
        await writer.drain()
    answer = await _read_to_end(reader)
    writer.close()
    # refused: 431, unless the server's close reset the connection before it was read
    assert answer.startswith(b"HTTP/1.1 431 ") or answer == b""
    await _still_serving(host, url)


async def test_garbage_is_answered_400_and_closed(served: tuple[Host, str]) -> None:
    host, url = served
    reader, writer = await _connect(url)
    writer.write(b"\x00\x01\x02 nonsense \xff\r\n\r\n")
    answer = await _read_to_end(reader)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ")
    await _still_serving(host, url)


async def test_connections_past_the_cap_are_refused_then_served_again(
    echo_host: Host,
) -> None:
    observer = await _observer(echo_host, HttpLimits(max_connections=4, head_timeout=60))
    assert observer.url is not None
    url = observer.url
    try:
        held = [await _connect(url) for _ in range(4)]
        # the server counts a connection once it has accepted it: wait until all four are in
        reader, writer = await _connect(url)
        answer = await _read_to_end(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert observer._server.refused >= 1
        assert await echo_host.request("test/echo/0", b"alive") == b"alive"
        for _, w in held:
            w.close()
            await w.wait_closed()

        await wait_until(lambda: not observer._server.connections, "the four to be gone")
        assert (await fetch(url, "/api/status")).status == 200
        text = (await fetch(url, "/metrics")).body.decode()
        assert "wactor_observe_refused_connections_total" in text
    finally:
        await observer.close()


async def test_a_request_body_is_not_read_and_the_connection_closes(
    served: tuple[Host, str],
) -> None:
    host, url = served
    reader, writer = await _connect(url)
    writer.write(
        b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\nxx"
    )
    answer = await _read_to_end(reader)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in answer.lower()
    await _still_serving(host, url)


async def test_keep_alive_serves_several_requests_on_one_connection(
    served: tuple[Host, str],
) -> None:
    _, url = served
    reader, writer = await _connect(url)
    request = b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    writer.write(
        request + request + b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    answer = await _read_to_end(reader)
    writer.close()
    assert answer.count(b"HTTP/1.1 200 ") == 2
    assert answer.count(b"HTTP/1.1 404 ") == 1


@pytest.mark.parametrize(
    ("host_header", "status"),
    [
        ("attacker.example", 403),  # a page whose name was rebound to 127.0.0.1
        ("attacker.example:9464", 403),
        ("127.0.0.1.nip.io", 403),
        ("localhost", 200),
        ("localhost:9464", 200),
        ("127.0.0.1:9464", 200),
        ("[::1]:9464", 200),
    ],
)
async def test_only_loopback_names_are_answered_on_a_loopback_address(
    served: tuple[Host, str], host_header: str, status: int
) -> None:
    _, url = served
    for path in ("/", "/api/status", "/metrics"):
        reply = await fetch(url, path, headers={"Host": host_header})
        assert reply.status == status, (path, reply)
        if status == 403:
            assert b"wactor" not in reply.body
            assert b"test/echo/0" not in reply.body
