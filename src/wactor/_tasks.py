"""Owned background tasks: one object creates, tracks and joins them.

Fire-and-forget work (a restart under way, an exit handler, the answer of a guest's request)
outlives the call that starts it, so it cannot live in an ``async with asyncio.TaskGroup()``
block; a failing one must not cancel its siblings either. Whoever starts such work owns a
:class:`TaskOwner`: the task stays referenced while it runs, and the owner's ``close()`` cancels
what is left and waits for it, so nothing outlives its owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["TaskOwner"]

_log = logging.getLogger("wactor.tasks")


class TaskOwner:
    """Creates, tracks and joins the background tasks of one owner."""

    __slots__ = ("_closed", "_name", "_tasks")

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (no new task is started after it)."""
        return self._closed

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        """Run ``coro`` as a task of this owner (refused after :meth:`close`)."""
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self._name}: closed, cannot start {name or 'a task'}")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Owned work reports its own failures; one that escapes is a bug worth a trace.
            _log.error("%s: task %s failed", self._name, task.get_name(), exc_info=task.exception())

    def cancel(self) -> None:
        """Cancel every running task except the caller's own (they finish on their own)."""
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    async def join(self) -> None:
        """Wait until every task but the caller's own has finished."""
        current = asyncio.current_task()
        while True:
            waiting = [t for t in self._tasks if t is not current]
            if not waiting:
                return
            await asyncio.wait(waiting)

    async def close(self) -> None:
        """Start nothing more; cancel what runs and wait for it. Idempotent."""
        self._closed = True
        self.cancel()
        await self.join()
