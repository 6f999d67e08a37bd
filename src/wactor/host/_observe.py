"""The observe endpoint of a host: ``/metrics``, ``/api/status`` and the dashboard at ``/``.

Read-only: every route reads the host's counters and changes nothing. A route runs on the
host's loop and only copies numbers there (the supervision tree, each component's counters);
the Prometheus text is written on a worker thread (and storage usage read there, which may
wait for a disk or a NATS server), one scrape at a time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from wactor._bridge import run_on_thread, set_thread_deadline
from wactor._ids import ComponentId
from wactor.errors import HostConfigError, WactorError
from wactor.host._http_server import HttpLimits, HttpServer, Request, Response
from wactor.host._listen import ObserveConfig, format_address
from wactor.host._prometheus import DENIAL_EVENTS, ComponentSample, HostCollector, HostSample
from wactor.host._runtime import ComponentRuntime
from wactor.host._table import ComponentTable
from wactor.messaging import DeadLetterLog
from wactor.security import AuditLog
from wactor.storage import StorageBackend

__all__ = ["ObservedHost", "Observer", "start_observer"]

_log = logging.getLogger("wactor.observe")

RECENT = 30  # audit entries and dead letters shown by the status and the dashboard
_TEXT_LIMIT = 400  # characters of one reason or target shown (a guest may have chosen them)
_SCRAPE_TIMEOUT = 10.0  # seconds for one Prometheus scrape's worker-thread part


class _LoadFailure(Protocol):
    @property
    def manifest(self) -> Path: ...
    @property
    def error(self) -> WactorError: ...
    @property
    def component(self) -> ComponentId | None: ...


class ObservedHost(Protocol):
    """What the endpoint reads of a host."""

    @property
    def host_id(self) -> str: ...
    @property
    def table(self) -> ComponentTable: ...
    @property
    def dead_letters(self) -> DeadLetterLog: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def storage(self) -> StorageBackend: ...
    @property
    def failure(self) -> str | None: ...
    @property
    def load_failures(self) -> Sequence[_LoadFailure]: ...

    def snapshot(self) -> dict[str, Any]:
        """The supervision tree as plain data."""
        ...


class Observer:
    """Serves a host's metrics, status and dashboard on the address of its config."""

    def __init__(
        self, host: ObservedHost, config: ObserveConfig, *, limits: HttpLimits | None = None
    ) -> None:
        assert config.listen is not None
        self._host = host
        self._listen = config.listen
        self._started = time.time()
        self._collector = HostCollector(self._storage_bytes)
        self._registry = CollectorRegistry(auto_describe=False)  # this host's, not the global
        self._registry.register(self._collector)
        self._scrape = asyncio.Lock()
        self._dashboard, csp = _dashboard()
        self._dashboard_headers = (("content-security-policy", csp),)
        self._server = HttpServer(
            {"/": self._page, "/metrics": self._metrics, "/api/status": self._status},
            limits=limits,
            allow_host=self._allow_host,
        )
        self.url: str | None = None  # once serving

    async def start(self, *, file: Path | None = None) -> str:
        """Start serving; return the endpoint's URL. An address that cannot be bound is a
        ``HostConfigError`` naming ``observe.listen`` (of ``file``, the host's config)."""
        try:
            host, port = await self._server.start(self._listen.host, self._listen.port)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise HostConfigError(
                f"cannot listen on {self._listen}: {reason}",
                file=None if file is None else str(file),
                key="observe.listen",
                expected="a free address of this machine",
            ) from exc
        self.url = f"http://{format_address(host, port)}/"
        if not self._listen.loopback:
            _log.warning(
                "observe: serving on %s, which is not a loopback address: anyone who can reach "
                "it reads this host's components, failures and audit entries",
                self.url,
            )
        else:
            _log.info("observe: serving on %s", self.url)
        return self.url

    async def close(self) -> None:
        """Stop serving; idempotent."""
        await self._server.close()

    def _allow_host(self, header: str | None) -> bool:
        """On a loopback address, answer only requests for a loopback name: a web page that
        rebinds its own name to 127.0.0.1 must not read the endpoint."""
        if header is None or not self._listen.loopback:
            return True
        name = header.rsplit(":", 1)[0] if not header.endswith("]") else header
        name = name.strip("[]").lower()
        if name == "localhost":
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    # -- routes ---------------------------------------------------------------------------------

    async def _page(self, request: Request) -> Response:
        return Response(200, self._dashboard, "text/html; charset=utf-8", self._dashboard_headers)

    async def _status(self, request: Request) -> Response:
        body = json.dumps(self.status(), separators=(",", ":")).encode()
        return Response(200, body, "application/json")

    async def _metrics(self, request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        async with self._scrape:
            self._collector.sample = self.sample()
            body = await asyncio.wait_for(
                run_on_thread(None, lambda: _render(encoder, self._registry)), _SCRAPE_TIMEOUT
            )
        return Response(200, body, content_type)

    # -- what they read -------------------------------------------------------------------------

    def sample(self) -> HostSample:
        """The host's numbers now (on the loop's thread)."""
        host = self._host
        snap = host.snapshot()
        components = []
        for node in _components(snap["tree"]):
            runtime = host.table.runtime(ComponentId.parse(node["id"]))
            calls = quota = None
            version = ""
            if runtime is not None:
                if runtime.instance is not None:
                    runtime.instance.count_fuel()  # never waits: skipped during a call
                calls = runtime.metrics.snapshot()
                quota = runtime.manifest.capabilities.storage_quota
                version = _version(runtime)
            components.append(
                ComponentSample(
                    node["id"],
                    version,
                    node["state"],
                    node["health"],
                    node["depth"],
                    node["capacity"],
                    node["restarts"],
                    node["refused"],
                    calls,
                    quota,
                )
            )
        supervisors = tuple((s["id"], s["restarts"]) for s in _supervisors(snap["tree"]))
        return HostSample(
            tuple(components),
            supervisors,
            host.dead_letters.total,
            host.audit.offered(),
            host.audit.shed_total,
            host.failure is not None,
            len(host.load_failures),
            self._server.refused,
        )

    def status(self) -> dict[str, Any]:
        """The supervision tree, states, mailboxes, restarts, last failures, recent audit
        entries and dead letters, as plain data (``/api/status``)."""
        host = self._host
        snap = host.snapshot()
        for sup in _supervisors(snap["tree"]):
            if sup["last_failure"]:
                sup["last_failure"] = _short(sup["last_failure"])
        for node in _components(snap["tree"]):
            if node["last_failure"]:
                node["last_failure"] = _short(node["last_failure"])
            runtime = host.table.runtime(ComponentId.parse(node["id"]))
            if runtime is None:
                continue
            calls = runtime.metrics.snapshot()
            node["version"] = _version(runtime)
            node["messages"] = calls.messages
            node["failures"] = calls.failures
            node["call_seconds"] = sum(total for _, total in calls.latency.values())
            node["fuel_used"] = calls.fuel_used
        audit = host.audit
        offered = audit.offered()
        return {
            "host": {
                "id": host.host_id,
                "pid": snap["pid"],
                "time": snap["time"],
                "started": self._started,
                "failure": snap["failure"],
                "dead_letters": snap["dead_letters"],
                "denials": sum(offered.get(e, 0) for e in DENIAL_EVENTS),
                "audit_shed": audit.shed_total,
                "load_failures": [
                    {
                        "manifest": str(f.manifest),
                        "component": None if f.component is None else str(f.component),
                        "error": _short(str(f.error)),
                    }
                    for f in host.load_failures
                ],
            },
            "tree": snap["tree"],
            "audit": [
                {
                    "time": e.time,
                    "event": e.event,
                    "component": e.component,
                    "allowed": e.allowed,
                    "action": _short(e.action),
                    "target": _short(e.target),
                    "reason": _short(e.reason),
                }
                for e in audit.recent(RECENT)
            ],
            "dead_letters": [
                {
                    "time": d.time_ns / 1e9,
                    "component": d.component,
                    "reason": _short(d.reason),
                    "sender": d.sender,
                    "kind": d.kind,
                    "size": d.size,
                }
                for d in host.dead_letters.entries()[-RECENT:]
            ],
        }

    def _storage_bytes(self, component: str, quota: int) -> int:
        return self._host.storage.usage(component, quota=quota).used_bytes


async def start_observer(
    host: ObservedHost, config: ObserveConfig, file: Path | None
) -> Observer | None:
    """Serve the endpoint of ``config`` (from the host config ``file``) for ``host``; ``None``
    when it has no address."""
    if config.listen is None:
        return None
    observer = Observer(host, config)
    await observer.start(file=file)
    return observer


def _render(encoder: Any, registry: CollectorRegistry) -> bytes:
    """On a worker thread: the exposition, waiting for storage at most the scrape timeout."""
    set_thread_deadline(time.monotonic() + _SCRAPE_TIMEOUT)
    body: bytes = encoder(registry)
    return body


def _version(runtime: ComponentRuntime) -> str:
    return str(runtime.metadata.version if runtime.metadata else runtime.manifest.version)


def _components(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for child in node.get("children", ()):
        if child.get("kind") == "supervisor":
            yield from _components(child)
        else:
            yield child


def _supervisors(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children", ()):
        if child.get("kind") == "supervisor":
            yield from _supervisors(child)


def _short(text: str) -> str:
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


_INLINE = re.compile(rb"<(script|style)>(.*?)</\1>", re.DOTALL)


def _dashboard() -> tuple[bytes, str]:
    """The dashboard page, and a Content-Security-Policy that lets only its own inline script
    and style run (by their hashes), fetch nothing but this endpoint, and load nothing else."""
    page = resources.files("wactor.host").joinpath("_dashboard.html").read_bytes()
    hashes: dict[bytes, list[str]] = {b"script": [], b"style": []}
    for match in _INLINE.finditer(page):
        digest = base64.b64encode(hashlib.sha256(match.group(2)).digest()).decode()
        hashes[match.group(1)].append(f"'sha256-{digest}'")
    none = "'none'"
    csp = (
        "default-src 'none'; "
        f"script-src {' '.join(hashes[b'script']) or none}; "
        f"style-src {' '.join(hashes[b'style']) or none}; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    return page, csp
