"""The host's HTTP client for guests (``wactor:http/client``): one checked exchange per call.

Why httpcore: it is the engine under httpx, kept by the same people, sync and typed; it speaks
HTTP/1.1 through h11 over any stream it is handed, never follows redirects, never reads proxy or
TLS settings from the environment and never decodes ``Content-Encoding`` (so the size limit
counts the bytes that arrive). The host opens that stream itself, to an address the policy
checked: the name is resolved once, every address is checked, and only those are connected to,
while the URL, the ``Host`` header, TLS's server name and the certificate check keep the name.

An exchange, on the thread of the guest's call (a worker; such a component never runs on the
loop): check the request (``invalid-request``), check ``host:port`` against the grants before
any lookup (``denied``), take one message from the component's rate, wait for a slot of the
component (its instances together) and of the host, resolve the name, check every address
(``denied``), connect, TLS, write, read. The whole of it, the waits and the name lookup too,
fits in one deadline: the request's ``timeout-ms`` (or ``[http] timeout-ms``), at most
``[http] max-timeout-ms``, and never past the component's own call deadline (``timeout``).
Every socket operation gets only the time left. The body is counted as it streams in and the
connection dropped past ``[http] max-response`` (``too-large``). One connection per exchange,
closed afterwards: nothing is reused across exchanges, or across checks.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

import certifi
import httpcore

from wactor.errors import HttpError, HttpRequestError, HttpTimeoutError, ResponseTooLargeError
from wactor.host._config import HttpConfig
from wactor.host._http_request import HttpRequest, check_request
from wactor.security import CapabilityPolicy
from wactor.security._netpolicy import IPAddress

__all__ = ["HttpClient", "HttpResponse"]

# Name lookups have no timeout of their own: they run on a few threads of their own and the
# exchange waits for them only as long as its deadline allows.
_RESOLVER_THREADS = 4
_READ_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What ``fetch`` returns to the guest."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class _Deadline:
    """The end of one exchange; every wait and socket operation gets what is left of it."""

    __slots__ = ("at", "by_call", "ms")

    def __init__(self, start: float, ms: int, call_deadline: float) -> None:
        self.by_call = call_deadline < start + ms / 1000
        self.at = call_deadline if self.by_call else start + ms / 1000
        self.ms = ms

    def left(self) -> float:
        return self.at - time.monotonic()


class _Stream(httpcore.NetworkStream):
    """A connected socket whose every operation is bounded by the exchange's deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def _bound(self, timeout_error: type[Exception]) -> None:
        left = self._deadline.left()
        if left <= 0:
            raise timeout_error("deadline reached")
        self._sock.settimeout(left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._bound(httpcore.ReadTimeout)
        try:
            return self._sock.recv(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        while view:
            self._bound(httpcore.WriteTimeout)
            try:
                sent = self._sock.send(view)
            except TimeoutError as exc:
                raise httpcore.WriteTimeout(str(exc)) from exc
            except OSError as exc:
                raise httpcore.WriteError(str(exc)) from exc
            view = view[sent:]

    def close(self) -> None:
        self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        raise NotImplementedError  # the client does TLS itself, before httpcore has the stream

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object" and isinstance(self._sock, ssl.SSLSocket):
            return self._sock._sslobj  # type: ignore[attr-defined] # what httpcore's does
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "socket":
            return self._sock
        return None


class HttpClient:
    """The host-wide client: TLS settings, slots, the resolver; one per host."""

    def __init__(self, config: HttpConfig) -> None:
        self.config = config
        self._tls = ssl.create_default_context(cafile=certifi.where())
        if config.ca_file is not None:
            self._tls.load_verify_locations(cafile=str(config.ca_file))
        self._tls.set_alpn_protocols(["http/1.1"])
        self._host_slots = threading.BoundedSemaphore(config.host_concurrency)
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._resolver = concurrent.futures.ThreadPoolExecutor(
            _RESOLVER_THREADS, thread_name_prefix="wactor-dns"
        )

    def close(self) -> None:
        """Stop the resolver threads (a lookup in progress is abandoned). Idempotent."""
        self._resolver.shutdown(wait=False, cancel_futures=True)

    # -- one exchange ----------------------------------------------------------------------------

    def fetch(
        self,
        policy: CapabilityPolicy,
        group: str,
        *,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        timeout_ms: int | None,
        call_deadline: float,
    ) -> HttpResponse:
        """Perform one checked exchange for the component of ``policy``.

        ``group`` names whose slots it takes (a component's instances share them). Raise
        ``HttpRequestError``, ``CapabilityDeniedError`` (or ``RateLimitedError``),
        ``HttpTimeoutError``, ``ResponseTooLargeError`` or ``HttpError``.
        """
        start = time.monotonic()
        config = self.config
        ms = min(config.timeout_ms if timeout_ms is None else timeout_ms, config.max_timeout_ms)
        deadline = _Deadline(start, ms, call_deadline)
        request = check_request(method, url, headers, body, max_body=config.max_request_bytes)
        policy.check_connect(request.host, request.port)
        policy.spend("fetch", request.target_text, capability="network.connect")
        try:
            with self._slot(group, deadline), self._slot(None, deadline):
                addresses = self._resolve(request, deadline)
                policy.check_connect(request.host, request.port, addresses)
                return self._exchange(request, addresses, deadline)
        except (httpcore.TimeoutException, TimeoutError):
            limit = "the call's own deadline" if deadline.by_call else f"{deadline.ms} ms"
            raise HttpTimeoutError(
                f"{request.method} {request.target_text}: no complete answer within {limit}",
                timeout_ms=deadline.ms,
                call_deadline=deadline.by_call,
            ) from None

    @contextlib.contextmanager
    def _slot(self, group: str | None, deadline: _Deadline) -> Iterator[None]:
        """Hold one slot of ``group`` (``None``: the host's) until the block ends."""
        slots = self._host_slots if group is None else self._group_slots(group)
        if not slots.acquire(timeout=max(0.0, deadline.left())):
            raise TimeoutError("no free slot")
        try:
            yield
        finally:
            slots.release()

    def _group_slots(self, group: str) -> threading.BoundedSemaphore:
        with self._lock:
            slots = self._slots.get(group)
            if slots is None:
                slots = self._slots[group] = threading.BoundedSemaphore(self.config.concurrency)
            return slots

    def _resolve(self, request: HttpRequest, deadline: _Deadline) -> list[IPAddress]:
        """The addresses of the request's host: itself if it is one, else one lookup."""
        try:
            return [ip_address(request.host)]
        except ValueError:
            pass
        try:
            future = self._resolver.submit(
                socket.getaddrinfo, request.host, request.port, type=socket.SOCK_STREAM
            )
        except RuntimeError as exc:  # the resolver was shut down: the host is closing
            raise HttpError(f"{request.host}: the host is shutting down") from exc
        try:
            infos = future.result(timeout=max(0.0, deadline.left()))
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise
        except (OSError, UnicodeError) as exc:
            raise HttpError(f"{request.host}: name lookup failed ({_reason(exc)})") from exc
        found: list[IPAddress] = []
        for family, _, _, _, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                address = ip_address(str(sockaddr[0]))
                if address not in found:
                    found.append(address)
        return found

    def _connect(
        self, request: HttpRequest, addresses: Sequence[IPAddress], deadline: _Deadline
    ) -> socket.socket:
        """Connect to the first of the checked ``addresses`` that answers."""
        failure: OSError | None = None
        for address in addresses:
            left = deadline.left()
            if left <= 0:
                raise TimeoutError("deadline reached")
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(left)
                sock.connect((str(address), request.port))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except TimeoutError:
                sock.close()
                raise
            except OSError as exc:
                sock.close()
                failure = exc
                continue
            return sock
        assert failure is not None
        raise HttpError(f"{request.target_text}: cannot connect ({_reason(failure)})") from failure

    def _exchange(
        self, request: HttpRequest, addresses: Sequence[IPAddress], deadline: _Deadline
    ) -> HttpResponse:
        sock = self._connect(request, addresses, deadline)
        try:
            if request.scheme == "https":
                sock = self._handshake(sock, request, deadline)
            connection = httpcore.HTTP11Connection(
                httpcore.Origin(request.scheme.encode(), request.host.encode(), request.port),
                _Stream(sock, deadline),
            )
            with connection:
                return self._send(connection, request)
        finally:
            sock.close()

    def _handshake(
        self, sock: socket.socket, request: HttpRequest, deadline: _Deadline
    ) -> ssl.SSLSocket:
        left = deadline.left()
        if left <= 0:
            raise TimeoutError("deadline reached")
        sock.settimeout(left)  # the handshake as a whole is bounded by the socket's timeout
        try:
            return self._tls.wrap_socket(sock, server_hostname=request.host)
        except ssl.SSLCertVerificationError as exc:
            raise HttpError(
                f"{request.target_text}: TLS certificate rejected ({exc.verify_message})"
            ) from exc
        except TimeoutError:
            raise
        except (ssl.SSLError, OSError) as exc:
            raise HttpError(f"{request.target_text}: TLS failed ({_reason(exc)})") from exc

    def _send(self, connection: httpcore.HTTP11Connection, request: HttpRequest) -> HttpResponse:
        headers = list(request.headers)
        if request.body is not None:
            headers.append((b"Content-Length", str(len(request.body)).encode("ascii")))
        url = httpcore.URL(
            scheme=request.scheme.encode(),
            host=request.host.encode(),
            port=request.port,
            target=request.target.encode("ascii"),
        )
        wire = httpcore.Request(request.method.encode(), url, headers=headers, content=request.body)
        limit = self.config.max_response_bytes
        try:
            response = connection.handle_request(wire)
            try:
                announced = _content_length(response.headers)
                if announced is not None and announced > limit:
                    raise self._too_large(request, limit)
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_stream():
                    size += len(chunk)
                    if size > limit:
                        raise self._too_large(request, limit)
                    chunks.append(chunk)
            finally:
                response.close()
        except httpcore.LocalProtocolError as exc:
            raise HttpRequestError(f"{request.target_text}: {exc}") from exc
        except (httpcore.RemoteProtocolError, httpcore.ReadError, httpcore.WriteError) as exc:
            raise HttpError(f"{request.target_text}: the exchange failed ({_reason(exc)})") from exc
        return HttpResponse(
            response.status,
            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in response.headers],
            b"".join(chunks),
        )

    def _too_large(self, request: HttpRequest, limit: int) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"{request.target_text}: the response body is longer than {limit} bytes "
            "([http] max-response)",
            limit=limit,
        )


def _content_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


def _reason(exc: BaseException) -> str:
    """An exception's text on one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"
