"""Conformance suite: every broker backend moves envelopes with the same semantics.

Each conformance test runs three times: on the in-process ``MemoryBroker``; on a ``NatsBroker``
with the component registered in the same broker (the direct path); and across two
``NatsBroker`` hosts on one nats-server (the wire path). The components are small Python fakes
of the ``Endpoint`` seam: this suite tests the broker, real components come in the host tests.
The NATS-only tests at the end cover what only a lattice has: plain NATS clients, queue groups,
no responders, reconnection and dying hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import nats
import pytest
from nats.aio.msg import Msg

from wactor._ids import ComponentId
from wactor.errors import (
    ActorStoppedError,
    DeliveryFailedError,
    ExecutionTimeoutError,
    GuestError,
    QueueFullError,
    RequestTimeoutError,
    ResourceLimitError,
    TargetNotFoundError,
    TrapError,
    WactorError,
)
from wactor.messaging import Broker, Envelope, MemoryBroker
from wactor.messaging._nats import NatsBroker, _settle, component_subject
from wactor.testing import NatsServer

CALLER = ComponentId.parse("test/caller/0")
TARGET = ComponentId.parse("test/target/0")
MISSING = ComponentId.parse("test/missing/0")

_lattices = itertools.count(1)

# The server fixtures live here, not in a tests/messaging/conftest.py: other test modules import
# helpers with ``from conftest import …``, which a second conftest module would shadow.


@pytest.fixture(scope="module")
def nats_server() -> Iterator[NatsServer]:
    """A nats-server shared by this module; tests isolate themselves by lattice name."""
    with NatsServer() as server:
        yield server


@pytest.fixture
def private_nats_server() -> Iterator[NatsServer]:
    """A nats-server of one test alone, for tests that stop, kill or restart it."""
    with NatsServer() as server:
        yield server


def new_lattice() -> str:
    return f"t{next(_lattices)}x{uuid.uuid4().hex[:8]}"


def echo(env: Envelope) -> bytes | None:
    return b"echo:" + env.payload


class FakeComponent:
    """An endpoint double: a bounded mailbox that records envelopes and answers requests.

    ``answer`` computes the reply of a request (or raises the error to reply with); with
    ``hold`` the reply futures are kept in ``held`` for the test to complete.
    """

    def __init__(
        self,
        capacity: int = 10_000,
        answer: Callable[[Envelope], bytes | None] = echo,
        *,
        hold: bool = False,
    ) -> None:
        self.capacity = capacity
        self.answer = answer
        self.hold = hold
        self.received: list[Envelope] = []
        self.held: list[asyncio.Future[bytes | None]] = []
        self._changed = asyncio.Event()

    def _admit(self, env: Envelope) -> None:
        if len(self.received) >= self.capacity:
            raise QueueFullError(str(env.target), self.capacity)
        self.received.append(env)
        self._changed.set()

    async def deliver(self, env: Envelope) -> None:
        self._admit(env)

    async def submit(self, env: Envelope) -> asyncio.Future[bytes | None]:
        self._admit(env)
        fut: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        if self.hold:
            self.held.append(fut)
            return fut
        try:
            fut.set_result(self.answer(env))
        except WactorError as exc:
            fut.set_exception(exc)
        return fut

    async def wait_received(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._changed.clear()
                await self._changed.wait()


class Inbox:
    """A topic handler that records (subject, envelope) pairs and lets a test wait for them."""

    def __init__(self) -> None:
        self.got: list[tuple[str, Envelope]] = []
        self._changed = asyncio.Event()

    def __call__(self, subject: str, env: Envelope) -> None:
        self.got.append((subject, env))
        self._changed.set()

    @property
    def subjects(self) -> list[str]:
        return [s for s, _ in self.got]

    async def wait_for(self, subject: str, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while subject not in self.subjects:
                self._changed.clear()
                await self._changed.wait()


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0) -> None:
    """Wait until ``check()`` is true, polling; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.01)


