"""Messaging host functions between real components: send, request → callback, broadcast."""

from __future__ import annotations

import asyncio

import pytest

from conftest import ManifestFactory, guest_binary, wat_binary
from wactor.host import Host
from waiting import wait_busy, wait_until

GRANTS = """
[capabilities.messaging]
send = ["t/**"]
request = ["t/**"]
broadcast = ["t/*/*"]

[capabilities.storage]
quota = "64KiB"
"""


async def _ask(host: Host, target: str, command: str) -> str:
    reply = await host.request(target, command.encode(), timeout=30)
    assert reply is not None
    return reply.decode()


async def _callbacks(host: Host, target: str, count: int) -> list[str]:
    """Poll the probe until it has seen ``count`` callbacks (each poll is a real message)."""
    for _ in range(500):
        text = await _ask(host, target, "callbacks")
        lines = text.splitlines() if text else []
        if len(lines) >= count:
            return lines
        await asyncio.sleep(0.01)
    raise AssertionError(f"{target} saw {lines}, wanted {count} callbacks")


@pytest.fixture
async def net(host: Host, manifest: ManifestFactory) -> Host:
    probe = guest_binary("probe")
    await host.start(manifest("t/alice/0", probe, extra=GRANTS))
    await host.start(manifest("t/bob/0", probe, extra=GRANTS))
    await host.start(manifest("t/echo/0", wat_binary("echo")))
    await host.start(manifest("t/loop/0", wat_binary("loop"), timeout_ms=3000))
    await host.start(manifest("u/other/0", wat_binary("echo")))
    return host


async def test_request_reply_arrives_in_handle_callback(net: Host) -> None:
    correlation = await _ask(net, "t/alice/0", "request t/echo/0 2000 ping")
    assert len(correlation) >= 16
    (line,) = await _callbacks(net, "t/alice/0", 1)
    assert line == f"{correlation} ok ping"


async def test_request_between_two_python_guests(net: Host) -> None:
    correlation = await _ask(net, "t/alice/0", "request t/bob/0 5000 self-id")
    (line,) = await _callbacks(net, "t/alice/0", 1)
    assert line == f"{correlation} ok t/bob/0"


async def test_request_timeout_delivers_an_error_callback_and_late_reply_is_dropped(
    net: Host,
) -> None:
    correlation = await _ask(net, "t/alice/0", "request t/loop/0 100 spin")
    (line,) = await _callbacks(net, "t/alice/0", 1)
    assert line.startswith(f"{correlation} err ")
    assert "no reply within 0.1s" in line
    stats = net.correlator.statistics()
    assert stats.timed_out == 1


async def test_cancelled_request_gets_no_callback(net: Host) -> None:
    correlation = await _ask(net, "t/alice/0", "request t/loop/0 10000 spin")
    assert await _ask(net, "t/alice/0", f"cancel {correlation}") == "ok"
    assert net.correlator.statistics().cancelled == 1
    assert (await _ask(net, "t/alice/0", f"cancel {correlation}")).startswith("err invalid-message")
    # The target's call ends (its 3 s limit) and fails; that outcome must be dropped, not
    # delivered to alice. Wait until it has reached the correlator, then ask alice.
    await net.wait_event("restarted", "t/loop/0")
    await wait_until(
        lambda: net.correlator.statistics().dropped_late == 1, "the cancelled outcome to drop"
    )
    assert await _ask(net, "t/alice/0", "callbacks") == ""


async def test_request_to_an_unknown_target_fails_at_once(net: Host) -> None:
    assert await _ask(net, "t/alice/0", "request t/ghost/0 100 hi") == (
        "err target-not-found t/ghost/0"
    )


async def test_messaging_outside_the_granted_patterns_is_denied(net: Host) -> None:
    reply = await _ask(net, "t/alice/0", "request u/other/0 100 hi")
    assert reply.startswith("err delivery-failed denied:")
    assert "not granted" in reply
    reply = await _ask(net, "t/alice/0", "send u/other/0 hi")
    assert reply.startswith("err delivery-failed denied:")


async def test_send_to_a_full_mailbox_is_the_guests_queue_full_err(
    net: Host, manifest: ManifestFactory
) -> None:
    jam = 'mailbox = 1\nbackpressure = "reject"'
    await net.start(manifest("t/jam/0", wat_binary("loop"), timeout_ms=3000, extra=jam))
    await net.send("t/jam/0", b"spin")
    await wait_busy(net, "t/jam/0")  # spinning: its one mailbox slot is free again
    await net.send("t/jam/0", b"spin")  # takes the slot
    assert await _ask(net, "t/alice/0", "send t/jam/0 hi") == "err queue-full"


async def test_send_reaches_the_target_component(net: Host) -> None:
    # alice tells bob (fire-and-forget) to store something; bob then has it.
    assert await _ask(net, "t/alice/0", "send t/bob/0 set from-alice yes") == "ok"
    for _ in range(500):
        if await _ask(net, "t/bob/0", "get from-alice") == "yes":
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the send never reached bob")


async def test_broadcast_with_a_missing_target_delivers_to_the_others(net: Host) -> None:
    reply = await _ask(net, "t/alice/0", "broadcast t/bob/0,t/ghost/0,t/echo/0 set b 1")
    assert reply == "err target-not-found t/ghost/0"
    for _ in range(500):
        if await _ask(net, "t/bob/0", "get b") == "1":
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("bob never got the broadcast")
    # the echo got its copy too: a request queued behind it is answered only after it
    assert await net.request("t/echo/0", b"marker") == b"marker"
    assert net.components()[2].actor.processed >= 2


async def test_guest_cannot_message_without_capability(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("t/mute/0", guest_binary("probe")))
    await host.start(manifest("t/echo/0", wat_binary("echo")))
    assert (await _ask(host, "t/mute/0", "send t/echo/0 hi")).startswith(
        "err delivery-failed denied"
    )


async def test_a_guest_request_cannot_outlast_the_hosts_longest_call(net: Host) -> None:
    # The timeout bounds how long a correlation stays pending: a guest asking for a day (or
    # u64::MAX) could pile up requests that never end.
    ceiling = net.config.limits.max_timeout_ms
    reply = await _ask(net, "t/alice/0", f"request t/echo/0 {ceiling + 1} hi")
    assert reply.startswith("err invalid-message")
    assert f"max-timeout-ms of its [limits] is {ceiling}" in reply
    assert net.correlator.statistics().pending == 0
    correlation = await _ask(net, "t/alice/0", f"request t/echo/0 {ceiling} ok")
    (line,) = await _callbacks(net, "t/alice/0", 1)
    assert line == f"{correlation} ok ok"
