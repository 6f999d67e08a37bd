"""Delivery guarantees between real components: exactly once, per-sender order, metadata,
mixed kinds, topics, payload limits, late replies, dead letters."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from cli.test_call import wactor
from conftest import ManifestFactory, guest_binary, wat_binary
from wactor.errors import GuestError, InvalidMessageError, TrapError
from wactor.host import Host

GRANTS = """
[capabilities.messaging]
send = ["t/**"]
request = ["t/**"]
broadcast = ["t/**"]

[capabilities.storage]
quota = "1MiB"
"""


async def _ask(host: Host, target: str, command: str, timeout: float = 60) -> str:
    reply = await host.request(target, command.encode(), timeout=timeout)
    assert reply is not None
    return reply.decode()


async def _log(host: Host, target: str, want: int) -> list[str]:
    for _ in range(2000):
        text = await _ask(host, target, "get log")
        items = [] if text == "none" else text.split(",")[:-1]
        if len(items) >= want:
            return items
        await asyncio.sleep(0.01)
    raise AssertionError(f"{target} logged {len(items)} of {want}")


@pytest.fixture
async def net(host: Host, manifest: ManifestFactory) -> Host:
    probe = guest_binary("probe")
    for name in ("col", "s0", "s1", "s2", "s3"):
        await host.start(manifest(f"t/{name}/0", probe, extra=GRANTS, timeout_ms=10_000))
    return host


async def test_concurrent_senders_deliver_exactly_once_in_per_sender_order(net: Host) -> None:
    per_sender = 250
    jobs = [
        net.request(f"t/s{k}/0", f"send t/col/0 push {k}-{i}".encode(), timeout=120)
        for i in range(per_sender)
        for k in range(4)
    ]
    assert set(await asyncio.gather(*jobs)) == {b"ok"}
    items = await _log(net, "t/col/0", 4 * per_sender)
    assert len(items) == len(set(items)) == 1000  # each exactly once
    for k in range(4):
        mine = [int(x.split("-")[1]) for x in items if x.startswith(f"{k}-")]
        assert mine == list(range(per_sender))  # in the order it was sent


async def test_metadata_is_filled_by_the_host_not_the_guest(net: Host) -> None:
    before = time.time()
    direct = await net.request("t/col/0", b"whoami", content_type="text/plain")
    assert direct is not None
    fields = dict(f.split("=", 1) for f in direct.decode().split())
    assert fields["sender"] == "wactor/host/0"
    assert fields["reply-to"] == "wactor/host/0"
    assert fields["ct"] == "text/plain"
    assert fields["corr"] != "none"
    assert before - 1 <= float(fields["ts"]) <= time.time() + 1

    correlation = await _ask(net, "t/s0/0", "request t/col/0 5000 whoami")
    for _ in range(500):
        lines = (await _ask(net, "t/s0/0", "callbacks")).splitlines()
        if lines:
            break
        await asyncio.sleep(0.01)
    (line,) = lines
    assert line.startswith(f"{correlation} ok ")
    seen = dict(f.split("=", 1) for f in line.split(" ", 2)[2].split())
    assert seen["sender"] == "t/s0/0"  # set by the host from the caller's identity
    assert seen["reply-to"] == "t/s0/0"
    assert seen["corr"] == correlation


async def test_mixed_message_kinds_interleave_and_all_arrive(net: Host) -> None:
    await net.subscribe("orders.*", "t/col/0")
    await asyncio.gather(
        net.send("t/col/0", b"push send"),
        net.request("t/s1/0", b"request t/col/0 5000 push request"),
        net.request("t/s2/0", b"broadcast t/col/0 push broadcast"),
        net.publish("orders.created", b"push publish"),
        net.request("t/col/0", b"push ask"),
    )
    items = await _log(net, "t/col/0", 5)
    assert sorted(items) == ["ask", "broadcast", "publish", "request", "send"]
    callbacks = await _ask(net, "t/s1/0", "callbacks")
    assert callbacks.endswith(" ok ok")  # the reply to the request came back as a callback


async def test_topic_patterns_select_subscribers(net: Host) -> None:
    seen: list[tuple[str, bytes]] = []
    await net.subscribe("orders.*.created", lambda s, env: seen.append((s, env.payload)))
    await net.subscribe("orders.#", "t/col/0")
    assert await net.publish("orders.eu.created", b"push a") == 2
    assert await net.publish("orders.eu.paid", b"push b") == 1
    assert await net.publish("billing.eu.created", b"push c") == 0
    assert seen == [("orders.eu.created", b"push a")]
    assert await _log(net, "t/col/0", 2) == ["a", "b"]
    with pytest.raises(InvalidMessageError):
        await net.publish("orders..bad", b"x")
    with pytest.raises(InvalidMessageError):
        await net.subscribe("orders.#.x", "t/col/0")


async def test_payload_over_the_limit_is_refused(host_config, manifest: ManifestFactory) -> None:  # type: ignore[no-untyped-def]
    config = dataclasses.replace(host_config, max_payload_bytes=1024)
    async with Host.open(config) as host:
        await host.start(manifest("t/echo/0", wat_binary("echo")))
        await host.start(manifest("t/p/0", guest_binary("probe"), extra=GRANTS))
        with pytest.raises(InvalidMessageError):
            await host.request("t/echo/0", b"x" * 1025)
        assert await host.request("t/echo/0", b"x" * 1024) == b"x" * 1024
        reply = await _ask(host, "t/p/0", "sendn t/echo/0 1025")
        assert reply.startswith("err invalid-message")


async def test_late_reply_is_dropped_and_counted(net: Host) -> None:
    correlation = await _ask(net, "t/s0/0", "request t/col/0 50 sleep 400")
    for _ in range(500):
        lines = (await _ask(net, "t/s0/0", "callbacks")).splitlines()
        if lines:
            break
        await asyncio.sleep(0.01)
    assert lines[0].startswith(f"{correlation} err ")
    for _ in range(500):
        if net.correlator.statistics().dropped_late == 1:
            break
        await asyncio.sleep(0.01)
    assert net.correlator.statistics().dropped_late == 1
    assert len((await _ask(net, "t/s0/0", "callbacks")).splitlines()) == 1  # only the error


async def test_dead_letters_are_queryable_from_the_cli(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("t/trap/0", wat_binary("trap")))
    with pytest.raises(TrapError):
        await host.request("t/trap/0", b"boom")
    config = host.config.state_dir.parent / "wactor.toml"
    config.write_text(f'state-dir = "{host.config.state_dir}"\n')
    shown = wactor("dead-letters", "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    (line,) = shown.stdout.splitlines()
    assert "t/trap/0 request from wactor/host/0 (4 B)" in line
    assert "unreachable" in line


async def test_guest_publishes_through_the_topics_extension(
    host: Host, manifest: ManifestFactory
) -> None:
    grants = (
        '[capabilities.messaging]\npublish = ["wat.*"]\n\n[capabilities.storage]\nquota = "1MiB"\n'
    )
    await host.start(manifest("t/pub/0", wat_binary("publisher"), extra=grants))
    await host.start(manifest("t/col/0", guest_binary("probe"), extra=GRANTS))
    seen: list[tuple[str, bytes]] = []
    await host.subscribe("wat.#", lambda subject, env: seen.append((subject, env.payload)))
    await host.subscribe("wat.events", "t/col/0")
    assert await host.request("t/pub/0", b"push from-a-guest") is None
    assert seen == [("wat.events", b"push from-a-guest")]
    assert await _log(host, "t/col/0", 1) == ["from-a-guest"]
    assert host.audit.query(component="t/pub/0", denied_only=True) == []


async def test_publishing_outside_the_granted_subjects_is_denied(
    host: Host, manifest: ManifestFactory
) -> None:
    grants = '[capabilities.messaging]\npublish = ["other.*"]\n'
    await host.start(manifest("t/pub/0", wat_binary("publisher"), extra=grants))
    with pytest.raises(GuestError) as info:
        await host.request("t/pub/0", b"x")
    assert info.value.detail == "publish failed"
    (entry,) = host.audit.query(component="t/pub/0", denied_only=True)
    assert entry.action == "messaging.publish"
    assert entry.target == "wat.events"