def request_env(payload: bytes = b"x", target: ComponentId = TARGET) -> Envelope:
    return Envelope(
        CALLER,
        target,
        payload,
        kind="request",
        correlation_id=uuid.uuid4().hex,
        reply_to=CALLER,
    )


def send_env(payload: bytes = b"x", target: ComponentId = TARGET) -> Envelope:
    return Envelope(CALLER, target, payload)


@dataclass
class Lattice:
    """Where components are registered (``host``) and where messages come from (``caller``)."""

    caller: Broker
    host: Broker
    remote: bool


@pytest.fixture(params=["memory", "nats-local", "nats-remote"])
async def lattice(
    request: pytest.FixtureRequest, nats_server: NatsServer
) -> AsyncIterator[Lattice]:
    if request.param == "memory":
        broker = MemoryBroker()
        await broker.open()
        yield Lattice(broker, broker, remote=False)
        await broker.close()
        return
    name = new_lattice()
    # A host accepts a callback from NATS only as the answer of its own request (the host's
    # correlator decides, see the NATS-only tests); this suite's fake components accept all.
    host = NatsBroker(nats_server.url, name, host_id="host", accept_callback=lambda env: True)
    caller = (
        host
        if request.param == "nats-local"
        else NatsBroker(nats_server.url, name, host_id="caller")
    )
    await host.open()
    await caller.open()
    try:
        yield Lattice(caller, host, remote=caller is not host)
    finally:
        await caller.close()
        await host.close()


# --- send ----------------------------------------------------------------------------------------


async def test_send_reaches_the_registered_component(lattice: Lattice) -> None:
    component = FakeComponent()
    await lattice.host.register(TARGET, component)
    await lattice.caller.send(send_env(b"hello"))
    await component.wait_received(1)
    assert component.received[0].payload == b"hello"
    assert component.received[0].kind == "send"
    assert component.received[0].sender == CALLER


async def test_send_keeps_every_envelope_field(lattice: Lattice) -> None:
    component = FakeComponent()
    await lattice.host.register(TARGET, component)
    env = Envelope(
        CALLER,
        TARGET,
        b"\x00\xff binary \r\n",
        kind="callback",
        correlation_id="corr-1",
        reply_to=CALLER,
        content_type=" text/plain; charset=utf-8; note=100%é ",
        timestamp_ns=1234567890123,
    )
    await lattice.caller.send(env)
    await component.wait_received(1)
    assert component.received[0] == env


async def test_sends_from_one_sender_arrive_in_order(lattice: Lattice) -> None:
    component = FakeComponent()
    await lattice.host.register(TARGET, component)
    for i in range(200):
        await lattice.caller.send(send_env(str(i).encode()))
    await component.wait_received(200)
    assert [int(e.payload) for e in component.received] == list(range(200))


async def test_send_to_an_unknown_target_raises_target_not_found(lattice: Lattice) -> None:
    with pytest.raises(TargetNotFoundError) as info:
        await lattice.caller.send(send_env(target=MISSING))
    assert info.value.target == str(MISSING)
    assert lattice.caller.statistics().undeliverable == 1


async def test_send_to_a_full_mailbox_raises_queue_full(lattice: Lattice) -> None:
    await lattice.host.register(TARGET, FakeComponent(capacity=2))
    await lattice.caller.send(send_env(b"1"))
    await lattice.caller.send(send_env(b"2"))
    with pytest.raises(QueueFullError) as info:
        await lattice.caller.send(send_env(b"3"))
    assert (info.value.target, info.value.capacity) == (str(TARGET), 2)


async def test_unregistered_component_is_not_found_any_more(lattice: Lattice) -> None:
    await lattice.host.register(TARGET, FakeComponent())
    await lattice.caller.send(send_env())
    await lattice.host.unregister(TARGET)
    await lattice.host.unregister(TARGET)  # idempotent
    with pytest.raises(TargetNotFoundError):
        await lattice.caller.send(send_env())
    with pytest.raises(TargetNotFoundError):
        await lattice.caller.request(request_env(), timeout=30)


# --- request -------------------------------------------------------------------------------------


