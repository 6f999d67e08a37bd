"""A bounded mailbox with a choice of backpressure: the sender waits, or is refused at once."""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from wactor.errors import ActorStoppedError, QueueFullError

__all__ = ["Backpressure", "Mailbox", "MailboxStats"]

T = TypeVar("T")
Backpressure = Literal["wait", "reject"]


@dataclass(frozen=True, slots=True)
class MailboxStats:
    """A snapshot of a mailbox."""

    depth: int
    capacity: int
    accepted: int
    refused: int


class Mailbox(Generic[T]):
    """A FIFO of bounded capacity living on one event loop."""

    def __init__(self, owner: str, capacity: int, backpressure: Backpressure = "reject") -> None:
        if capacity < 1:
            raise ValueError("mailbox capacity must be at least 1")
        self.owner = owner
        self.capacity = capacity
        self.backpressure: Backpressure = backpressure
        self._items: collections.deque[T] = collections.deque()
        self._not_empty = asyncio.Event()
        self._space = asyncio.Event()
        self._closed = False
        self._accepted = 0
        self._refused = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        """Tell whether the mailbox refuses new messages."""
        return self._closed

    def statistics(self) -> MailboxStats:
        """Return depth, capacity and counts of accepted and refused messages."""
        return MailboxStats(len(self._items), self.capacity, self._accepted, self._refused)

    def put_nowait(self, item: T) -> None:
        """Enqueue or raise ``QueueFullError`` at once (``ActorStoppedError`` if closed)."""
        if self._closed:
            raise ActorStoppedError(self.owner)
        if len(self._items) >= self.capacity:
            self._refused += 1
            raise QueueFullError(self.owner, self.capacity)
        self._items.append(item)
        self._accepted += 1
        self._not_empty.set()

    async def put(self, item: T) -> None:
        """Enqueue, applying this mailbox's backpressure policy when it is full."""
        if self.backpressure == "reject":
            self.put_nowait(item)
            return
        while not self._closed and len(self._items) >= self.capacity:
            self._space.clear()
            await self._space.wait()
        self.put_nowait(item)

    def push_front(self, items: list[T]) -> None:
        """Put items back at the head in their order (used to keep messages across restarts)."""
        self._items.extendleft(reversed(items))
        if self._items:
            self._not_empty.set()

    async def get(self) -> T | None:
        """Wait for and take the next item; ``None`` when woken by :meth:`wake` or closed."""
        if not self._items:
            if self._closed:
                return None
            self._not_empty.clear()
            await self._not_empty.wait()
            if not self._items:
                return None
        item = self._items.popleft()
        self._space.set()
        return item

    def take_ready(self, limit: int) -> list[T]:
        """Take up to ``limit`` items that are already queued, without waiting."""
        out: list[T] = []
        while self._items and len(out) < limit:
            out.append(self._items.popleft())
        if out:
            self._space.set()
        return out

    def wake(self) -> None:
        """Wake a waiting ``get`` so its owner can look at its state (nothing is taken)."""
        self._not_empty.set()

    def close(self) -> list[T]:
        """Refuse new messages; wake waiters; return what was still queued (now removed)."""
        self._closed = True
        left = list(self._items)
        self._items.clear()
        self._not_empty.set()
        self._space.set()
        return left

    def reopen(self) -> None:
        """Accept messages again (after a restart)."""
        self._closed = False
