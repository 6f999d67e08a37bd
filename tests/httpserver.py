"""A real HTTP(S) server on loopback that records everything that reaches it.

Each accepted connection is counted (so a test can show that *nothing* reached the server), and
each request is recorded with its peer address, method, path, headers, body and, over TLS, the
server name the client sent (SNI). Paths:

    /ok              200, two ``X-Multi`` headers, body ``hello <Host header>``
    /echo            200, the request's body back
    /status/N        status N, empty body
    /redirect?to=U   302 to U
    /big             64 MiB, announced by Content-Length
    /big-chunked     64 MiB, chunked (no length announced)
    /drip            Content-Length 100, then one byte every 50 ms
    /hold            200 once the test calls ``release()`` (or after 30 s)

TLS uses a test CA made with ``cryptography`` (:func:`make_test_ca`); its leaf certificate
names ``localhost`` and ``127.0.0.1``.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["LocalCA", "Seen", "TestServer", "make_test_ca", "serving"]

BIG = 64 << 20


@dataclass(frozen=True)
class Seen:
    """One request as it reached the server."""

    scheme: str
    peer: str
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    sni: str | None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass(frozen=True)
class LocalCA:
    """Files of a test CA and of the leaf certificate it signed."""

    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_test_ca(directory: Path, names: tuple[str, ...] = ("localhost",)) -> LocalCA:
    """Write a CA and a leaf certificate for ``names`` and 127.0.0.1 into ``directory``."""
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("wactor test CA"))
        .issuer_name(_name("wactor test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - day)
        .not_valid_after(now + day)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - day)
        .not_valid_after(now + day)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    out = LocalCA(directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key")
    out.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    out.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return out


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _record(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        sni = getattr(self.connection, "wactor_sni", None)
        self.server.owner.record(
            Seen(
                self.server.owner.scheme,
                self.client_address[0],
                self.command,
                self.path,
                list(self.headers.items()),
                body,
                sni,
            )
        )
        return body

    def _reply(
        self, status: int, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        body = self._record()
        url = urlsplit(self.path)
        try:
            if url.path == "/ok":
                host = self.headers.get("Host") or ""
                extra = (("X-Multi", "a"), ("X-Multi", "b"), ("Content-Type", "text/plain"))
                self._reply(200, f"hello {host}".encode(), extra)
            elif url.path == "/echo":
                self._reply(200, body)
            elif url.path.startswith("/status/"):
                self._reply(int(url.path.rpartition("/")[2]))
            elif url.path == "/redirect":
                self._reply(302, headers=(("Location", parse_qs(url.query)["to"][0]),))
            elif url.path == "/big":
                self._stream(chunked=False)
            elif url.path == "/big-chunked":
                self._stream(chunked=True)
            elif url.path == "/drip":
                self._drip()
            elif url.path == "/hold":
                self.server.owner.released.wait(30)
                self._reply(200, b"held")
            else:
                self._reply(404)
        except OSError:  # the client went away: what a size limit or a timeout does
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def _stream(self, *, chunked: bool) -> None:
        self.send_response(200)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(BIG))
        self.end_headers()
        chunk = b"x" * 65536
        for _ in range(BIG // len(chunk)):
            if chunked:
                self.wfile.write(b"10000\r\n" + chunk + b"\r\n")
            else:
                self.wfile.write(chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _drip(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.flush()
        for _ in range(100):
            self.wfile.write(b"y")
            self.wfile.flush()
            time.sleep(0.05)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: TestServer

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        self.owner.count_accept()
        tls = self.owner.tls
        if tls is None:
            return sock, address
        # the handshake happens in the request's own thread, at its first read
        return tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client that rejected the certificate or went away: nothing to report


class TestServer:
    """One loopback server (http, or https with ``ca``) and what reached it."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, ca: LocalCA | None = None) -> None:
        self.scheme = "http" if ca is None else "https"
        self.tls: ssl.SSLContext | None = None
        if ca is not None:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(ca.cert, ca.key)
            self.tls.sni_callback = self._on_sni
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._accepted = 0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @staticmethod
    def _on_sni(connection: Any, name: str | None, context: Any) -> None:
        connection.wactor_sni = name

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    def count_accept(self) -> None:
        with self._lock:
            self._accepted += 1

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    @property
    def accepted(self) -> int:
        with self._lock:
            return self._accepted

    def release(self) -> None:
        self.released.set()

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def serving(ca: LocalCA | None = None) -> Iterator[TestServer]:
    """Run a :class:`TestServer` for the block."""
    server = TestServer(ca)
    server.start()
    try:
        yield server
    finally:
        server.close()
