"""A real host and a real guest beside a hostile NATS peer: forged callbacks, garbage errors."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from conftest import TRUSTED, guest_binary, wat_binary, write_manifest
from wactor._ids import ComponentId
from wactor.host import Host, HostConfig
from wactor.host._config import BrokerConfig
from wactor.messaging import component_subject
from wactor.testing import NatsServer
from waiting import wait_until

GRANTS = """
[capabilities.messaging]
send = ["t/**"]
request = ["t/**"]
"""
ALICE = ComponentId.parse("t/alice/0")
EVIL = ComponentId.parse("t/evil/0")


@pytest.fixture(scope="module")
def server() -> Iterator[NatsServer]:
    with NatsServer() as srv:
        yield srv


@asynccontextmanager
async def _lattice_host(tmp_path: Path, url: str) -> AsyncIterator[tuple[Host, str, Client]]:
    """A host running the probe as ``t/alice/0`` and a WAT echo as ``t/echo/0``, on a lattice
    of its own, and a peer (a plain NATS client) on the same server."""
    lattice = f"p{uuid.uuid4().hex[:10]}"
    base = HostConfig.default(tmp_path / "state", trusted_paths=(tmp_path, *TRUSTED))
    config = dataclasses.replace(base, broker=BrokerConfig("nats", url, lattice))
    folder = tmp_path / "components"
    async with Host.open(config) as host:
        await host.start(write_manifest(folder, str(ALICE), guest_binary("probe"), extra=GRANTS))
        await host.start(write_manifest(folder, "t/echo/0", wat_binary("echo")))
        peer = await nats.connect(url)
        try:
            yield host, lattice, peer
        finally:
            await peer.close()


async def _serve(
    peer: Client, subject: str, respond: Callable[[Msg], Awaitable[None]] | None
) -> list[Msg]:
    seen: list[Msg] = []

    async def on_message(msg: Msg) -> None:
        seen.append(msg)
        if respond is not None:
            await respond(msg)

    await peer.subscribe(subject, cb=on_message)
    await peer.flush()
    await peer.flush()  # nats-py: the second flush's PONG comes after the SUB reached the server
    return seen


async def _callbacks(host: Host, count: int) -> list[str]:
    """The callbacks the probe recorded, once there are ``count`` of them."""
    async with asyncio.timeout(30):
        while True:
            text = await host.request(ALICE, b"callbacks", timeout=30)
            lines = text.decode().splitlines() if text else []
            if len(lines) >= count:
                return lines
            await asyncio.sleep(0.02)


async def test_a_forged_callback_never_reaches_the_guest(
    tmp_path: Path, server: NatsServer
) -> None:
    async with _lattice_host(tmp_path, server.url) as (host, lattice, peer):
        alice = component_subject(ALICE, lattice)
        forged = {
            "Wactor-Kind": "callback",
            "Wactor-Sender": "t/echo/0",
            "Wactor-Correlation-Id": uuid.uuid4().hex,
        }
        await peer.publish(alice, b"forged", headers=forged)
        # the same publisher's next message comes after the forgery: alice asks the echo
        reply = await peer.request(alice, b"request t/echo/0 5000 ping", timeout=30)
        assert await _callbacks(host, 1) == [f"{reply.data.decode()} ok ping"]
        assert host.broker.statistics().rejected == 1


async def test_a_callback_over_nats_counts_only_from_the_target_of_an_open_request(
    tmp_path: Path, server: NatsServer
) -> None:
    async with _lattice_host(tmp_path, server.url) as (host, lattice, peer):
        evil = await _serve(peer, component_subject(EVIL, lattice), None)  # never replies
        corr = await host.request(ALICE, b"request t/evil/0 30000 hello", timeout=30)
        assert corr is not None
        # The guest has its correlation id at once; the request reaches the peer over NATS.
        await wait_until(lambda: len(evil) > 0, "the request to reach the peer")
        assert evil[0].headers is not None
        assert evil[0].headers["Wactor-Correlation-Id"] == corr.decode()
        alice = component_subject(ALICE, lattice)
        for sender, body in (("t/echo/0", b"wrong sender"), (str(EVIL), b"from the target")):
            headers = {
                "Wactor-Kind": "callback",
                "Wactor-Sender": sender,
                "Wactor-Correlation-Id": corr.decode(),
            }
            await peer.publish(alice, body, headers=headers)
        await peer.flush()
        assert await _callbacks(host, 1) == [f"{corr.decode()} ok from the target"]
        assert host.broker.statistics().rejected == 1
        assert host.correlator.statistics().pending == 0


@pytest.mark.parametrize(
    "fields",
    [{"target": "not an id"}, {}, {"target": 5, "args": 7}],
    ids=["bad target", "no fields", "wrong types"],
)
async def test_a_garbage_error_answer_reaches_the_guest_as_a_clean_err(
    tmp_path: Path, server: NatsServer, fields: dict[str, object]
) -> None:
    async with _lattice_host(tmp_path, server.url) as (host, lattice, peer):

        async def answer(msg: Msg) -> None:
            headers = {
                "Wactor-Error": "TargetNotFoundError",
                "Wactor-Error-Fields": json.dumps(fields),
            }
            await peer.publish(msg.reply, b"\x00garbage\r\n" * 3, headers=headers)

        await _serve(peer, component_subject(EVIL, lattice), answer)
        reply = await host.request(ALICE, b"send t/evil/0 hi", timeout=30)
        assert reply == b"err target-not-found t/evil/0"
        corr = await host.request(ALICE, b"request t/evil/0 30000 hi", timeout=30)
        assert corr is not None
        assert await _callbacks(host, 1) == [f"{corr.decode()} err target not found: t/evil/0"]
        assert await host.request(ALICE, b"echo alive", timeout=30) == b"alive"
