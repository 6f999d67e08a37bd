"""One host's place in a lattice: one NATS connection, with the broker, storage and registry
that share it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from wactor._nats_client import NatsConnection
from wactor.lattice._registry import LatticeRegistry
from wactor.messaging._envelope import Envelope
from wactor.messaging._nats import NatsBroker
from wactor.storage._nats_kv import NatsKvStorage

__all__ = ["LatticeConnection"]


class LatticeConnection:
    """A host's one connection to the NATS servers of ``lattice``, and its views over it.

    ``url`` is one server URL, a comma-separated list, or a list; ``host_id`` names the host.
    Nothing connects before :meth:`connect` (or the first view's ``open``); :meth:`open` builds
    and connects at once. The broker, the storage and the registry made here each exist once and
    use this connection; :meth:`close` closes them and then the connection. ``ValueError`` for a
    bad URL or lattice name.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        lattice: str = "default",
        *,
        host_id: str,
        connect_timeout: float = 5.0,
    ) -> None:
        self.nats = NatsConnection(url, lattice, host_id=host_id, connect_timeout=connect_timeout)
        self._broker: NatsBroker | None = None
        self._storage: NatsKvStorage | None = None
        self._registry: LatticeRegistry | None = None
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str | Sequence[str],
        lattice: str = "default",
        *,
        host_id: str,
        connect_timeout: float = 5.0,
    ) -> LatticeConnection:
        """Connect to ``lattice`` at ``url`` (``DeliveryFailedError`` when no server answers)."""
        conn = cls(url, lattice, host_id=host_id, connect_timeout=connect_timeout)
        await conn.connect()
        return conn

    @property
    def lattice(self) -> str:
        """The lattice's name."""
        return self.nats.lattice

    @property
    def host_id(self) -> str:
        """The host this connection belongs to."""
        return self.nats.host_id

    async def connect(self) -> None:
        """Connect if not yet connected; idempotent."""
        await self.nats.connect()

    def broker(
        self,
        *,
        accept_callback: Callable[[Envelope], bool] | None = None,
        ack_timeout: float = 5.0,
        locate_timeout: float = 2.0,
    ) -> NatsBroker:
        """The broker over this connection (made by the first call; open it before use)."""
        if self._broker is None:
            self._broker = NatsBroker(
                self.nats,
                accept_callback=accept_callback,
                ack_timeout=ack_timeout,
                locate_timeout=locate_timeout,
            )
        return self._broker

    async def storage(
        self, *, replicas: int = 1, timeout: float = 15.0, stale_after: float = 10.0
    ) -> NatsKvStorage:
        """The KV storage over this connection, its bucket made sure of (first call only)."""
        if self._storage is None:
            await self.connect()
            self._storage = await asyncio.to_thread(
                NatsKvStorage,
                self.nats,
                replicas=replicas,
                timeout=timeout,
                stale_after=stale_after,
            )
        return self._storage

    def registry(
        self,
        describe: Callable[[], dict[str, Any]],
        *,
        interval: float = 1.0,
        replicas: int = 1,
        on_view: Callable[[dict[str, tuple[str, ...]], float], None] | None = None,
    ) -> LatticeRegistry:
        """The lattice registry over this connection (made by the first call; open it before
        use). Without ``on_view``, its views go to the broker's ``lattice_view``."""
        if self._registry is None:
            if on_view is None and self._broker is not None:
                on_view = self._broker.lattice_view
            self._registry = LatticeRegistry(
                self.nats, describe, interval=interval, replicas=replicas, on_view=on_view
            )
        return self._registry

    async def close(self) -> None:
        """Close the registry (this host leaves the view), the broker, the storage, and then the
        connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._registry is not None:
            await self._registry.close()
        if self._broker is not None:
            await self._broker.close()
        if self._storage is not None:
            await asyncio.to_thread(self._storage.close)
        await self.nats.close()
