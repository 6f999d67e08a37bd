"""The broker seam: how envelopes travel between components, wherever they run.

A host registers an :class:`Endpoint` per local component and sends everything through its
broker. The in-process :class:`~wactor.messaging.MemoryBroker` delivers to local endpoints only;
a lattice broker (NATS) also reaches components of other hosts, with the same semantics:

* ``send`` is fire-and-forget; a refusal that can be known at once (no such target, full
  mailbox of a local target) raises at once; FIFO per sender→receiver pair;
* ``submit`` hands a request over and returns a future of its reply (a local refusal raises
  at once; the reply future fails with the target's error, never hangs past its timeout when
  awaited through ``request``);
* ``publish`` delivers a copy to every subscription whose pattern matches the subject;
* envelopes are plain data (the NATS wire form round-trips every field), so a backend that
  serializes loses nothing; the local path skips serialization.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from wactor._ids import ComponentId
from wactor.messaging._envelope import Envelope

__all__ = ["Broker", "BrokerStats", "Endpoint", "Subscription", "TopicHandler"]

TopicHandler = Callable[[str, Envelope], None]
"""Called with (subject, envelope) for every published message a subscription matches."""


class Endpoint(Protocol):
    """A local component as the broker sees it (the host implements it over the actor)."""

    async def deliver(self, env: Envelope) -> None:
        """Enqueue a message under the target's backpressure policy (refuse or wait)."""
        ...

    async def submit(self, env: Envelope) -> asyncio.Future[bytes | None]:
        """Enqueue a request the same way; return the future of its reply."""
        ...


class Subscription(Protocol):
    """A live topic subscription."""

    @property
    def pattern(self) -> str: ...

    def cancel(self) -> None:
        """Stop receiving; idempotent."""
        ...


@dataclass(frozen=True, slots=True)
class BrokerStats:
    """Counts kept by a broker."""

    sent: int
    requests: int
    published: int
    delivered_to_subscribers: int
    undeliverable: int
    rejected: int = 0
    """Messages from peers dropped unseen: replies that match no request in flight (late, or
    forged), callbacks that match no request of this host, malformed header blocks."""


class Broker(Protocol):
    """Moves envelopes between components."""

    async def open(self) -> None:
        """Connect (if remote) and get ready; idempotent."""
        ...

    async def register(self, cid: ComponentId, endpoint: Endpoint) -> None:
        """Make a local component reachable."""
        ...

    async def unregister(self, cid: ComponentId) -> None:
        """Make a local component unreachable; idempotent."""
        ...

    def is_local(self, cid: ComponentId) -> bool:
        """Tell whether ``cid`` runs in this host."""
        ...

    async def locate(self, cid: ComponentId) -> bool:
        """Tell whether ``cid`` is reachable at all (here or, for a lattice, elsewhere)."""
        ...

    async def send(self, env: Envelope) -> None:
        """Deliver fire-and-forget to ``env.target``."""
        ...

    async def submit(self, env: Envelope) -> asyncio.Future[bytes | None]:
        """Hand a request to ``env.target``; return the future of its reply."""
        ...

    async def request(self, env: Envelope, timeout: float) -> bytes | None:
        """Send a request and wait for its reply (``RequestTimeoutError`` after ``timeout``)."""
        ...

    async def publish(self, subject: str, env: Envelope) -> int:
        """Deliver to every matching subscription; return how many local handlers got it."""
        ...

    async def subscribe(self, pattern: str, handler: TopicHandler) -> Subscription:
        """Call ``handler`` for every message published on a subject matching ``pattern``."""
        ...

    def statistics(self) -> BrokerStats:
        """Return counts of what went through."""
        ...

    async def close(self) -> None:
        """Disconnect; idempotent."""
        ...
