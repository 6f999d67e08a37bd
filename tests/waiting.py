"""Waiting for a condition the tests can observe, instead of sleeping and hoping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from wactor.host import Host


async def wait_until(condition: Callable[[], bool], what: str, *, timeout: float = 30.0) -> None:
    """Poll ``condition`` on the loop until it holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


async def wait_busy(host: Host, component: str) -> None:
    """Wait until ``component`` has taken a message from its mailbox and not finished it."""
    cell = host.registry.lookup(component)
    assert cell is not None, f"{component} is not running"

    def busy() -> bool:  # a message in flight: counted in the actor's depth, not the mailbox's
        return cell.statistics().depth > cell.mailbox.statistics().depth

    await wait_until(busy, f"{component} to be handling a message")


def poll_until(condition: Callable[[], bool], what: str, *, timeout: float = 60.0) -> None:
    """``wait_until`` for tests without a loop (driving ``wactor`` subprocesses)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