async def test_request_returns_the_reply_payload(lattice: Lattice) -> None:
    component = FakeComponent()
    await lattice.host.register(TARGET, component)
    env = request_env(b"ping")
    assert await lattice.caller.request(env, timeout=10) == b"echo:ping"
    received = component.received[0]
    assert (received.kind, received.correlation_id, received.reply_to) == (
        "request",
        env.correlation_id,
        CALLER,
    )


async def test_request_of_a_component_that_replies_nothing_returns_none(lattice: Lattice) -> None:
    await lattice.host.register(TARGET, FakeComponent(answer=lambda env: None))
    assert await lattice.caller.request(request_env(), timeout=10) is None


async def test_empty_reply_is_not_none(lattice: Lattice) -> None:
    await lattice.host.register(TARGET, FakeComponent(answer=lambda env: b""))
    assert await lattice.caller.request(request_env(), timeout=10) == b""


async def test_submit_returns_a_future_completed_by_the_reply(lattice: Lattice) -> None:
    component = FakeComponent(hold=True)
    await lattice.host.register(TARGET, component)
    fut = await lattice.caller.submit(request_env(b"later"))
    await component.wait_received(1)
    assert not fut.done()
    component.held[0].set_result(b"done")
    assert await asyncio.wait_for(fut, 10) == b"done"


async def test_many_concurrent_requests_each_get_their_own_reply(lattice: Lattice) -> None:
    await lattice.host.register(TARGET, FakeComponent())
    replies = await asyncio.gather(
        *(lattice.caller.request(request_env(str(i).encode()), timeout=10) for i in range(100))
    )
    assert replies == [f"echo:{i}".encode() for i in range(100)]


async def test_request_to_an_unknown_target_raises_target_not_found(lattice: Lattice) -> None:
    # A long timeout: the refusal must come at once, not as a timeout.
    with pytest.raises(TargetNotFoundError):
        await lattice.caller.request(request_env(target=MISSING), timeout=30)
    assert lattice.caller.statistics().undeliverable == 1


async def test_request_to_a_full_mailbox_raises_queue_full(lattice: Lattice) -> None:
    await lattice.host.register(TARGET, FakeComponent(capacity=1))
    await lattice.caller.request(request_env(), timeout=10)
    with pytest.raises(QueueFullError):
        await lattice.caller.request(request_env(), timeout=30)


async def test_request_times_out_when_no_reply_comes(lattice: Lattice) -> None:
    component = FakeComponent(hold=True)
    await lattice.host.register(TARGET, component)
    env = request_env()
    with pytest.raises(RequestTimeoutError) as info:
        await lattice.caller.request(env, timeout=0.2)
    assert info.value.correlation_id == env.correlation_id
    assert info.value.timeout == 0.2
    if not component.held[0].done():  # the memory broker cancels it; over NATS it stays
        component.held[0].set_result(b"too late")  # a late reply goes nowhere, breaks nothing


