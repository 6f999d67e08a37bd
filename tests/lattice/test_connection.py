"""One NATS connection per host: its broker, storage and lattice registry all use it."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.test_call import wactor
from wactor._ids import ComponentId
from wactor.errors import DeliveryFailedError, StorageIOError
from wactor.lattice import LatticeConnection
from wactor.messaging import Envelope
from wactor.testing import NatsServer
from waiting import wait_until

CART = ComponentId.parse("shop/cart/0")
CALLER = ComponentId.parse("shop/caller/0")


@pytest.fixture(scope="module")
def server() -> Iterator[NatsServer]:
    with NatsServer() as srv:
        yield srv


class Echo:
    """A broker endpoint answering every request with its payload."""

    async def deliver(self, env: Envelope) -> None:
        pass

    async def submit(self, env: Envelope) -> asyncio.Future[bytes | None]:
        fut: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        fut.set_result(b"echo:" + env.payload)
        return fut


def describe(*components: ComponentId) -> Any:
    return lambda: {"pid": os.getpid(), "components": [str(c) for c in components]}


def connections_of(server: NatsServer, lattice: str) -> dict[str, list[str]]:
    """Each connection of ``lattice`` on the server: its name -> its subscriptions."""
    return {
        c["name"]: list(c.get("subscriptions_list") or [])
        for c in server.connections()
        if c.get("name", "").startswith(f"wactor {lattice} ")
    }


async def test_broker_storage_and_registry_of_a_host_share_one_connection(
    server: NatsServer,
) -> None:
    lattice = f"t{uuid.uuid4().hex[:10]}"
    a = await LatticeConnection.open(server.url, lattice, host_id="a")
    b = await LatticeConnection.open(server.url, lattice, host_id="b")
    try:
        a_broker, b_broker = a.broker(), b.broker()
        await a_broker.open()
        await b_broker.open()
        await a_broker.register(CART, Echo())
        a_storage = await a.storage()
        b_storage = await b.storage()
        await a.registry(describe(CART)).open()
        b_registry = b.registry(describe())
        await b_registry.open()

        # Each view works: a request crosses hosts, a write is read by the other host, and the
        # registry of ``b`` sees ``a`` with its component.
        env = Envelope(CALLER, CART, b"hi", kind="request", correlation_id="c1")
        assert await b_broker.request(env, 5.0) == b"echo:hi"
        await asyncio.to_thread(a_storage.set, str(CART), "k", b"v", quota=1 << 20)
        assert await asyncio.to_thread(b_storage.get, str(CART), "k") == b"v"
        assert a_storage.bucket == b_storage.bucket == f"wactor-{lattice}-kv"
        await b_registry.beat()
        assert [(e.host_id, e.components) for e in b_registry.view] == [
            ("a", (str(CART),)),
            ("b", ()),
        ]

        # ... and all of it went through one connection per host.
        seen = connections_of(server, lattice)
        assert sorted(seen) == [f"wactor {lattice} a", f"wactor {lattice} b"]
        assert f"wactor.{lattice}.shop.cart.0" in seen[f"wactor {lattice} a"]
        assert a_broker.connection is a.nats
        assert a.nats.client is not None
        assert a_broker._nc is a.nats.client
    finally:
        await a.close()
        await b.close()
    await wait_until(lambda: not connections_of(server, lattice), "both connections to close")


async def test_closing_the_connection_closes_its_views(server: NatsServer) -> None:
    conn = await LatticeConnection.open(server.url, f"t{uuid.uuid4().hex[:10]}", host_id="h")
    broker = conn.broker()
    await broker.open()
    storage = await conn.storage()
    await conn.close()
    with pytest.raises(DeliveryFailedError, match="closed"):
        await broker.register(CART, Echo())
    with pytest.raises(StorageIOError, match="closed"):
        await asyncio.to_thread(storage.get, str(CART), "k")
    await conn.close()  # idempotent


async def test_storage_refuses_a_call_from_the_connections_own_loop(server: NatsServer) -> None:
    conn = await LatticeConnection.open(server.url, f"t{uuid.uuid4().hex[:10]}", host_id="h")
    try:
        storage = await conn.storage()
        with pytest.raises(StorageIOError, match="its own event loop thread"):
            storage.get(str(CART), "k")  # it would wait for the loop it blocks
    finally:
        await conn.close()


def test_one_rule_for_lattice_names_and_urls() -> None:
    for bad in ("", "a.b", "a b", "*", ">", "x" * 64):
        with pytest.raises(ValueError, match="lattice"):
            LatticeConnection("nats://127.0.0.1:4222", bad, host_id="h")
    for url in ("", "127.0.0.1:4222", "http://127.0.0.1:4222", "nats://h:0", "nats://,"):
        with pytest.raises(ValueError, match=r"URL|url|port"):
            LatticeConnection(url, host_id="h")
    ok = LatticeConnection(" nats://a:4222 , tls://b", "x" * 63, host_id="h")
    assert ok.nats.servers == ("nats://a:4222", "tls://b")


def test_a_bad_nats_url_on_the_command_line_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "wactor.toml"
    config.write_text(f'state-dir = "{tmp_path / "state"}"\n')
    shown = wactor("ps", "--config", str(config), "--nats", "127.0.0.1:4222")
    assert shown.returncode == 2, shown.stderr
    assert shown.stderr.splitlines() == [
        "error: --nats: bad URL '127.0.0.1:4222' "
        "(expected nats://host:port (or tls://, ws://, wss://), several separated by ',')"
    ]


async def test_closing_the_broker_leaves_the_shared_connection_to_the_others(
    server: NatsServer,
) -> None:
    lattice = f"t{uuid.uuid4().hex[:10]}"
    conn = await LatticeConnection.open(server.url, lattice, host_id="h")
    try:
        broker = conn.broker()
        await broker.open()
        await broker.register(CART, Echo())
        await broker.subscribe("news.*", lambda subject, env: None)
        storage = await conn.storage()
        before = connections_of(server, lattice)[f"wactor {lattice} h"]
        assert f"wactor.{lattice}.shop.cart.0" in before
        assert f"wactor.{lattice}._topic.news.*" in before
        await broker.close()
        await conn.nats.settle(5)
        after = connections_of(server, lattice)[f"wactor {lattice} h"]
        assert not [s for s in after if s.startswith(f"wactor.{lattice}.")]
        assert broker._inbox.prefix + "*" in before
        assert broker._inbox.prefix + "*" not in after  # its replies inbox is gone too
        await asyncio.to_thread(storage.set, str(CART), "k", b"v", quota=1 << 20)
        assert await asyncio.to_thread(storage.get, str(CART), "k") == b"v"
        assert conn.nats.connected
    finally:
        await conn.close()


def test_ps_of_a_lattice_without_a_server_says_so_in_one_line(tmp_path: Path) -> None:
    with NatsServer() as gone:
        url = gone.url
    config = tmp_path / "wactor.toml"
    config.write_text(f'state-dir = "{tmp_path / "state"}"\n')
    shown = wactor("ps", "--config", str(config), "--nats", url)
    assert shown.returncode == 4, shown.stderr
    (line,) = shown.stderr.splitlines()
    assert line.startswith(f"error: cannot connect to NATS at {url}: ")
