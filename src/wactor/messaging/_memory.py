"""The in-process broker: the embedded default and the reference for every other backend."""

from __future__ import annotations

import asyncio
import itertools

from wactor._deadline import wait_answer
from wactor._ids import ComponentId
from wactor.errors import RequestTimeoutError, TargetNotFoundError
from wactor.messaging._broker import BrokerStats, Endpoint, TopicHandler
from wactor.messaging._envelope import Envelope
from wactor.messaging._subjects import SubjectPattern, check_subject

__all__ = ["MemoryBroker"]


class _MemorySubscription:
    __slots__ = ("_broker", "_key", "pattern")

    def __init__(self, broker: MemoryBroker, key: int, pattern: str) -> None:
        self._broker = broker
        self._key = key
        self.pattern = pattern

    def cancel(self) -> None:
        self._broker._subscriptions.pop(self._key, None)


class MemoryBroker:
    """Delivers to endpoints registered in this process, synchronously on the event loop."""

    def __init__(self) -> None:
        self._endpoints: dict[ComponentId, Endpoint] = {}
        self._subscriptions: dict[int, tuple[SubjectPattern, TopicHandler]] = {}
        self._keys = itertools.count(1)
        self._sent = 0
        self._requests = 0
        self._published = 0
        self._fanout = 0
        self._undeliverable = 0

    async def open(self) -> None:
        return None

    async def register(self, cid: ComponentId, endpoint: Endpoint) -> None:
        self._endpoints[cid] = endpoint

    async def unregister(self, cid: ComponentId) -> None:
        self._endpoints.pop(cid, None)

    def is_local(self, cid: ComponentId) -> bool:
        return cid in self._endpoints

    async def locate(self, cid: ComponentId) -> bool:
        return cid in self._endpoints

    def _endpoint(self, cid: ComponentId) -> Endpoint:
        endpoint = self._endpoints.get(cid)
        if endpoint is None:
            self._undeliverable += 1
            raise TargetNotFoundError(str(cid))
        return endpoint

    async def send(self, env: Envelope) -> None:
        await self._endpoint(env.target).deliver(env)
        self._sent += 1

    async def submit(self, env: Envelope) -> asyncio.Future[bytes | None]:
        fut = await self._endpoint(env.target).submit(env)
        self._requests += 1
        return fut

    async def request(self, env: Envelope, timeout: float) -> bytes | None:
        fut = await self.submit(env)
        return await wait_answer(
            fut, timeout, lambda: RequestTimeoutError(str(env.target), timeout, env.correlation_id)
        )

    async def publish(self, subject: str, env: Envelope) -> int:
        check_subject(subject)
        self._published += 1
        count = 0
        for pattern, handler in list(self._subscriptions.values()):
            if pattern.matches(subject):
                handler(subject, env)
                count += 1
        self._fanout += count
        return count

    async def subscribe(self, pattern: str, handler: TopicHandler) -> _MemorySubscription:
        parsed = SubjectPattern.parse(pattern)
        key = next(self._keys)
        self._subscriptions[key] = (parsed, handler)
        return _MemorySubscription(self, key, pattern)

    def statistics(self) -> BrokerStats:
        return BrokerStats(
            self._sent, self._requests, self._published, self._fanout, self._undeliverable
        )

    async def close(self) -> None:
        self._endpoints.clear()
        self._subscriptions.clear()
