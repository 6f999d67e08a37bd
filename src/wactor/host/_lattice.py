"""The lattice registry under its former name, over a NATS connection of its own.

The registry lives in :mod:`wactor.lattice`; a host that opens one
:class:`~wactor.lattice.LatticeConnection` gets it from there, sharing the connection with its
broker and storage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wactor._nats_client import NatsConnection
from wactor.lattice._registry import HostEntry, read_lattice
from wactor.lattice._registry import LatticeRegistry as _SharedRegistry

__all__ = ["HostEntry", "LatticeRegistry", "read_lattice"]


class LatticeRegistry(_SharedRegistry):
    """A lattice registry that opens (and closes) a NATS connection of its own at ``url``."""

    owns_connection = True

    def __init__(
        self,
        url: str,
        lattice: str,
        host_id: str,
        describe: Callable[[], dict[str, Any]],
        *,
        interval: float = 1.0,
        replicas: int = 1,
        on_view: Callable[[dict[str, tuple[str, ...]], float], None] | None = None,
    ) -> None:
        connection = NatsConnection(url, lattice, host_id=host_id, reconnect_wait=0.25)
        super().__init__(
            connection, describe, interval=interval, replicas=replicas, on_view=on_view
        )
