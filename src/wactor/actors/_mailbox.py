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
    """A FIFO of bounded capacity living on one event loop, with one consumer.

    The consumer waits on one future of its own and waiting senders on one each (as
    ``asyncio.Queue`` does), so a message that finds its consumer busy costs an append.
    """

    def __init__(self, owner: str, capacity: int, backpressure: Backpressure = "reject") -> None:
        if capacity < 1:
            raise ValueError("mailbox capacity must be at least 1")
        self.owner = owner
        self.capacity = capacity
        self.backpressure: Backpressure = backpressure
        self._items: collections.deque[T] = collections.deque()
        self._getter: asyncio.Future[None] | None = None  # the consumer, waiting
        self._putters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False
        self._accepted = 0
        self._refused = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def waiting(self) -> bool:
        """Whether the consumer waits for mail now."""
        return self._getter is not None

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
        items = self._items
        if len(items) >= self.capacity:
            self._refused += 1
            raise QueueFullError(self.owner, self.capacity)
        items.append(item)
        self._accepted += 1
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)

    async def put(self, item: T) -> None:
        """Enqueue, applying this mailbox's backpressure policy when it is full."""
        if self.backpressure == "reject":
            self.put_nowait(item)
            return
        while not self._closed and len(self._items) >= self.capacity:
            putter = asyncio.get_running_loop().create_future()
            self._putters.append(putter)
            try:
                await putter
            except BaseException:
                putter.cancel()
                self._wake_putter()  # pass the room this one was given on to the next
                raise
        self.put_nowait(item)

    def push_front(self, items: list[T]) -> None:
        """Put items back at the head in their order (used to keep messages across restarts)."""
        self._items.extendleft(reversed(items))
        if self._items:
            self.wake()

    def take_nowait(self) -> T | None:
        """Take the next item if there is one (``None`` if empty)."""
        if not self._items:
            return None
        item = self._items.popleft()
        if self._putters:
            self._wake_putter()
        return item

    async def get(self) -> T | None:
        """Wait for and take the next item; ``None`` when woken by :meth:`wake` or closed."""
        if not self._items:
            if self._closed:
                return None
            getter = asyncio.get_running_loop().create_future()
            self._getter = getter
            try:
                await getter
            finally:
                if self._getter is getter:
                    self._getter = None
            if not self._items:
                return None
        return self.take_nowait()

    def take_ready(self, limit: int) -> list[T]:
        """Take up to ``limit`` items that are already queued, without waiting."""
        items = self._items
        out: list[T] = []
        while items and len(out) < limit:
            out.append(items.popleft())
        if out and self._putters:
            self._wake_putter(len(out))
        return out

    def _wake_putter(self, room: int = 1) -> None:
        putters = self._putters
        while putters and room:
            putter = putters.popleft()
            if not putter.done():
                putter.set_result(None)
                room -= 1

    def wake(self) -> None:
        """Wake a waiting ``get`` so its owner can look at its state (nothing is taken)."""
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)

    def close(self) -> list[T]:
        """Refuse new messages; wake waiters; return what was still queued (now removed)."""
        self._closed = True
        left = list(self._items)
        self._items.clear()
        self.wake()
        self._wake_putter(len(self._putters))
        return left

    def reopen(self) -> None:
        """Accept messages again (after a restart)."""
        self._closed = False
