"""Requests in flight to a host that left the lattice end at once, not at their timeout.

The lattice registry (JetStream KV heartbeats) hands each host's broker the live hosts and their
components; here the tests hand ``lattice_view`` those views themselves, so that what ends a
request, and what does not, is checked apart from heartbeat timing (tests/lattice kills real
host processes for the whole path).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from test_broker_conformance import TARGET, FakeComponent, eventually, new_lattice, request_env

from wactor._ids import ComponentId
from wactor.errors import DeliveryFailedError
from wactor.messaging._nats import NatsBroker, _settle, component_subject
from wactor.testing import NatsServer

SILENT = ComponentId.parse("test/silent/0")


@pytest.fixture(scope="module")
def server() -> Iterator[NatsServer]:
    with NatsServer() as srv:
        yield srv


@pytest.fixture
async def hosts(server: NatsServer) -> AsyncIterator[tuple[NatsBroker, NatsBroker]]:
    name = new_lattice()
    a = NatsBroker(server.url, name, host_id="a")
    b = NatsBroker(server.url, name, host_id="b")
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


def _taken_by(broker: NatsBroker) -> list[str | None]:
    """The host that acknowledged each request ``broker`` has in flight (None: not yet)."""
    return [entry.host for entry in broker._inbox._pending.values()]


def _in_flight(broker: NatsBroker) -> int:
    """How many of ``broker``'s requests still wait for their reply."""
    return sum(not entry.fut.done() for entry in broker._inbox._pending.values())


async def _wait_taken(broker: NatsBroker, host: str) -> None:
    await eventually(lambda: host in _taken_by(broker))


async def test_a_request_taken_by_a_host_that_left_the_view_fails_at_once(
    hosts: tuple[NatsBroker, NatsBroker],
) -> None:
    a, b = hosts
    component = FakeComponent(hold=True)
    await b.register(TARGET, component)
    pending = asyncio.ensure_future(a.request(request_env(), timeout=60))
    await component.wait_received(1)
    await _wait_taken(a, "b")  # b said it took the request (it could not answer at once)

    a.lattice_view({"a": (), "b": (str(TARGET),)}, time.monotonic())
    assert _in_flight(a) == 1  # b is alive: the request waits for its reply

    a.lattice_view({"a": ()}, time.monotonic())  # b's heartbeat expired
    with pytest.raises(DeliveryFailedError) as info:
        await pending
    assert str(info.value) == (
        "test/target/0: its host b stopped answering before the reply (lattice heartbeat "
        "expired); the request may have been handled"
    )
    assert info.value.component == str(TARGET)


async def test_a_view_read_before_the_host_took_the_request_does_not_end_it(
    hosts: tuple[NatsBroker, NatsBroker],
) -> None:
    a, b = hosts
    component = FakeComponent(hold=True)
    await b.register(TARGET, component)
    read_before = time.monotonic()  # a view read now cannot know of host b yet
    pending = asyncio.ensure_future(a.request(request_env(), timeout=60))
    await _wait_taken(a, "b")
    a.lattice_view({"a": ()}, read_before)
    assert _in_flight(a) == 1
    component.held[0].set_result(b"answered")
    assert await pending == b"answered"


@pytest.fixture
async def silent_peer(server: NatsServer) -> AsyncIterator[Client]:
    """A subscriber that takes requests and neither acknowledges nor answers them."""
    nc = await nats.connect(server.url)
    try:
        yield nc
    finally:
        await nc.close()


async def _serve_silently(peer: Client, broker: NatsBroker) -> list[Msg]:
    taken: list[Msg] = []

    async def swallow(msg: Msg) -> None:
        taken.append(msg)

    await peer.subscribe(component_subject(SILENT, broker.lattice), cb=swallow)
    await _settle(peer, 10)
    return taken


async def test_a_request_no_host_took_fails_when_its_only_host_leaves(
    hosts: tuple[NatsBroker, NatsBroker], silent_peer: Client
) -> None:
    a, _ = hosts
    taken = await _serve_silently(silent_peer, a)
    pending = asyncio.ensure_future(a.request(request_env(target=SILENT), timeout=60))
    await eventually(lambda: len(taken) == 1)  # in flight, and nobody said they took it
    a.lattice_view({"a": (), "x": (str(SILENT),)}, time.monotonic())
    # host x leaves; the view is read more than ack_timeout (5 s) after the request went out
    later = time.monotonic() + 6
    a.lattice_view({"a": (), "y": (str(TARGET),)}, later)
    with pytest.raises(DeliveryFailedError) as info:
        await pending
    assert str(info.value) == (
        "test/silent/0: no host took the request and no live host of the lattice runs it any "
        "more (host x left)"
    )


async def test_a_request_no_host_took_waits_while_a_live_host_runs_its_target(
    hosts: tuple[NatsBroker, NatsBroker], silent_peer: Client
) -> None:
    a, _ = hosts
    taken = await _serve_silently(silent_peer, a)
    pending = asyncio.ensure_future(a.request(request_env(target=SILENT), timeout=60))
    await eventually(lambda: len(taken) == 1)  # in flight, and nobody said they took it
    a.lattice_view({"a": (), "x": (str(SILENT),), "y": (str(SILENT),)}, time.monotonic())
    later = time.monotonic() + 6
    a.lattice_view({"a": (), "y": (str(SILENT),)}, later)  # x left, y may still have it
    a.lattice_view({"a": ()}, time.monotonic())  # too soon after the request: not yet
    assert _in_flight(a) == 1
    await a.close()
    with pytest.raises(DeliveryFailedError, match="NATS broker closed before the reply"):
        await pending