@pytest.mark.parametrize(
    "error",
    [
        GuestError("bad-input", "first line\nsecond line", component=str(TARGET)),
        GuestError("not-found", None, component=str(TARGET)),
        TrapError("wasm trap: unreachable", component=str(TARGET)),
        ExecutionTimeoutError("ran past 100 ms", timeout_ms=100, component=str(TARGET)),
        ResourceLimitError("fuel exhausted", limit="fuel", component=str(TARGET)),
        ActorStoppedError(str(TARGET), "crashed"),
        QueueFullError(str(TARGET), 7),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_error_of_the_target_reaches_the_requester_with_its_fields(
    lattice: Lattice, error: WactorError
) -> None:
    def fail(env: Envelope) -> bytes | None:
        raise error

    await lattice.host.register(TARGET, FakeComponent(answer=fail))
    with pytest.raises(type(error)) as info:
        await lattice.caller.request(request_env(), timeout=10)
    assert type(info.value) is type(error)
    assert str(info.value) == str(error)
    assert vars(info.value) == vars(error)


# --- where things are ----------------------------------------------------------------------------


async def test_is_local_and_locate(lattice: Lattice) -> None:
    await lattice.host.register(TARGET, FakeComponent())
    assert lattice.host.is_local(TARGET)
    assert lattice.caller.is_local(TARGET) is not lattice.remote
    assert await lattice.caller.locate(TARGET)
    assert not await lattice.caller.locate(MISSING)
    assert not lattice.caller.is_local(MISSING)


# --- topics --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("orders.*.created", ["orders.eu.created", "orders.us.created"]),
        (
            "orders.#",
            ["orders.eu.created", "orders.eu.deleted", "orders.eu.x.created", "orders.us.created"],
        ),
        (
            "orders.>",
            ["orders.eu.created", "orders.eu.deleted", "orders.eu.x.created", "orders.us.created"],
        ),
        ("orders.eu.created", ["orders.eu.created"]),
        ("*.eu.*", ["orders.eu.created", "orders.eu.deleted", "other.eu.x"]),
    ],
)
async def test_publish_reaches_subscriptions_whose_pattern_matches(
    lattice: Lattice, pattern: str, expected: list[str]
) -> None:
    inbox, sentinel = Inbox(), Inbox()
    await lattice.host.subscribe(pattern, inbox)
    await lattice.host.subscribe("end", sentinel)
    subjects = ["orders.eu.created", "orders.eu.deleted", "orders.eu.x.created", "orders"]
    subjects += ["orders.us.created", "other.eu.x"]
    for subject in subjects:
        await lattice.caller.publish(subject, Envelope(CALLER, CALLER, subject.encode(), "publish"))
    # The same subscription receives in publication order: a last match closes the list.
    last = expected[-1]
    await lattice.caller.publish(last, Envelope(CALLER, CALLER, b"last", "publish"))
    await inbox.wait_for(last)
    await eventually(lambda: inbox.got[-1][1].payload == b"last")
    assert inbox.subjects == [*expected, last]
    payloads = [env.payload for _, env in inbox.got[:-1]]
    assert payloads == [s.encode() for s in expected]


async def test_publication_keeps_sender_payload_and_content_type(lattice: Lattice) -> None:
    inbox = Inbox()
    await lattice.host.subscribe("news.#", inbox)
    env = Envelope(CALLER, CALLER, b"\x00data", "publish", content_type="application/json")
    await lattice.caller.publish("news.today", env)
    await inbox.wait_for("news.today")
    got = inbox.got[0][1]
    assert (got.sender, got.payload, got.kind, got.content_type) == (
        CALLER,
        b"\x00data",
        "publish",
        "application/json",
    )


async def test_publish_returns_how_many_subscriptions_of_this_host_matched(
    lattice: Lattice,
) -> None:
    first, second, other = Inbox(), Inbox(), Inbox()
    await lattice.caller.subscribe("a.*", first)
    await lattice.caller.subscribe("a.#", second)
    await lattice.caller.subscribe("b.*", other)
    count = await lattice.caller.publish("a.x", Envelope(CALLER, CALLER, b"", "publish"))
    assert count == 2
    assert first.subjects == second.subjects == ["a.x"]
    assert other.got == []


async def test_cancelled_subscription_receives_nothing_more(lattice: Lattice) -> None:
    cancelled, kept = Inbox(), Inbox()
    sub = await lattice.host.subscribe("t.x", cancelled)
    await lattice.host.subscribe("t.x", kept)
    assert sub.pattern == "t.x"
    sub.cancel()
    sub.cancel()  # idempotent
    await lattice.caller.publish("t.x", Envelope(CALLER, CALLER, b"", "publish"))
    await kept.wait_for("t.x")
    assert cancelled.got == []


async def test_bad_subjects_and_patterns_are_refused(lattice: Lattice) -> None:
    with pytest.raises(ValueError, match="subject"):
        await lattice.caller.publish("a..b", Envelope(CALLER, CALLER, b"", "publish"))
    with pytest.raises(ValueError, match="last token"):
        await lattice.caller.subscribe("a.#.b", Inbox())


