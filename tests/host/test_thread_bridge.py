"""A host function waiting for the event loop waits no longer than the guest's call may run."""

from __future__ import annotations

import asyncio

import pytest

from conftest import ManifestFactory, guest_binary
from wactor.errors import ExecutionTimeoutError
from wactor.host import Host
from waiting import wait_busy

GRANTS = """
[capabilities.messaging]
send = ["t/**"]
"""


async def test_a_send_outlasting_the_callers_timeout_ends_the_call_and_is_withdrawn(
    host: Host, manifest: ManifestFactory
) -> None:
    probe = guest_binary("probe")
    slow = 'mailbox = 1\nbackpressure = "wait"\n'
    await host.start(manifest("t/slow/0", probe, timeout_ms=20_000, extra=slow))
    await host.start(manifest("t/sender/0", probe, timeout_ms=300, extra=GRANTS))
    sleeping = asyncio.ensure_future(host.request("t/slow/0", b"sleep 3000", timeout=30))
    await wait_busy(host, "t/slow/0")
    await host.send("t/slow/0", b"echo queued")  # the one slot is taken: a send must wait

    with pytest.raises(ExecutionTimeoutError) as fault:
        await host.request("t/sender/0", b"send t/slow/0 late", timeout=30)

    assert str(fault.value) == "t/sender/0: handle-message timed out after 300 ms"
    assert await sleeping == b"slept"
    assert await host.request("t/slow/0", b"echo after", timeout=30) == b"after"
    slow_status = next(s for s in host.components() if str(s.id) == "t/slow/0")
    # the sleep, "echo queued" and "echo after": the withdrawn "late" never arrived
    assert slow_status.actor.processed == 3
