"""Hostile NATS peers: forged replies and callbacks, malformed error replies, garbage headers.

A peer here is a plain nats-py client (or a raw socket speaking the NATS protocol) on the same
server as two ``NatsBroker`` hosts. It may publish anything to any subject it can name.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from test_broker_conformance import (
    CALLER,
    TARGET,
    FakeComponent,
    new_lattice,
    request_env,
    send_env,
)

from wactor._ids import ComponentId
from wactor.errors import (
    DeliveryFailedError,
    QueueFullError,
    TargetNotFoundError,
)
from wactor.messaging._nats import NatsBroker, _settle, component_subject
from wactor.testing import NatsServer

EVIL = ComponentId.parse("test/evil/0")


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


@pytest.fixture
async def peer(server: NatsServer) -> AsyncIterator[Client]:
    nc = await nats.connect(server.url)
    try:
        yield nc
    finally:
        await nc.close()


async def _serve(
    peer: Client, subject: str, respond: Callable[[Msg], Awaitable[None]]
) -> list[Msg]:
    """Subscribe ``peer`` to ``subject``; answer every message with ``respond(msg)``."""
    seen: list[Msg] = []

    async def on_message(msg: Msg) -> None:
        seen.append(msg)
        await respond(msg)

    await peer.subscribe(subject, cb=on_message)
    await _settle(peer, 10)  # the server has the subscription (one flush is not enough)
    return seen


async def test_a_peer_that_saw_a_reply_subject_cannot_forge_the_next_reply(
    hosts: tuple[NatsBroker, NatsBroker], peer: Client
) -> None:
    a, b = hosts

    async def answer(msg: Msg) -> None:
        await peer.publish(msg.reply, b"evil's own reply")

    seen = await _serve(peer, component_subject(EVIL, a.lattice), answer)
    assert await a.request(request_env(target=EVIL), timeout=10) == b"evil's own reply"
    observed = seen[0].reply  # the peer now knows one reply subject of host a
    inbox, _, token = observed.rpartition(".")

    component = FakeComponent(hold=True)
    await b.register(TARGET, component)
    pending = asyncio.ensure_future(a.request(request_env(b"real"), timeout=30))
    await component.wait_received(1)
    guesses = [observed] + [f"{inbox}.{n}" for n in range(1, 200)]
    if token.isdigit():
        guesses += [f"{inbox}.{int(token) + n}" for n in range(1, 200)]
    for subject in guesses:
        await peer.publish(subject, b"forged")
    await _settle(peer, 10)  # the server routed every forgery to host a before the real reply
    component.held[0].set_result(b"real reply")
    assert await pending == b"real reply"
    assert a.statistics().rejected >= 1


async def test_a_callback_from_nats_that_answers_no_request_is_dropped_and_counted(
    hosts: tuple[NatsBroker, NatsBroker], peer: Client
) -> None:
    _, b = hosts
    component = FakeComponent()
    await b.register(TARGET, component)
    subject = component_subject(TARGET, b.lattice)
    forged = {
        "Wactor-Kind": "callback",
        "Wactor-Sender": str(CALLER),
        "Wactor-Correlation-Id": "0123456789abcdef",
    }
    await peer.publish(subject, b"forged answer", headers=forged)
    await peer.publish(subject, b"after")  # same publisher: arrives after the forgery
    await component.wait_received(1)
    assert [(e.kind, e.payload) for e in component.received] == [("send", b"after")]
    assert b.statistics().rejected == 1


async def test_a_host_decides_which_callbacks_from_nats_answer_its_requests(
    server: NatsServer, peer: Client
) -> None:
    name = new_lattice()
    b = NatsBroker(
        server.url,
        name,
        host_id="b",
        accept_callback=lambda env: env.correlation_id == "opened-here",
    )
    await b.open()
    try:
        component = FakeComponent()
        await b.register(TARGET, component)
        subject = component_subject(TARGET, name)
        for corr in ("made-up", "opened-here"):
            headers = {
                "Wactor-Kind": "callback",
                "Wactor-Sender": str(EVIL),
                "Wactor-Correlation-Id": corr,
            }
            await peer.publish(subject, corr.encode(), headers=headers)
        await peer.publish(subject, b"after")
        await component.wait_received(2)
        got = [(e.kind, e.correlation_id) for e in component.received]
        assert got == [("callback", "opened-here"), ("send", None)]
        assert b.statistics().rejected == 1
    finally:
        await b.close()


_GARBAGE = {
    "class outside the message families": ({"Wactor-Error": "ManifestError"}, b"x"),
    "fields not json": ({"Wactor-Error": "QueueFullError", "Wactor-Error-Fields": "{"}, b"x"),
    "fields of the wrong type": (
        {"Wactor-Error": "QueueFullError", "Wactor-Error-Fields": '{"capacity":"lots"}'},
        b"x",
    ),
    "fields overwriting internals": (
        {
            "Wactor-Error": "DeliveryFailedError",
            "Wactor-Error-Fields": '{"args":5,"message":7,"with_traceback":1}',
        },
        b"x",
    ),
    "deeply nested fields": (
        {"Wactor-Error": "DeliveryFailedError", "Wactor-Error-Fields": "[" * 15000},
        b"x",
    ),
    "huge message": ({"Wactor-Error": "DeliveryFailedError"}, b"A\n" * 200_000),
    "numbers past any float": (
        {
            "Wactor-Error": "RequestTimeoutError",
            "Wactor-Error-Fields": '{"timeout":1%s}' % ("0" * 400),
        },
        b"x",
    ),
    "terminal escapes": (
        {
            "Wactor-Error": "DeliveryFailedError",
            "Wactor-Error-Fields": json.dumps({"message": "\x1b[2J\x1b]0;owned\x07boom"}),
        },
        b"x",
    ),
    "infinite number": (
        {"Wactor-Error": "RequestTimeoutError", "Wactor-Error-Fields": '{"timeout":Infinity}'},
        b"x",
    ),
}


@pytest.mark.parametrize("case", list(_GARBAGE), ids=list(_GARBAGE))
async def test_a_malformed_error_reply_gives_the_requester_a_clean_error(
    hosts: tuple[NatsBroker, NatsBroker], peer: Client, case: str
) -> None:
    a, _ = hosts
    headers, body = _GARBAGE[case]

    async def answer(msg: Msg) -> None:
        await peer.publish(msg.reply, body, headers=headers)

    await _serve(peer, component_subject(EVIL, a.lattice), answer)
    with pytest.raises(DeliveryFailedError) as info:
        await a.request(request_env(target=EVIL), timeout=30)
    error = info.value
    assert type(error) is DeliveryFailedError
    assert error.component == str(EVIL)
    assert str(error).isprintable()  # no line breaks, no terminal escapes
    assert len(str(error)) < 5000


async def test_a_remote_error_names_the_target_asked_whatever_the_peer_says(
    hosts: tuple[NatsBroker, NatsBroker], peer: Client
) -> None:
    a, _ = hosts
    replies = [
        ("TargetNotFoundError", {"target": "not an id at all", "component": 5}),
        ("QueueFullError", {"target": "shop/other/0", "capacity": 3}),
    ]

    async def answer(msg: Msg) -> None:
        name, fields = replies.pop(0)
        headers = {"Wactor-Error": name, "Wactor-Error-Fields": json.dumps(fields)}
        await peer.publish(msg.reply, b"whatever", headers=headers)

    await _serve(peer, component_subject(EVIL, a.lattice), answer)
    with pytest.raises(TargetNotFoundError) as missing:
        await a.request(request_env(target=EVIL), timeout=30)
    assert (missing.value.target, missing.value.component) == (str(EVIL), str(EVIL))
    with pytest.raises(QueueFullError) as full:
        await a.send(send_env(target=EVIL))
    assert (full.value.target, full.value.capacity) == (str(EVIL), 3)
    assert str(full.value) == f"{EVIL}: mailbox full (3 messages)"


async def _raw_publish(server: NatsServer, subject: str, header_block: bytes, body: bytes) -> None:
    """Publish with a header block nats-py would never write (the NATS protocol, by hand)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        await reader.readline()  # INFO
        writer.write(b'CONNECT {"verbose":false,"headers":true}\r\n')
        size = len(header_block)
        writer.write(
            b"HPUB %s %d %d\r\n%s%s\r\nPING\r\n"
            % (subject.encode(), size, size + len(body), header_block, body)
        )
        await writer.drain()
        assert (await reader.readline()).startswith(b"PONG")
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_header_block_that_is_not_utf8_neither_stalls_nor_fools_a_host(
    server: NatsServer, hosts: tuple[NatsBroker, NatsBroker], peer: Client
) -> None:
    a, b = hosts
    component = FakeComponent()
    await b.register(TARGET, component)
    garbage = b"NATS/1.0 503 \xff\xfe\r\n\r\n"
    await _raw_publish(server, component_subject(TARGET, b.lattice), garbage, b"junk")

    async def answer(msg: Msg) -> None:
        await _raw_publish(server, msg.reply, garbage, b"junk")

    await _serve(peer, component_subject(EVIL, a.lattice), answer)
    with pytest.raises(DeliveryFailedError, match="malformed reply"):
        await a.request(request_env(target=EVIL), timeout=30)
    # both hosts still read their connections: the garbage stopped neither read loop
    assert await a.request(request_env(b"still"), timeout=30) == b"echo:still"
    assert [e.payload for e in component.received] == [b"still"]
    assert b.statistics().undeliverable == 1  # the garbage, refused (no reply subject to tell)


@pytest.mark.parametrize(
    "headers",
    [
        {"Wactor-Timestamp": "-1"},
        {"Wactor-Timestamp": str(2**64)},
        {"Wactor-Correlation-Id": "c" * 5000},
        {"Wactor-Content-Type": "t" * 5000},
        {"Wactor-Kind": "reply"},  # replies travel as NATS replies, never as a kind
    ],
    ids=[
        "negative time",
        "time past u64",
        "huge correlation id",
        "huge content type",
        "no such kind",
    ],
)
async def test_a_message_with_garbage_headers_is_refused_before_the_component(
    hosts: tuple[NatsBroker, NatsBroker], peer: Client, headers: dict[str, str]
) -> None:
    _, b = hosts
    component = FakeComponent()
    await b.register(TARGET, component)
    sent = {"Wactor-Kind": "send", "Wactor-Sender": str(CALLER), **headers}
    reply = await peer.request(component_subject(TARGET, b.lattice), b"x", headers=sent, timeout=10)
    assert reply.headers is not None
    assert reply.headers["Wactor-Error"] == "InvalidMessageError"
    assert "\n" not in reply.data.decode()
    assert len(reply.data) < 300
    assert component.received == []