# --- the rest ------------------------------------------------------------------------------------


async def test_statistics_count_what_went_through(lattice: Lattice) -> None:
    await lattice.host.register(TARGET, FakeComponent())
    await lattice.caller.send(send_env())
    await lattice.caller.send(send_env())
    await lattice.caller.request(request_env(), timeout=10)
    await lattice.caller.publish("x.y", Envelope(CALLER, CALLER, b"", "publish"))
    stats = lattice.caller.statistics()
    assert (stats.sent, stats.requests, stats.published, stats.undeliverable) == (2, 1, 1, 0)


async def test_close_is_idempotent(lattice: Lattice) -> None:
    await lattice.caller.close()
    await lattice.caller.close()


# === NATS only ===================================================================================


@pytest.fixture
async def two_hosts(nats_server: NatsServer) -> AsyncIterator[tuple[NatsBroker, NatsBroker]]:
    """Two hosts of one fresh lattice on the session's server: (a, b)."""
    name = new_lattice()
    a = NatsBroker(nats_server.url, name, host_id="a")
    b = NatsBroker(nats_server.url, name, host_id="b")
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


def test_component_subject_is_the_documented_one() -> None:
    assert component_subject(ComponentId.parse("shop/cart/0")) == "wactor.default.shop.cart.0"
    dotted = ComponentId.parse("shop/cart.v2/0")
    assert component_subject(dotted, "prod") == "wactor.prod.shop.cart~v2.0"
    assert component_subject(ComponentId.parse("shop.cart/v2/0"), "prod") != component_subject(
        dotted, "prod"
    )


def test_bad_lattice_names_are_refused() -> None:
    for bad in ("", "a.b", "a b", "*", ">"):
        with pytest.raises(ValueError, match="lattice"):
            NatsBroker("nats://127.0.0.1:4222", bad, host_id="h")


async def test_plain_nats_client_request_gets_the_reply_as_body(
    two_hosts: tuple[NatsBroker, NatsBroker],
) -> None:
    _, b = two_hosts
    component = FakeComponent()
    await b.register(TARGET, component)
    nc = await nats.connect(b.servers)
    try:
        msg = await nc.request(component_subject(TARGET, b.lattice), b"plain", timeout=10)
    finally:
        await nc.close()
    assert msg.data == b"echo:plain"
    assert component.received[0].sender == ComponentId.parse("nats/client/0")
    assert component.received[0].kind == "request"


async def test_plain_nats_publish_is_a_send_from_an_anonymous_client(
    two_hosts: tuple[NatsBroker, NatsBroker],
) -> None:
    _, b = two_hosts
    component = FakeComponent()
    await b.register(TARGET, component)
    nc = await nats.connect(b.servers)
    try:
        await nc.publish(component_subject(TARGET, b.lattice), b"fire")
        await nc.flush()
        await component.wait_received(1)
    finally:
        await nc.close()
    env = component.received[0]
    assert (env.kind, env.payload, str(env.sender)) == ("send", b"fire", "nats/client/0")


async def test_plain_nats_client_sees_an_error_as_header_and_one_line_body(
    two_hosts: tuple[NatsBroker, NatsBroker],
) -> None:
    _, b = two_hosts

    def fail(env: Envelope) -> bytes | None:
        raise GuestError("bad-input", "line 1\nline 2", component=str(TARGET))

    await b.register(TARGET, FakeComponent(answer=fail))
    nc = await nats.connect(b.servers)
    try:
        msg = await nc.request(component_subject(TARGET, b.lattice), b"x", timeout=10)
    finally:
        await nc.close()
    assert msg.headers is not None
    assert msg.headers["Wactor-Error"] == "GuestError"
    # the guest's line break arrives escaped, as every guest text in a message is
    assert msg.data == b"test/target/0: guest error bad-input: line 1\\nline 2"


