"""The lattice registry: which host runs what, kept alive by heartbeats in JetStream KV.

Every host of a lattice puts ``hosts.<host-id>`` in the bucket ``wactor-<lattice>-registry``
every ``interval`` seconds: its pid, its components and its supervision snapshot. The bucket's
TTL is a few intervals, so a host that dies (SIGKILL, lost machine) disappears from the view on
its own once its last heartbeat expires; a host that stops cleanly deletes its entry at once.
Any process with the lattice's NATS URL can read the view (``wactor ps`` does). The registry
uses the host's NATS connection (shared with its broker and storage); whoever opened the
connection closes it.

Each heartbeat also reads the whole view and hands it to ``on_view`` (the host's broker uses it
to fail the requests in flight to a host that left). A host SIGKILLed right after its heartbeat
leaves the view ``ttl`` seconds later (4 intervals, at least 3 s) and the other hosts see it gone
at their next heartbeat: within ``ttl + interval`` (5 s with the default 1 s interval) plus the
time the server takes to expire the entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError

from wactor._ids import ComponentId
from wactor._nats_client import NatsConnection
from wactor._nats_names import registry_bucket

__all__ = ["HostEntry", "LatticeRegistry", "read_lattice"]

_log = logging.getLogger("wactor.lattice")


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One host as its last heartbeat described it."""

    host_id: str
    pid: int
    time: float
    components: tuple[str, ...]
    snapshot: dict[str, Any]


def _decode(key: str, raw: bytes | None) -> HostEntry | None:
    try:
        data = json.loads(raw or b"")
        return HostEntry(
            key.removeprefix("hosts."),
            int(data["pid"]),
            float(data["time"]),
            tuple(str(c) for c in data["components"]),
            dict(data.get("snapshot") or {}),
        )
    except (ValueError, KeyError, TypeError, RecursionError):  # a peer's entry: anything goes
        return None


async def _entries(kv: Any) -> list[HostEntry]:
    try:
        keys = await kv.keys()
    except Exception:  # noqa: BLE001 - nats raises NoKeysError (and others) for an empty bucket
        return []
    out = []
    for key in keys:
        with contextlib.suppress(KeyNotFoundError):
            entry = await kv.get(key)
            decoded = _decode(key, entry.value)
            if decoded is not None:
                out.append(decoded)
    return sorted(out, key=lambda e: e.host_id)


class LatticeRegistry:
    """Announces this host and keeps a fresh view of the whole lattice.

    ``connection`` is the host's connection (its lattice and host id are the registry's);
    ``describe`` says what the heartbeat announces (pid, components, snapshot), every
    ``interval`` seconds; ``on_view`` gets each fresh view (host id -> its components) and the
    ``time.monotonic()`` at which it was read.
    """

    owns_connection = False
    """Whether :meth:`close` closes the connection too."""

    def __init__(
        self,
        connection: NatsConnection,
        describe: Callable[[], dict[str, Any]],
        *,
        interval: float = 1.0,
        replicas: int = 1,
        on_view: Callable[[dict[str, tuple[str, ...]], float], None] | None = None,
    ) -> None:
        self._conn = connection
        self._lattice = connection.lattice
        self.host_id = connection.host_id
        self._describe = describe
        self._interval = interval
        self._replicas = replicas
        self._on_view = on_view
        self._kv: Any = None
        self._task: asyncio.Task[None] | None = None
        self.view: list[HostEntry] = []

    async def open(self) -> None:
        """Connect if not yet connected, make sure the bucket exists, announce this host, start
        heartbeating."""
        await self._conn.connect()
        js = self._conn.jetstream()
        config = KeyValueConfig(
            bucket=registry_bucket(self._lattice),
            history=1,
            ttl=self.ttl,
            replicas=self._replicas,
        )
        try:
            self._kv = await js.key_value(config.bucket)
        except BucketNotFoundError:
            self._kv = await js.create_key_value(config)
        await self.beat()
        self._task = asyncio.create_task(self._run(), name="wactor-lattice-heartbeat")

    @property
    def ttl(self) -> float:
        """Seconds a host stays in the view after its last heartbeat."""
        return max(3.0, self._interval * 4)

    async def beat(self) -> None:
        """Publish this host's heartbeat now and refresh the lattice view."""
        desc = self._describe()
        body = json.dumps(
            {
                "pid": desc.get("pid"),
                "time": time.time(),
                "components": desc.get("components", []),
                "snapshot": desc.get("snapshot", {}),
            }
        ).encode()
        await self._kv.put(f"hosts.{self.host_id}", body)
        read_at = time.monotonic()
        self.view = await _entries(self._kv)
        hosts = {entry.host_id: entry.components for entry in self.view}
        # A read that misses this host's own fresh entry is not a view to act on.
        if self._on_view is not None and self.host_id in hosts:
            self._on_view(hosts, read_at)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.beat()
            except Exception as exc:  # noqa: BLE001 - NATS down: keep trying, say it once per miss
                _log.warning("lattice heartbeat failed: %s", exc)

    def components(self) -> list[ComponentId]:
        """Every component of the lattice (from the last view), each once."""
        seen: dict[str, None] = {}
        for entry in self.view:
            for cid in entry.components:
                seen.setdefault(cid, None)
        out = []
        for text in seen:
            with contextlib.suppress(ValueError):
                out.append(ComponentId.parse(text))
        return out

    async def close(self) -> None:
        """Stop heartbeating and remove this host from the view; idempotent."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._kv is not None:
            with contextlib.suppress(Exception):
                await self._kv.delete(f"hosts.{self.host_id}")
            self._kv = None
        if self.owns_connection:
            await self._conn.close()


async def read_lattice(url: str, lattice: str, timeout: float = 5.0) -> list[HostEntry]:
    """Read the lattice view from outside any host (for ``wactor ps``).

    ``ValueError`` for a bad URL or lattice name, ``DeliveryFailedError`` when no server answers.
    """
    conn = NatsConnection(url, lattice, host_id="reader", connect_timeout=timeout, reconnect=False)
    await conn.connect()
    try:
        try:
            kv = await conn.jetstream().key_value(registry_bucket(lattice))
        except BucketNotFoundError:
            return []
        return await _entries(kv)
    finally:
        await conn.close()
