"""A host on a lattice opens one NATS connection, shared by its broker, storage and registry."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from conftest import TRUSTED, wat_binary, write_manifest
from wactor.host import BrokerConfig, Host, HostConfig
from wactor.testing import NatsServer


async def test_a_host_uses_one_nats_connection_for_broker_storage_and_registry(
    tmp_path: Path,
) -> None:
    lattice = f"h{uuid.uuid4().hex[:10]}"
    with NatsServer() as server:
        base = HostConfig.default(tmp_path / "state", trusted_paths=(tmp_path, *TRUSTED))
        config = dataclasses.replace(
            base, broker=BrokerConfig("nats", server.url, lattice), storage="nats"
        )
        async with Host.open(config) as host:
            await host.start(write_manifest(tmp_path / "c", "t/echo/0", wat_binary("echo")))
            assert await host.request("t/echo/0", b"hi") == b"hi"
            names = [c.get("name", "") for c in server.connections()]
            assert names == [f"wactor {lattice} {host.host_id}"]
