"""On a lattice, a component whose host functions would wait for NATS never runs on the loop."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from conftest import TRUSTED, wat_binary, write_manifest
from wactor.host import BrokerConfig, Host, HostConfig
from wactor.host._placement import PlacementStats
from wactor.testing import NatsServer


def _placement(host: Host, cid: str) -> PlacementStats:
    (status,) = [s for s in host.components() if str(s.id) == cid]
    return status.placement


async def test_messaging_and_storage_over_nats_keep_calls_on_workers(tmp_path: Path) -> None:
    lattice = f"p{uuid.uuid4().hex[:10]}"
    with NatsServer() as server:
        base = HostConfig.default(tmp_path / "state", trusted_paths=(tmp_path, *TRUSTED))
        config = dataclasses.replace(
            base, broker=BrokerConfig("nats", server.url, lattice), storage="nats"
        )
        async with Host.open(config) as host:
            made = tmp_path / "c"
            await host.start(write_manifest(made, "test/echo/0", wat_binary("echo")))
            grant = '[capabilities.messaging]\nsend = ["test/echo/0"]'
            await host.start(write_manifest(made, "t/sender/0", wat_binary("sender"), extra=grant))
            quota = '[capabilities.storage]\nquota = "1MiB"'
            await host.start(write_manifest(made, "t/kv/0", wat_binary("kv"), extra=quota))
            for i in range(30):
                assert await host.request("t/sender/0", b"m%d" % i) is None
                assert await host.request("t/kv/0", b"k%d" % i) == b"k%d" % i
            for cid in ("t/sender/0", "t/kv/0"):
                placed = _placement(host, cid)
                assert not placed.allowed, cid
                assert placed.inline_calls == 0, cid
                assert placed.worker_calls >= 30, cid
            # an echo imports nothing that waits: it may run inline on a lattice too
            assert _placement(host, "test/echo/0").allowed
