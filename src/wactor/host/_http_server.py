"""A small read-only HTTP/1.1 server on the host's event loop: h11 parses, this module moves bytes.

It serves a fixed set of paths, each a coroutine that makes a whole response; ``GET`` and ``HEAD``
only (any other method: 405), any other path: 404. A query string is ignored.

Every client is assumed hostile, and none can stall the loop or pile up memory:

* at most ``max_connections`` at once; a connection past that is answered 503 and closed;
* a request head (request line and headers) must arrive whole within ``head_timeout`` seconds
  of the connection opening or of the previous response (slowloris), and be at most
  ``max_head_bytes`` long (431 otherwise, and closed); a body is never read: a request that
  has one is answered and its connection closed;
* a response must be taken by the client within ``write_timeout`` seconds, else the connection
  is dropped;
* ``Host`` is checked by ``allow_host`` (the observe endpoint refuses names other than loopback
  ones on a loopback address, so a web page cannot read it through DNS rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus

import h11

__all__ = ["HttpLimits", "HttpServer", "Request", "Response", "Route"]

_log = logging.getLogger("wactor.observe")
_READ_CHUNK = 16 * 1024


@dataclass(frozen=True, slots=True)
class Response:
    """A whole response."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Request:
    """What a route sees of a request: its path, query and headers (names in lower case)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]


Route = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one client may take of the server."""

    max_connections: int = 64
    head_timeout: float = 10.0  # seconds for a whole request head (also the keep-alive idle time)
    write_timeout: float = 10.0  # seconds for the client to take a response
    max_head_bytes: int = 8 * 1024


# Sent with every response: nothing is cached, sniffed, framed or told where it came from.
_COMMON_HEADERS = (
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
)


# The answer past the connection cap, the same bytes every time.
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\nconnection: close\r\n\r\ntoo many connections\n"
)


def _text(status: int, text: str, *headers: tuple[str, str]) -> Response:
    return Response(status, (text + "\n").encode(), headers=headers)


class HttpServer:
    """Serves ``routes`` (path -> response maker) until closed."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        *,
        limits: HttpLimits | None = None,
        allow_host: Callable[[str | None], bool] = lambda _: True,
    ) -> None:
        self._routes = dict(routes)
        self._limits = limits or HttpLimits()
        self._allow_host = allow_host
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.refused = 0  # connections turned away past the cap

    @property
    def connections(self) -> int:
        """Connections being served now."""
        return len(self._connections)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port``; return the address bound (a port 0 becomes the real one)."""
        self._server = await asyncio.start_server(self._accept, host, port, reuse_address=True)
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def close(self) -> None:
        """Stop listening and drop every connection; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections))
        if server is not None:
            await server.wait_closed()

    # -- one connection ------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._server is None or len(self._connections) >= self._limits.max_connections:
            self.refused += 1
            writer.write(_BUSY)  # whatever the client sends: it is not read
            await _close(writer)
            return
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, TimeoutError, h11.LocalProtocolError):
            pass  # the client went away, stalled, or cannot be answered: drop it
        except asyncio.CancelledError:
            if self._server is not None:
                raise  # not a shutdown of ours
        except Exception:  # noqa: BLE001 - one connection's surprise must not reach the loop
            _log.warning("observe: a connection failed", exc_info=True)
        finally:
            self._connections.discard(task)
            await _close(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limits = self._limits
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head_bytes)
        while True:
            try:
                async with asyncio.timeout(limits.head_timeout):
                    request = await _read_head(conn, reader)
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint  # 431 for a head past max_head_bytes, else 400
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._send(conn, writer, _text(status, _reason(status)), close=True)
                return
            if request is None:
                return  # closed by the client
            has_body = _has_body(conn)
            response = await self._respond(request)
            close = has_body or conn.their_state is h11.MUST_CLOSE
            await self._send(conn, writer, response, close=close)
            if close or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _respond(self, request: h11.Request) -> Response:
        host = next((v for k, v in request.headers if k == b"host"), None)
        if not self._allow_host(host.decode("latin-1") if host is not None else None):
            return _text(403, "forbidden: this endpoint answers to its own address only")
        path, _, query = request.target.decode("latin-1").partition("?")
        route = self._routes.get(path)
        if route is None:
            return _text(404, "not found")
        if request.method not in (b"GET", b"HEAD"):
            return _text(
                405, "method not allowed: this endpoint is read-only", ("allow", "GET, HEAD")
            )
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers}
        try:
            return await route(Request(request.method.decode("latin-1"), path, query, headers))
        except Exception:  # noqa: BLE001 - one failed page must not end the server
            _log.exception("observe: %s failed", path)
            return _text(500, "internal error (see the host's log)")

    def _head(self, conn: h11.Connection, response: Response, *, close: bool) -> bytes:
        headers = [
            ("content-type", response.content_type),
            ("content-length", str(len(response.body))),
            *_COMMON_HEADERS,
            *response.headers,
        ]
        if close:
            headers.append(("connection", "close"))
        data = conn.send(
            h11.Response(
                status_code=response.status, headers=headers, reason=_reason(response.status)
            )
        )
        return data or b""

    async def _send(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, response: Response, *, close: bool
    ) -> None:
        writer.write(self._head(conn, response, close=close))
        writer.write(conn.send(h11.Data(data=response.body)) or b"")  # HEAD: h11 sends nothing
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        async with asyncio.timeout(self._limits.write_timeout):
            await writer.drain()


async def _read_head(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Request | None:
    """The next request head, or ``None`` when the client closed the connection."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(_READ_CHUNK))
            continue
        if isinstance(event, h11.Request):
            return event
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


def _has_body(conn: h11.Connection) -> bool:
    """After the head: whether a body follows (it is not read; the connection will close)."""
    try:
        return not isinstance(conn.next_event(), h11.EndOfMessage)
    except h11.RemoteProtocolError:
        return True  # a malformed body: answer the head, then close


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
