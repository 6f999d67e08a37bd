"""What a host keeps outside its components: the broker, the storage, the lattice registry.

One NATS connection serves all of them that need NATS (broker, KV storage, registry).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wactor._bridge import run_on_thread
from wactor._nats_names import DEFAULT_NATS_URL
from wactor.host._config import HostConfig
from wactor.messaging import Broker, Envelope, MemoryBroker
from wactor.storage import MemoryStorage, SqliteStorage, StorageBackend

if TYPE_CHECKING:  # the lattice loads a NATS client: only a host on a lattice imports it
    from wactor.lattice import LatticeConnection, LatticeRegistry

__all__ = ["Backends"]


class Backends:
    """The broker, the storage and (on a lattice) the registry of one host.

    Made when the host is made, connected by :meth:`open`. NATS KV storage connects when the
    host opens; until then the storage is an empty memory store.
    """

    def __init__(
        self,
        config: HostConfig,
        host_id: str,
        *,
        accept_callback: Callable[[Envelope], Any],
        describe: Callable[[], dict[str, Any]],
    ) -> None:
        self._config = cfg = config
        self.storage: StorageBackend = (
            MemoryStorage()
            if cfg.storage in ("memory", "nats")
            else SqliteStorage(cfg.state_dir / "state.sqlite3")
        )
        self._nats: LatticeConnection | None = None
        self.broker: Broker = MemoryBroker()
        self.lattice: LatticeRegistry | None = None
        if cfg.broker.type == "nats" or cfg.storage == "nats":
            from wactor.lattice import LatticeConnection  # noqa: PLC0415 - NATS loads when used

            self._nats = LatticeConnection(
                cfg.broker.url or DEFAULT_NATS_URL, cfg.broker.lattice, host_id=host_id
            )
        if self._nats is not None and cfg.broker.type == "nats":
            broker = self._nats.broker(accept_callback=accept_callback)
            self.broker = broker
            self.lattice = self._nats.registry(describe, on_view=broker.lattice_view)

    async def open(self) -> None:
        """Connect what lives outside the process: the broker, lattice storage, the registry."""
        await self.broker.open()
        cfg = self._config
        if cfg.storage == "nats" and self._nats is not None:
            memory, self.storage = (
                self.storage,
                await self._nats.storage(replicas=cfg.storage_replicas),
            )
            memory.close()
        if self.lattice is not None:
            await self.lattice.open()

    async def close(self) -> None:
        """Leave the lattice, close the broker and the storage, then the NATS connection."""
        if self.lattice is not None:
            await self.lattice.close()
        await self.broker.close()
        await run_on_thread(None, self.storage.close)
        if self._nats is not None:
            await self._nats.close()
