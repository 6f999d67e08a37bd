"""The host's message routing: broker, correlation of guest requests, dead letters, callbacks.

Everything that moves an envelope between components (or from the Python API to one) goes
through the :class:`Router`: the payload limit, delivery to a mailbox, publications, and the
plumbing of a guest's ``request`` (its reply, its timeout, its cancellation) back to the
requester's ``handle-callback``. It knows components only as actor cells in the registry.
"""

from __future__ import annotations

import asyncio
from typing import Any

from wactor._ids import ComponentId
from wactor._tasks import TaskOwner
from wactor.actors import ActorCell, Registry
from wactor.errors import InvalidMessageError, RequestTimeoutError, TargetNotFoundError, WactorError
from wactor.messaging import (
    ERROR_CONTENT_TYPE,
    Broker,
    Correlator,
    DeadLetterLog,
    Envelope,
    PendingRequest,
    Subscription,
    TopicHandler,
    check_subject,
)

__all__ = ["CellEndpoint", "Router", "error_callback"]


class Router:
    """Routes envelopes between the API, the broker and the component actors."""

    def __init__(
        self,
        broker: Broker,
        registry: Registry,
        dead_letters: DeadLetterLog,
        max_payload_bytes: int,
    ) -> None:
        self.broker = broker
        self.registry = registry
        self.dead_letters = dead_letters
        self.max_payload_bytes = max_payload_bytes
        self.correlator = Correlator(self._request_timed_out)
        self._tasks = TaskOwner("router")

    # -- the payload limit and who is there ------------------------------------------------------

    def check_payload(self, payload: bytes, sender: ComponentId | None = None) -> None:
        """Refuse a payload over the host's limit (worded for ``sender``, a guest, if given)."""
        limit = self.max_payload_bytes
        if len(payload) <= limit:
            return
        if sender is None:
            raise InvalidMessageError(
                f"payload of {len(payload)} bytes exceeds the host's {limit}-byte limit"
            )
        raise InvalidMessageError(
            f"{sender}: payload of {len(payload)} bytes exceeds the {limit}-byte limit"
        )

    def cell(self, cid: ComponentId) -> ActorCell[Any]:
        """The actor cell of a running component (``TargetNotFoundError`` if none)."""
        cell: ActorCell[Any] | None = self.registry.lookup(str(cid))
        if cell is None:
            raise TargetNotFoundError(str(cid))
        return cell

    def knows(self, cid: ComponentId) -> bool:
        """Tell whether ``cid`` runs on this host."""
        return str(cid) in self.registry

    # -- delivery --------------------------------------------------------------------------------

    async def deliver(self, env: Envelope) -> None:
        """Hand a fire-and-forget envelope to the broker."""
        await self.broker.send(env)

    async def publish(self, subject: str, env: Envelope) -> int:
        """Publish on ``subject``; return how many subscriptions matched here."""
        try:
            check_subject(subject)
        except ValueError as exc:
            raise InvalidMessageError(str(exc)) from exc
        return await self.broker.publish(subject, env)

    async def subscribe(self, pattern: str, target: ComponentId | TopicHandler) -> Subscription:
        """Deliver publications matching ``pattern`` to a component's mailbox or a callback."""
        handler = target if not isinstance(target, ComponentId) else self._to_mailbox(target)
        try:
            return await self.broker.subscribe(pattern, handler)
        except ValueError as exc:
            raise InvalidMessageError(str(exc)) from exc

    def _to_mailbox(self, cid: ComponentId) -> TopicHandler:
        def handler(subject: str, env: Envelope) -> None:
            self._deliver_publication(cid, subject, env)

        return handler

    def _deliver_publication(self, cid: ComponentId, subject: str, env: Envelope) -> None:
        copy = Envelope(
            env.sender,
            cid,
            env.payload,
            kind="publish",
            content_type=env.content_type,
            timestamp_ns=env.timestamp_ns,
            subject=subject,
        )
        try:
            self.cell(cid).ref.tell_nowait(copy)
        except WactorError as exc:
            self.dead_letters.record(
                str(cid),
                f"publication on {subject}: {exc}",
                sender=str(env.sender),
                kind="publish",
                size=len(env.payload),
            )

    # -- a guest's requests ----------------------------------------------------------------------

    async def start_guest_request(self, env: Envelope, pending: PendingRequest) -> None:
        """Submit a guest's request; its answer comes back later as the requester's callback."""
        fut = await self.broker.submit(env)  # a refusal reaches the guest as its err at once
        self.correlator.open(pending)
        # a callback on the reply's future, not a task per request
        fut.add_done_callback(lambda done: self._finish_guest_request(done, pending))

    def _finish_guest_request(self, fut: asyncio.Future[Any], pending: PendingRequest) -> None:
        if self._tasks.closed:
            return  # the host is closing: nobody is left to call back
        if fut.cancelled() or fut.exception() is not None:
            # the failure is the requester's error callback
            exc = fut.exception() if not fut.cancelled() else None
            text = str(exc) if exc is not None else f"request to {pending.target} was cancelled"
            if self.correlator.complete(pending.correlation_id) is not None:
                self._deliver_callback(error_callback(pending, text), pending)
            return
        if self.correlator.complete(pending.correlation_id) is None:
            return  # late (timed out) or cancelled: dropped and counted by the correlator
        reply = fut.result()
        callback = Envelope(
            pending.target,
            pending.requester,
            reply if reply is not None else b"",
            kind="callback",
            correlation_id=pending.correlation_id,
            reply_to=pending.requester,
        )
        self._deliver_callback(callback, pending)

    def accept_callback(self, env: Envelope) -> bool:
        """Accept a callback from the lattice only as the answer of a request this host opened
        for ``env.target`` to ``env.sender`` (closing it: its own reply then drops as late)."""
        cid = env.correlation_id
        return cid is not None and self.correlator.claim(cid, env.target, env.sender) is not None

    def _request_timed_out(self, pending: PendingRequest) -> None:
        text = RequestTimeoutError(
            str(pending.target), pending.timeout_ms / 1000, pending.correlation_id
        ).message
        self._deliver_callback(error_callback(pending, text), pending)

    def _deliver_callback(self, env: Envelope, pending: PendingRequest) -> None:
        try:
            self.cell(pending.requester).ref.tell_nowait(env)
        except WactorError as exc:
            self.dead_letters.record(
                str(pending.requester),
                f"callback undeliverable: {exc}",
                sender=str(pending.target),
                kind="callback",
                size=len(env.payload),
                correlation_id=pending.correlation_id,
            )

    # -- components coming and going -------------------------------------------------------------

    async def register(self, cell: ActorCell[Any], cid: ComponentId) -> None:
        """Make a started component reachable: by name in the registry, and on the broker."""
        self.registry.register(cell)
        await self.broker.register(cid, CellEndpoint(cell))

    def forget(self, cid: ComponentId) -> None:
        """Make a component unreachable; its pending requests' replies will drop."""
        self.registry.unregister(str(cid))
        self.correlator.drop_requester(cid)
        if not self._tasks.closed:
            self._tasks.spawn(self.broker.unregister(cid), name=f"unregister:{cid}")

    async def close(self) -> None:
        """Cancel and join the work in flight (answers of guest requests, unregistrations)."""
        await self._tasks.close()


class CellEndpoint:
    """A component actor as the broker's endpoint."""

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell[Any]) -> None:
        self._cell = cell

    def _check(self, env: Envelope) -> None:
        # A closed mailbox means stopped for good (a restart keeps it open): gone, not stopped.
        if self._cell.mailbox.closed:
            raise TargetNotFoundError(str(env.target))

    async def deliver(self, env: Envelope) -> None:
        self._check(env)
        await self._cell.ref.tell(env)

    async def submit(self, env: Envelope) -> asyncio.Future[bytes | None]:
        self._check(env)
        fut: asyncio.Future[bytes | None] = await self._cell.ref.submit(env)
        return fut


def error_callback(pending: PendingRequest, text: str) -> Envelope:
    """The callback envelope that tells a requester its request failed."""
    return Envelope(
        pending.target,
        pending.requester,
        text.encode("utf-8"),
        kind="callback",
        correlation_id=pending.correlation_id,
        reply_to=pending.requester,
        content_type=ERROR_CONTENT_TYPE,
    )
