"""A small threaded HTTP server on loopback for figure 12 (and the baselines of figure 13).

Run as its own process (``python bench/_webserver.py [STATUS_FILE]``) so that its Python work
does not share the measuring process's GIL; it prints its port on one line, then serves until it
is terminated. Paths:

    /small       200, a 16-byte body (Content-Length)
    /big         200, a 1 MiB body (Content-Length)
    /metrics     200, prometheus_client's exposition of the registry given to it (see
                 :func:`equivalent_registry`; only when a metrics file is given)
    /status      200, the bytes of STATUS_FILE as they are (application/json)
    /stats       200, ``<connections accepted>`` as text (each scrape of it counts too)

Every answer is HTTP/1.1 with its length announced; a connection stays open until the client
closes it (the clients of the figures open a new one per request).
"""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

SMALL = b"0123456789abcdef"
BIG = b"x" * (1 << 20)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, routes: dict[str, tuple[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = routes
        self.accepted = 0
        self._count_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        with self._count_lock:
            self.accepted += 1
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, addr


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/stats":
            route: tuple[str, Any] | None = ("text/plain", str(self.server.accepted).encode())
        else:
            route = self.server.routes.get(path)
        if route is None:
            self.send_error(404)
            return
        content_type, body = route
        if callable(body):
            body = body()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def equivalent_registry(text: str) -> Any:
    """A ``prometheus_client`` registry with the same metric families, label sets and (roughly)
    values as the exposition ``text``, built the way an instrumented program builds one:
    ``Counter``, ``Gauge`` and ``Histogram`` objects with labels (no ``_created`` series, as the
    host's exposition has none)."""
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.parser import text_string_to_metric_families

    prometheus_client.disable_created_metrics()  # for the metric objects made from here on
    registry = CollectorRegistry()
    for family in text_string_to_metric_families(text):
        labelnames: list[str] = []
        for sample in family.samples:
            for name in sample.labels:
                if name != "le" and name not in labelnames:
                    labelnames.append(name)
        if not family.samples:
            labelnames = ["component"]  # no child yet: HELP and TYPE only, as in the text
        doc = family.documentation or family.name
        if family.type == "histogram":
            bounds = sorted(
                {float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket")}
                - {float("inf")}
            )
            hist = Histogram(family.name, doc, labelnames, registry=registry, buckets=bounds)
            for sample in family.samples:
                if sample.name.endswith("_sum"):
                    child = hist.labels(**sample.labels) if labelnames else hist
                    child.observe(sample.value)
            continue
        metric: Any
        if family.type == "counter":
            metric = Counter(family.name, doc, labelnames, registry=registry)
        else:
            metric = Gauge(family.name, doc, labelnames, registry=registry)
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            child = metric.labels(**sample.labels) if labelnames else metric
            if family.type == "counter":
                child.inc(sample.value)
            else:
                child.set(sample.value)
    return registry


def spawn(*files: Path) -> tuple[subprocess.Popen[str], int]:
    """Start this server as a process (``files``: the status file, then the metrics text) and
    return it with its port."""
    with tempfile.TemporaryFile("w+") as errors:  # a file: a pipe nobody reads could fill up
        proc = subprocess.Popen(
            [sys.executable, __file__, *map(str, files)],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.isdigit():
            stop(proc)
            errors.seek(0)
            tail = errors.read().strip()[-300:]
            raise RuntimeError(f"the loopback web server did not start: {tail}")
    return proc, int(line)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str]) -> int:
    routes: dict[str, tuple[str, Any]] = {
        "/small": ("application/octet-stream", SMALL),
        "/big": ("application/octet-stream", BIG),
    }
    if len(argv) > 1:
        routes["/status"] = ("application/json", Path(argv[1]).read_bytes())
    if len(argv) > 2:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        registry = equivalent_registry(Path(argv[2]).read_text())
        routes["/metrics"] = (CONTENT_TYPE_LATEST, lambda: generate_latest(registry))
    server = _Server(routes)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