async def test_foreign_error_reply_with_unknown_class_raises_delivery_failed(
    two_hosts: tuple[NatsBroker, NatsBroker],
) -> None:
    a, _ = two_hosts
    nc = await nats.connect(a.servers)

    async def respond(msg: Msg) -> None:
        await nc.publish(msg.reply, b"no such thing", headers={"Wactor-Error": "NotAnError"})

    await nc.subscribe(component_subject(TARGET, a.lattice), cb=respond)
    await nc.flush()
    await nc.flush()  # nats-py: the second PONG comes after the SUB reached the server
    try:
        with pytest.raises(DeliveryFailedError, match="no such thing"):
            await a.request(request_env(), timeout=10)
    finally:
        await nc.close()


async def test_component_with_a_dotted_id_is_reachable_across_hosts(
    two_hosts: tuple[NatsBroker, NatsBroker],
) -> None:
    a, b = two_hosts
    dotted = ComponentId.parse("shop/cart.v2/0")
    await b.register(dotted, FakeComponent())
    assert await a.request(request_env(b"d", target=dotted), timeout=10) == b"echo:d"
    with pytest.raises(TargetNotFoundError):
        await a.request(request_env(target=ComponentId.parse("shop/cart/v2.0")), timeout=30)


async def test_same_id_on_two_hosts_shares_the_load(nats_server: NatsServer) -> None:
    name = new_lattice()
    brokers = [NatsBroker(nats_server.url, name, host_id=h) for h in ("caller", "b", "c")]
    for broker in brokers:
        await broker.open()
    try:
        caller, b, c = brokers
        await b.register(TARGET, FakeComponent(answer=lambda env: b"b"))
        await c.register(TARGET, FakeComponent(answer=lambda env: b"c"))
        replies = [await caller.request(request_env(), timeout=10) for _ in range(60)]
        assert set(replies) == {b"b", b"c"}  # each alone: 2**-59
    finally:
        for broker in brokers:
            await broker.close()


async def test_own_publications_reach_own_subscriptions_once(
    two_hosts: tuple[NatsBroker, NatsBroker],
) -> None:
    # Order is kept per publisher, not across publishers: a host's own publication reaches its
    # own subscriptions before ``publish`` returns, another host's comes when NATS delivers it.
    a, b = two_hosts
    mine, theirs = Inbox(), Inbox()
    await a.subscribe("news.*", mine)
    await b.subscribe("news.*", theirs)
    assert await a.publish("news.one", Envelope(CALLER, CALLER, b"1", "publish")) == 1
    assert mine.subjects == ["news.one"]  # delivered here directly, before publish returned
    assert a._nc is not None
    assert b._nc is not None
    await _settle(a._nc, 5)  # anything the server would echo back to ``a`` is sent before this
    assert await b.publish("news.two", Envelope(CALLER, CALLER, b"2", "publish")) == 1
    await _settle(b._nc, 5)  # ... and anything it would echo back to ``b``
    await mine.wait_for("news.two")
    await a.publish("news.end", Envelope(CALLER, CALLER, b"end", "publish"))
    await theirs.wait_for("news.end")  # a's last one: after any echo of b's own to b
    # an echo of news.one would reach ``a`` before news.two (one server, one connection)
    assert mine.subjects == ["news.one", "news.two", "news.end"]
    # b saw its own news.two directly, a's news.one whenever NATS brought it (either side of
    # news.two), and a's news.end last: each exactly once
    assert sorted(theirs.subjects[:2]) == ["news.one", "news.two"]
    assert theirs.subjects[2:] == ["news.end"]


async def test_open_without_a_server_fails_clearly() -> None:
    with NatsServer() as server:
        url = server.url
    broker = NatsBroker(url, host_id="h", connect_timeout=0.5)
    with pytest.raises(DeliveryFailedError, match=re.escape(f"cannot connect to NATS at {url}")):
        await broker.open()
    await broker.close()


async def test_closing_a_host_answers_its_in_flight_requests(
    two_hosts: tuple[NatsBroker, NatsBroker],
) -> None:
    a, b = two_hosts
    component = FakeComponent(hold=True)
    await b.register(TARGET, component)
    pending = asyncio.ensure_future(a.request(request_env(), timeout=30))
    await component.wait_received(1)
    await b.close()
    with pytest.raises(ActorStoppedError):
        await pending
    with pytest.raises(TargetNotFoundError):
        await a.request(request_env(), timeout=30)


