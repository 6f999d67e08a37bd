"""A slow component with a small mailbox under a fast sender: refused or slowed, never dropped."""

from __future__ import annotations

import asyncio

from conftest import ManifestFactory, guest_binary
from wactor.errors import QueueFullError
from wactor.host import Host

SENT = 40


async def _flood(host: Host, target: str) -> list[bytes | BaseException | None]:
    return await asyncio.gather(
        *(host.request(target, b"sleep 5", timeout=120) for _ in range(SENT)),
        return_exceptions=True,
    )


async def test_reject_policy_refuses_at_once_and_loses_nothing(
    host: Host, manifest: ManifestFactory
) -> None:
    extra = 'mailbox = 4\nbackpressure = "reject"'
    await host.start(manifest("t/slow/0", guest_binary("probe"), extra=extra))
    results = await _flood(host, "t/slow/0")
    refused = [r for r in results if isinstance(r, QueueFullError)]
    served = [r for r in results if r == b"slept"]
    assert len(refused) + len(served) == SENT  # every message accounted for
    assert refused, "a 4-slot mailbox cannot take 40 messages at once"
    assert all(r.capacity == 4 for r in refused)
    (status,) = host.components()
    assert status.actor.refused == len(refused)
    assert status.actor.processed == len(served)


async def test_wait_policy_slows_the_sender_and_delivers_everything(
    host: Host, manifest: ManifestFactory
) -> None:
    extra = 'mailbox = 4\nbackpressure = "wait"'
    await host.start(manifest("t/slow/0", guest_binary("probe"), extra=extra))
    depths: list[int] = []

    async def watch() -> None:
        while True:
            depths.append(host.components()[0].actor.depth)
            await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch())
    results = await _flood(host, "t/slow/0")
    watcher.cancel()
    assert results == [b"slept"] * SENT
    # the mailbox, plus at most one batch taken from it and being handled
    assert max(depths) <= 4 + 4
    (status,) = host.components()
    assert status.actor.refused == 0
    assert status.actor.processed == SENT
