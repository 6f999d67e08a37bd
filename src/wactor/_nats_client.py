"""The one NATS connection of a host, shared by its broker, its storage and its registry.

:class:`NatsConnection` owns the nats-py client (hardened, below), its connection callbacks and
its JetStream contexts. Whoever opens it closes it; the broker, the KV storage and the lattice
registry built over it only use it.

nats-py parses a message's header block on its connection's read loop. A status line that is
not UTF-8 (``NATS/1.0 503 \\xff``), which any peer may publish to any subject we listen on,
raises there, and the read loop stops: nothing more is read until the connection is given up
and re-established, seconds later. :class:`NatsClient` reads such a block as a message whose
headers are the single :data:`MALFORMED_HEADER`, which the receiving code refuses like any
other malformed message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.js.client import JetStreamContext

from wactor._nats_names import MALFORMED_HEADER, check_lattice, parse_servers
from wactor.errors import DeliveryFailedError

__all__ = ["MALFORMED_HEADER", "NatsClient", "NatsConnection", "settle"]

_log = logging.getLogger("wactor.nats")


class NatsClient(Client):
    """A nats-py ``Client`` whose read loop survives malformed header blocks."""

    async def _process_headers(self, headers: Any) -> dict[str, str] | None:
        try:
            parsed: dict[str, str] | None = await super()._process_headers(headers)
        except Exception:  # noqa: BLE001 - a peer's garbage must not stop the read loop
            return {MALFORMED_HEADER: "1"}
        return parsed


class NatsConnection:
    """A connection to the NATS servers of one lattice, on the event loop that opens it.

    ``url`` is one server URL, a comma-separated list, or a list; ``lattice`` names the group of
    hosts that see each other; ``host_id`` names this host (in the connection's name on the
    server and in log lines). The connection reconnects forever (unless ``reconnect`` is
    false: a one-shot reader gives up when a server refuses twice) and does not echo its own
    publications to its own subscriptions. ``ValueError`` for a bad URL or lattice name.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        lattice: str = "default",
        *,
        host_id: str,
        connect_timeout: float = 5.0,
        reconnect_wait: float = 0.1,
        ping_interval: float = 5.0,
        reconnect: bool = True,
    ) -> None:
        self.lattice = check_lattice(lattice)
        self.servers = parse_servers(url)
        self.host_id = host_id
        self._connect_timeout = connect_timeout
        self._reconnect_wait = reconnect_wait
        self._ping_interval = ping_interval
        self._reconnect = reconnect
        self._nc: NatsClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open_lock = asyncio.Lock()
        self._closed = False
        self._jetstreams: dict[float, JetStreamContext] = {}
        self._on_disconnected: list[Callable[[], None]] = []

    @property
    def where(self) -> str:
        """The servers, as a message names them."""
        return ", ".join(self.servers)

    @property
    def connect_timeout(self) -> float:
        """Seconds a connection attempt may take."""
        return self._connect_timeout

    @property
    def closed(self) -> bool:
        """Tell whether :meth:`close` was called."""
        return self._closed

    @property
    def connected(self) -> bool:
        """Tell whether the connection to NATS is up right now."""
        return self._nc is not None and self._nc.is_connected

    @property
    def client(self) -> NatsClient | None:
        """The nats-py client once connected (``None`` before, and after ``close``)."""
        return self._nc

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the connection runs on (``DeliveryFailedError`` before connecting)."""
        if self._loop is None:
            raise DeliveryFailedError(f"not connected to NATS at {self.where}")
        return self._loop

    def jetstream(self, timeout: float = 5.0) -> JetStreamContext:
        """The JetStream context whose API requests wait at most ``timeout`` seconds."""
        if self._nc is None:
            raise DeliveryFailedError(f"not connected to NATS at {self.where}")
        js = self._jetstreams.get(timeout)
        if js is None:
            js = self._jetstreams[timeout] = self._nc.jetstream(timeout=timeout)
        return js

    def on_disconnected(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever the connection drops (and once when it closes)."""
        self._on_disconnected.append(callback)

    async def connect(self) -> None:
        """Connect (waiting at most ``connect_timeout``); idempotent.

        ``DeliveryFailedError`` when no server answers or the connection was closed.
        """
        async with self._open_lock:
            if self._closed:
                raise DeliveryFailedError(f"connection to NATS at {self.where} is closed")
            if self._nc is not None:
                return
            nc = NatsClient()
            try:
                await asyncio.wait_for(
                    nc.connect(
                        servers=list(self.servers),
                        name=f"wactor {self.lattice} {self.host_id}",
                        allow_reconnect=self._reconnect,
                        # nats-py retries a first connection for ever with 0: 1 gives up at once
                        max_reconnect_attempts=-1 if self._reconnect else 1,
                        reconnect_time_wait=self._reconnect_wait,  # type: ignore[arg-type]
                        connect_timeout=max(1, round(self._connect_timeout)),
                        ping_interval=self._ping_interval,  # type: ignore[arg-type]
                        max_outstanding_pings=2,
                        no_echo=True,
                        error_cb=self._error,
                        disconnected_cb=self._disconnected,
                        reconnected_cb=self._reconnected,
                        closed_cb=self._closed_cb,
                    ),
                    self._connect_timeout,
                )
            except (OSError, TimeoutError, nats.errors.Error) as exc:
                with contextlib.suppress(Exception):
                    await nc.close()
                raise DeliveryFailedError(
                    f"cannot connect to NATS at {self.where}: {str(exc) or type(exc).__name__}"
                ) from exc
            self._nc = nc
            self._loop = asyncio.get_running_loop()

    async def settle(self, timeout: float) -> None:
        """Return once the server has processed everything sent so far (see :func:`settle`)."""
        if self._nc is not None:
            await settle(self._nc, timeout)

    async def close(self) -> None:
        """Disconnect (what was published is flushed first); idempotent."""
        if self._closed:
            return
        self._closed = True
        nc, self._nc = self._nc, None
        self._jetstreams.clear()
        if nc is not None:
            with contextlib.suppress(nats.errors.Error, TimeoutError, OSError):
                await nc.close()

    async def _error(self, exc: Exception) -> None:
        if isinstance(exc, nats.errors.SlowConsumerError):
            _log.warning("%s: NATS slow consumer on %s: dropped", self.host_id, exc.subject)
        else:
            _log.debug("%s: NATS connection error: %r", self.host_id, exc)

    async def _disconnected(self) -> None:
        if self._nc is not None and not self._closed:  # not a first connection that failed
            _log.warning("%s: disconnected from NATS; reconnecting", self.host_id)
        self._tell_disconnected()

    async def _reconnected(self) -> None:
        nc = self._nc
        url = nc.connected_url.netloc if nc is not None and nc.connected_url else "?"
        _log.info("%s: reconnected to NATS at %s", self.host_id, url)

    async def _closed_cb(self) -> None:
        self._tell_disconnected()

    def _tell_disconnected(self) -> None:
        for callback in list(self._on_disconnected):
            try:
                callback()
            except Exception:  # noqa: BLE001 - one listener's bug must not starve the others
                _log.exception("%s: disconnection listener failed", self.host_id)


async def settle(nc: Client, timeout: float) -> None:
    """Return once the server has processed everything ``nc`` sent so far.

    nats-py 2.16 writes a flush's PING straight to the socket, ahead of commands still in its
    write buffer, so one flush can come back before a buffered SUB reached the server (seen
    here as "no responders" right after ``register``). The first flush pushes the buffer out;
    the second one's PONG comes after it.
    """
    wait = max(1, round(timeout))
    await nc.flush(wait)
    await nc.flush(wait)