async def test_requests_fail_fast_while_disconnected_and_work_after_a_restart(
    private_nats_server: NatsServer,
) -> None:
    server = private_nats_server
    a = NatsBroker(server.url, "restart", host_id="a")
    b = NatsBroker(server.url, "restart", host_id="b")
    await a.open()
    await b.open()
    try:
        await b.register(TARGET, FakeComponent())
        news = Inbox()
        await b.subscribe("news.*", news)
        assert await a.request(request_env(b"1"), timeout=10) == b"echo:1"

        await asyncio.to_thread(server.stop)
        await eventually(lambda: not a.connected and not b.connected)
        with pytest.raises(DeliveryFailedError):
            await a.request(request_env(), timeout=30)
        with pytest.raises(DeliveryFailedError):
            await a.send(send_env())
        with pytest.raises(DeliveryFailedError):
            await a.locate(TARGET)

        await asyncio.to_thread(server.start)
        await eventually(lambda: a.connected and b.connected)
        await eventually(lambda: a.locate(TARGET))  # b's subscription is back, not re-registered
        assert await a.request(request_env(b"2"), timeout=10) == b"echo:2"
        await a.send(send_env(b"3"))
        await a.publish("news.after", Envelope(CALLER, CALLER, b"", "publish"))
        await news.wait_for("news.after")  # topic subscriptions are back too
    finally:
        await a.close()
        await b.close()


async def test_request_in_flight_when_the_connection_drops_fails_fast(
    private_nats_server: NatsServer,
) -> None:
    server = private_nats_server
    a = NatsBroker(server.url, "drop", host_id="a")
    b = NatsBroker(server.url, "drop", host_id="b")
    await a.open()
    await b.open()
    try:
        component = FakeComponent(hold=True)
        await b.register(TARGET, component)
        pending = asyncio.ensure_future(a.request(request_env(), timeout=30))
        await component.wait_received(1)
        await asyncio.to_thread(server.kill)
        with pytest.raises(DeliveryFailedError, match="connection to NATS lost"):
            await pending
    finally:
        await a.close()
        await b.close()


_HOST_SCRIPT = """
import asyncio, sys
from wactor._ids import ComponentId
from wactor.messaging._nats import NatsBroker

class Echo:
    async def deliver(self, env):
        return None

    async def submit(self, env):
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(b"from-b")
        return fut

async def main():
    broker = NatsBroker(sys.argv[1], sys.argv[2], host_id="b")
    await broker.open()
    for cid in sys.argv[3:]:
        await broker.register(ComponentId.parse(cid), Echo())
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_killed_host_leaves_no_silent_holes(nats_server: NatsServer) -> None:
    name = new_lattice()
    only_b = ComponentId.parse("test/only-b/0")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOST_SCRIPT,
        nats_server.url,
        name,
        str(TARGET),
        str(only_b),
        stdout=asyncio.subprocess.PIPE,
    )
    a = NatsBroker(nats_server.url, name, host_id="a")
    caller = NatsBroker(nats_server.url, name, host_id="caller")
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            assert await proc.stdout.readline() == b"ready\n"
        await a.open()
        await caller.open()
        await a.register(TARGET, FakeComponent(answer=lambda env: b"from-a"))
        assert await caller.request(request_env(target=only_b), timeout=10) == b"from-b"

        proc.kill()  # SIGKILL: no goodbye from host b
        await proc.wait()
        await eventually(lambda: _not(caller.locate(only_b)))
        with pytest.raises(TargetNotFoundError):
            await caller.request(request_env(target=only_b), timeout=30)
        replies = {await caller.request(request_env(), timeout=10) for _ in range(20)}
        assert replies == {b"from-a"}  # the surviving instance of the same id takes over
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        await a.close()
        await caller.close()


async def _not(check: Awaitable[bool]) -> bool:
    return not await check
