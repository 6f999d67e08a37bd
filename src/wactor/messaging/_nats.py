"""The NATS broker: the components of every host of a lattice reach each other through NATS.

The wire format (subjects, ``Wactor-*`` headers, errors) is described and implemented in
:mod:`wactor.messaging._nats_wire`; the connection is a :class:`~wactor._nats_client.
NatsConnection`, shared with the host's storage and lattice registry; this module moves the
bytes.

Behaviour: a target registered in this broker is called directly, without NATS. The connection
reconnects forever; while it is down, sends and requests to other hosts fail at once with
``DeliveryFailedError`` (so do requests waiting for a reply when it drops); once it is back,
every registration and subscription works again (nats-py subscribes them again). The
connection does not echo this host's own messages: its publications reach its own
subscriptions once, directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from wactor._deadline import wait_answer
from wactor._ids import ComponentId
from wactor._nats_client import NatsClient, NatsConnection
from wactor._nats_client import settle as _settle
from wactor._tasks import TaskOwner
from wactor.errors import (
    ActorStoppedError,
    DeliveryFailedError,
    InvalidMessageError,
    RequestTimeoutError,
    TargetNotFoundError,
    WactorError,
)
from wactor.messaging._broker import BrokerStats, Endpoint, TopicHandler
from wactor.messaging._envelope import Envelope
from wactor.messaging._nats_inbox import ReplyInbox
from wactor.messaging._nats_wire import (
    ANONYMOUS_SENDER,
    acknowledgement,
    component_subject,
    decode_message,
    decode_publication,
    encode_error,
    encode_headers,
    encode_publication,
    encode_reply,
    is_ping,
    ping_headers,
    request_headers,
    topic_of,
    topic_subject,
    wants_acknowledgement,
)
from wactor.messaging._subjects import SubjectPattern, check_subject

__all__ = ["ANONYMOUS_SENDER", "NatsBroker", "component_subject", "topic_subject"]

ACK_DELAY = 0.02
"""Seconds a request may take before its host acknowledges it (see ReplyInbox)."""

_log = logging.getLogger("wactor.messaging.nats")


class _TopicSubscription:
    """A live topic subscription of a :class:`NatsBroker`."""

    __slots__ = ("_broker", "_key", "_nats", "cancelled", "handler", "parsed", "pattern")

    def __init__(
        self, broker: NatsBroker, key: int, parsed: SubjectPattern, handler: TopicHandler
    ) -> None:
        self._broker = broker
        self._key = key
        self._nats: NatsSubscription | None = None
        self.pattern = parsed.text
        self.parsed = parsed
        self.handler = handler
        self.cancelled = False

    def cancel(self) -> None:
        """Stop receiving; idempotent."""
        if self.cancelled:
            return
        self.cancelled = True
        self._broker._drop_subscription(self._key, self._nats)


class NatsBroker:
    """A broker over NATS: local targets directly, every other host's through the lattice.

    ``connection`` is the host's :class:`NatsConnection` (its lattice and host id are the
    broker's; whoever opened it closes it), or the NATS URL (one server URL, a comma-separated
    list, or a list) of a connection of the broker's own, to ``lattice`` (the group of hosts that
    see each other, one NATS subject token) as ``host_id`` (connection name, answer to pings,
    the host named in acknowledgements). ``ack_timeout`` bounds how long a send waits for the
    receiving host, ``locate_timeout`` how long ``locate`` waits for an answer.
    ``accept_callback`` decides whether a callback that came over NATS answers a request
    this host opened (without it, every such callback is dropped). The host's lattice registry
    feeds :meth:`lattice_view`, which fails the requests in flight to hosts that left.
    """

    def __init__(
        self,
        connection: NatsConnection | str | Sequence[str],
        lattice: str = "default",
        *,
        host_id: str | None = None,
        ack_timeout: float = 5.0,
        locate_timeout: float = 2.0,
        connect_timeout: float = 5.0,
        reconnect_wait: float = 0.1,
        ping_interval: float = 5.0,
        accept_callback: Callable[[Envelope], bool] | None = None,
    ) -> None:
        if isinstance(connection, NatsConnection):
            self._conn, self._owns_connection = connection, False
        else:
            if host_id is None:
                raise TypeError("NatsBroker over a URL needs host_id")
            self._conn = NatsConnection(
                connection,
                lattice,
                host_id=host_id,
                connect_timeout=connect_timeout,
                reconnect_wait=reconnect_wait,
                ping_interval=ping_interval,
            )
            self._owns_connection = True
        self.servers = list(self._conn.servers)
        self.lattice = self._conn.lattice
        self.host_id = self._conn.host_id
        self._ack_timeout = ack_timeout
        self._locate_timeout = locate_timeout
        self._accept_callback = accept_callback
        self._nc: NatsClient | None = None  # the connection's client, once open
        self._reply_sub: NatsSubscription | None = None
        self._open_lock = asyncio.Lock()
        self._closed = False
        self._endpoints: dict[ComponentId, Endpoint] = {}
        self._component_subs: dict[ComponentId, NatsSubscription] = {}
        self._topics: dict[int, _TopicSubscription] = {}
        self._keys = itertools.count(1)
        self._inbox = ReplyInbox(ack_timeout)
        self._inbound: dict[asyncio.Task[None], tuple[str, ComponentId]] = {}
        self._acks: dict[str, asyncio.TimerHandle] = {}  # reply subject -> its acknowledgement
        self._chores = TaskOwner("NATS broker")  # replies and unsubscribes sent in passing
        self._sent = 0
        self._requests = 0
        self._published = 0
        self._fanout = 0
        self._undeliverable = 0
        self._rejected = 0  # refused callbacks and garbage; the inbox counts its own

    # --- connection ----------------------------------------------------------------------------

    @property
    def connection(self) -> NatsConnection:
        """The NATS connection this broker uses."""
        return self._conn

    @property
    def connected(self) -> bool:
        """Tell whether the connection to NATS is up right now."""
        return self._nc is not None and self._conn.connected

    async def open(self) -> None:
        """Connect to NATS if not yet connected (at most ``connect_timeout``) and listen for
        replies; idempotent."""
        async with self._open_lock:
            if self._closed:
                raise DeliveryFailedError("NATS broker is closed")
            if self._nc is not None:
                return
            await self._conn.connect()
            nc = self._conn.client
            assert nc is not None  # connect() returned
            try:
                self._inbox.prefix = nc.new_inbox() + "."
                self._reply_sub = await nc.subscribe(self._inbox.prefix + "*", cb=self._on_reply)
                await _settle(nc, self._conn.connect_timeout)
            except (OSError, TimeoutError, nats.errors.Error) as exc:
                if self._owns_connection:
                    await self._conn.close()
                reason = str(exc) or type(exc).__name__
                raise DeliveryFailedError(
                    f"cannot connect to NATS at {self._conn.where}: {reason}"
                ) from exc
            self._conn.on_disconnected(self._on_disconnected)
            self._nc = nc

    def _client(self) -> NatsClient:
        if self._closed:
            raise DeliveryFailedError("NATS broker is closed")
        if self._nc is None:
            raise DeliveryFailedError("NATS broker is not open (call open() first)")
        return self._nc

    def _connected_client(self) -> NatsClient:
        nc = self._client()
        if not nc.is_connected:
            raise DeliveryFailedError(f"not connected to NATS at {self._conn.where} (reconnecting)")
        return nc

    def _on_disconnected(self) -> None:
        self._inbox.fail_all("connection to NATS lost before the reply")

    def lattice_view(self, hosts: Mapping[str, Collection[str]], read_at: float) -> None:
        """Fail the requests in flight whose host left the lattice (the registry's view of
        ``hosts`` and their components, read at ``time.monotonic()`` ``read_at``)."""
        self._inbox.lattice_view(hosts, read_at)

    # --- components ----------------------------------------------------------------------------

    async def register(self, cid: ComponentId, endpoint: Endpoint) -> None:
        """Make a local component reachable, here and from every host of the lattice."""
        nc = self._client()
        self._endpoints[cid] = endpoint
        if cid in self._component_subs:
            return
        subject = component_subject(cid, self.lattice)

        async def on_message(msg: Msg) -> None:
            await self._on_component_message(cid, msg)

        try:
            self._component_subs[cid] = await nc.subscribe(subject, queue=subject, cb=on_message)
            if nc.is_connected:
                # Once register returns, the server routes this subject here.
                await _settle(nc, self._ack_timeout)
        except (TimeoutError, nats.errors.Error) as exc:
            if not isinstance(exc, TimeoutError | nats.errors.TimeoutError):
                self._endpoints.pop(cid, None)
                raise DeliveryFailedError(f"{cid}: cannot subscribe {subject}: {exc}") from exc
            # A flush timeout only means the server has not confirmed yet: the subscription
            # stands, and nats-py sends it again after a reconnect.

    async def unregister(self, cid: ComponentId) -> None:
        """Make a local component unreachable; idempotent."""
        self._endpoints.pop(cid, None)
        sub = self._component_subs.pop(cid, None)
        if sub is None:
            return
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await sub.unsubscribe()
            nc = self._nc
            if nc is not None and nc.is_connected:
                # Once unregister returns, the server routes nothing here for this id any more.
                await _settle(nc, self._ack_timeout)

    def is_local(self, cid: ComponentId) -> bool:
        """Tell whether ``cid`` runs in this host."""
        return cid in self._endpoints

    async def locate(self, cid: ComponentId) -> bool:
        """Tell whether ``cid`` runs here or on any host of the lattice (asks with a ping)."""
        if cid in self._endpoints:
            return True
        subject = component_subject(cid, self.lattice)
        fut = await self._start(subject, b"", ping_headers(), cid, False)
        try:
            await asyncio.wait_for(fut, self._locate_timeout)
        except TargetNotFoundError:
            return False
        except WactorError:
            raise  # the peer's answer, a timeout error too
        except TimeoutError:
            return True  # a subscriber exists (no-responders would have said otherwise): busy
        return True

    # --- messages ------------------------------------------------------------------------------

    async def send(self, env: Envelope) -> None:
        """Deliver fire-and-forget; a remote host acknowledges once the message is enqueued."""
        endpoint = self._endpoints.get(env.target)
        if endpoint is not None:
            await endpoint.deliver(env)
            self._sent += 1
            return
        subject = component_subject(env.target, self.lattice)
        fut = await self._start(subject, env.payload, encode_headers(env), env.target, True)
        try:
            await asyncio.wait_for(fut, self._ack_timeout)
        except WactorError:
            raise  # the peer's answer, a timeout error too
        except TimeoutError:
            raise DeliveryFailedError(
                f"{env.target}: no acknowledgement within {self._ack_timeout:g}s",
                component=str(env.target),
            ) from None
        self._sent += 1

    async def submit(self, env: Envelope) -> asyncio.Future[bytes | None]:
        """Hand a request over; return the future of its reply (remote: the NATS reply)."""
        endpoint = self._endpoints.get(env.target)
        if endpoint is not None:
            fut = await endpoint.submit(env)
            self._requests += 1
            return fut
        subject = component_subject(env.target, self.lattice)
        headers = request_headers(env)  # asks for an acknowledgement: lattice_view can fail it
        remote = await self._start(subject, env.payload, headers, env.target, True, watch=True)
        self._requests += 1
        return remote

    async def request(self, env: Envelope, timeout: float) -> bytes | None:
        """Send a request and wait for its reply (``RequestTimeoutError`` after ``timeout``)."""
        fut = await self.submit(env)
        return await wait_answer(
            fut, timeout, lambda: RequestTimeoutError(str(env.target), timeout, env.correlation_id)
        )

    async def _start(
        self,
        subject: str,
        payload: bytes,
        headers: dict[str, str],
        target: ComponentId,
        counted: bool,
        *,
        watch: bool = False,
    ) -> asyncio.Future[bytes | None]:
        """Publish a request on ``subject`` with a reply subject; return the reply's future."""
        nc = self._connected_client()
        reply, fut = self._inbox.expect(target, counted=counted, watched=watch)
        try:
            await nc.publish(subject, payload, reply=reply, headers=headers)
        except nats.errors.Error as exc:
            fut.cancel()
            raise self._publish_error(exc, target, len(payload)) from exc
        return fut

    def _publish_error(self, exc: Exception, target: ComponentId, size: int) -> WactorError:
        if isinstance(exc, nats.errors.MaxPayloadError):
            return InvalidMessageError(
                f"{target}: payload of {size} bytes exceeds the NATS server's max_payload",
                component=str(target),
            )
        return DeliveryFailedError(f"{target}: NATS publish failed: {exc}", component=str(target))

    async def _on_reply(self, msg: Msg) -> None:
        self._inbox.on_reply(msg)

    # --- the receiving side --------------------------------------------------------------------

    async def _on_component_message(self, cid: ComponentId, msg: Msg) -> None:
        try:
            await self._handle_component_message(cid, msg)
        except Exception:  # noqa: BLE001 - nothing above us to raise to: log it
            _log.exception("%s: failed to handle a message for %s", self.host_id, cid)

    async def _handle_component_message(self, cid: ComponentId, msg: Msg) -> None:
        headers = msg.headers or {}
        reply = msg.reply
        if is_ping(headers):
            if reply:
                await self._respond(reply, self.host_id.encode(), None)
            return
        endpoint = None if self._closed else self._endpoints.get(cid)
        fut: asyncio.Future[bytes | None] | None = None
        try:
            env = decode_message(cid, msg.data, headers, has_reply=bool(reply))
            if env.kind == "callback" and not self._callback_answers_own_request(env):
                self._rejected += 1  # nothing to tell a forger: no reply
                _log.debug("%s: dropped a callback for %s that answers nothing", self.host_id, cid)
                return
            if endpoint is None:
                endpoint = _Missing(cid)
            elif reply and env.kind == "request" and wants_acknowledgement(headers):
                # Taken: if this host dies from now on, the requester can tell (lattice_view).
                # Said only when the reply is not out within ACK_DELAY: a quick reply needs none.
                self._acks[reply] = asyncio.get_running_loop().call_later(
                    ACK_DELAY, self._acknowledge, reply
                )
            if env.kind == "request":
                fut = await endpoint.submit(env)
            else:
                await endpoint.deliver(env)
        except Exception as exc:  # noqa: BLE001 - every refusal goes back to the sender
            if reply:
                await self._respond(reply, *encode_error(exc, cid))
            else:
                self._undeliverable += 1
                _log.debug("%s: message for %s refused, no one to tell: %s", self.host_id, cid, exc)
            return
        if fut is None:
            if reply:
                await self._respond(reply, b"", None)  # the acknowledgement of a send
        elif not reply:
            fut.add_done_callback(_retrieve)  # a request nobody waits for: drop its reply
        elif fut.done():
            await self._respond_with(reply, fut, cid)
        else:
            task = asyncio.get_running_loop().create_task(self._reply_later(reply, fut, cid))
            self._inbound[task] = (reply, cid)
            task.add_done_callback(self._inbound_done)

    def _acknowledge(self, reply: str) -> None:
        if self._acks.pop(reply, None) is not None:
            self._chore(self._respond(reply, b"", acknowledgement(self.host_id)))

    def _inbound_done(self, task: asyncio.Task[None]) -> None:
        self._inbound.pop(task, None)

    def _callback_answers_own_request(self, env: Envelope) -> bool:
        """Tell whether a callback from NATS answers a request this host opened (and is
        awaiting): the only callbacks a component may receive from the wire."""
        if env.correlation_id is None or self._accept_callback is None:
            return False
        return self._accept_callback(env)

    async def _reply_later(
        self, reply: str, fut: asyncio.Future[bytes | None], cid: ComponentId
    ) -> None:
        await asyncio.wait([fut])
        await self._respond_with(reply, fut, cid)

    async def _respond_with(
        self, reply: str, fut: asyncio.Future[bytes | None], cid: ComponentId
    ) -> None:
        if fut.cancelled():
            await self._respond(reply, *encode_error(ActorStoppedError(str(cid)), cid))
            return
        exc = fut.exception()
        if exc is not None:
            await self._respond(reply, *encode_error(exc, cid))
            return
        await self._respond(reply, *encode_reply(fut.result()))

    async def _respond(self, reply: str, payload: bytes, headers: dict[str, str] | None) -> None:
        ack = self._acks.pop(reply, None)
        if ack is not None:
            ack.cancel()  # the reply goes out now: no acknowledgement needed
        nc = self._nc
        if nc is None or nc.is_closed:
            return
        try:
            await nc.publish(reply, payload, headers=headers)
        except nats.errors.MaxPayloadError:
            body, error_headers = encode_error(
                InvalidMessageError(
                    f"reply of {len(payload)} bytes exceeds the NATS server's max_payload"
                ),
                ANONYMOUS_SENDER,
            )
            with contextlib.suppress(nats.errors.Error):
                await nc.publish(reply, body, headers=error_headers)
        except nats.errors.Error as exc:
            # The requester learns of it through its own disconnection or timeout.
            _log.debug("%s: reply to %s lost: %s", self.host_id, reply, exc)

    # --- topics --------------------------------------------------------------------------------

    async def publish(self, subject: str, env: Envelope) -> int:
        """Deliver to every matching subscription of the lattice; return how many were here."""
        check_subject(subject)
        nc = self._client()
        self._published += 1
        count = 0
        for sub in list(self._topics.values()):
            if not sub.cancelled and sub.parsed.matches(subject):
                sub.handler(subject, env)
                count += 1
        self._fanout += count
        headers = encode_publication(env)
        try:
            # While reconnecting, nats-py buffers the publication and sends it once back.
            await nc.publish(topic_subject(subject, self.lattice), env.payload, headers=headers)
        except nats.errors.Error as exc:
            raise self._publish_error(exc, env.target, len(env.payload)) from exc
        return count

    async def subscribe(self, pattern: str, handler: TopicHandler) -> _TopicSubscription:
        """Call ``handler`` for every publication of the lattice matching ``pattern``."""
        parsed = SubjectPattern.parse(pattern)
        nc = self._client()
        key = next(self._keys)
        sub = _TopicSubscription(self, key, parsed, handler)

        async def on_message(msg: Msg) -> None:
            self._on_publication(sub, msg)

        try:
            sub._nats = await nc.subscribe(topic_subject(pattern, self.lattice), cb=on_message)
            if nc.is_connected:
                await _settle(nc, self._ack_timeout)
        except nats.errors.TimeoutError:
            pass  # the subscription stands; the server confirms it when it can
        except nats.errors.Error as exc:
            raise DeliveryFailedError(f"cannot subscribe to {pattern!r}: {exc}") from exc
        self._topics[key] = sub
        return sub

    def _on_publication(self, sub: _TopicSubscription, msg: Msg) -> None:
        if sub.cancelled or self._closed:
            return
        subject = topic_of(msg.subject, self.lattice)
        try:
            env = decode_publication(msg.data, msg.headers or {})
        except InvalidMessageError as exc:
            self._rejected += 1  # a peer's garbage: counted, not logged at length
            _log.debug("%s: dropped a publication on %s: %s", self.host_id, subject, exc)
            return
        try:
            sub.handler(subject, env)
        except Exception:  # noqa: BLE001 - no publisher to raise to: log it
            _log.exception("%s: topic handler for %r failed", self.host_id, sub.pattern)
            return
        self._fanout += 1

    def _drop_subscription(self, key: int, nsub: NatsSubscription | None) -> None:
        self._topics.pop(key, None)
        if nsub is not None and self._nc is not None and not self._nc.is_closed:
            self._chore(nsub.unsubscribe())

    def _chore(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            with contextlib.suppress(nats.errors.Error):
                await work

        self._chores.spawn(run())

    # --- the rest ------------------------------------------------------------------------------

    def statistics(self) -> BrokerStats:
        """Return counts of what went through."""
        return BrokerStats(
            self._sent,
            self._requests,
            self._published,
            self._fanout,
            self._undeliverable + self._inbox.undeliverable,
            self._rejected + self._inbox.rejected,
        )

    async def close(self) -> None:
        """Answer what is in flight with errors and unsubscribe; idempotent. Disconnects when the
        connection is the broker's own."""
        if self._closed:
            return
        self._closed = True
        nc = self._nc
        for sub in list(self._component_subs.values()):
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
        self._component_subs.clear()
        # Requests still unanswered here: tell their requesters now instead of at their timeout.
        inbound, self._inbound = self._inbound, {}
        for task, (reply, cid) in inbound.items():
            task.cancel()
            stopped = ActorStoppedError(str(cid), "host closed its NATS broker")
            await self._respond(reply, *encode_error(stopped, cid))
        if inbound:
            await asyncio.wait(list(inbound))
        for ack in self._acks.values():
            ack.cancel()
        self._acks.clear()
        self._inbox.fail_all("NATS broker closed before the reply")
        await self._chores.join()
        self._endpoints.clear()
        topics = list(self._topics.values())
        self._topics.clear()
        for sub_ in topics:
            sub_.cancelled = True
        if nc is not None and not self._owns_connection:
            # The connection stays for the others: nothing more may come in for this broker.
            for nsub in [self._reply_sub, *(t._nats for t in topics)]:
                if nsub is not None:
                    with contextlib.suppress(nats.errors.Error):
                        await nsub.unsubscribe()
        if nc is not None and nc.is_connected:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await _settle(nc, 1)  # the error replies above are out before we go
        if self._owns_connection:
            await self._conn.close()


class _Missing:
    """The endpoint of a component that is not (or no longer) registered here."""

    def __init__(self, cid: ComponentId) -> None:
        self._cid = cid

    async def deliver(self, env: Envelope) -> None:
        raise TargetNotFoundError(str(self._cid))

    async def submit(self, env: Envelope) -> asyncio.Future[bytes | None]:
        raise TargetNotFoundError(str(self._cid))


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
