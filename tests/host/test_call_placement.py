"""Short calls run on the loop's thread, long ones on workers; an overstay is sent back."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conftest import ManifestFactory, guest_binary, wat_binary, write_host_config
from wactor.errors import ConfigError, ManifestError
from wactor.host import Host, HostConfig, load_host_config
from wactor.host._placement import PROMOTE_AFTER, CallPlacement, PlacementStats
from wactor.security import load_manifest
from waiting import wait_busy, wait_until


def _placement(host: Host, cid: str) -> PlacementStats:
    (status,) = [s for s in host.components() if str(s.id) == cid]
    return status.placement


async def _until_inline(host: Host, cid: str, payload: bytes = b"x", *, echo: bool = True) -> None:
    """Send fast requests until the component runs its calls on the loop's thread."""
    for _ in range(2000):
        reply = await host.request(cid, payload)
        if echo:
            assert reply in (payload, None)
        if _placement(host, cid).inline:
            return
    pytest.fail(f"{cid} never ran its calls inline")


async def test_a_component_with_short_calls_runs_them_on_the_loop(
    host_config: HostConfig, manifest: ManifestFactory
) -> None:
    # A slice of 50 ms: a busy machine that preempts a call of a few µs for a few ms must not
    # send it back to workers (with the default 1 ms it may, for a while, many times over).
    config = dataclasses.replace(
        host_config, limits=dataclasses.replace(host_config.limits, inline_slice_us=50_000)
    )
    async with Host.open(config) as host:
        await host.start(manifest("t/echo/0", wat_binary("echo")))
        await _until_inline(host, "t/echo/0")
        for i in range(5000):
            assert await host.request("t/echo/0", b"n%d" % i) == b"n%d" % i
            if _placement(host, "t/echo/0").inline_calls >= 50:
                break
        (node,) = host.snapshot()["tree"]["children"]
        assert node["inline_calls"] >= 50


async def test_an_inline_call_that_overstays_sends_the_component_back_to_workers(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("t/pacer/0", wat_binary("pacer")))
    await _until_inline(host, "t/pacer/0")
    before = _placement(host, "t/pacer/0").overstays
    assert await host.request("t/pacer/0", b"s") == b"s"  # tens of ms of computing
    placed = _placement(host, "t/pacer/0")
    assert placed.overstays == before + 1
    assert not placed.inline
    inline_before = placed.inline_calls
    for _ in range(PROMOTE_AFTER - 1):  # fast again: it must earn its place on workers first
        assert await host.request("t/pacer/0", b"x") == b"x"
    assert _placement(host, "t/pacer/0").inline_calls == inline_before
    # the others never noticed: an echo beside it still answers
    await host.start(manifest("t/echo/0", wat_binary("echo")))
    assert await host.request("t/echo/0", b"ok") == b"ok"


async def test_a_manifest_can_keep_its_calls_on_workers(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("t/echo/0", wat_binary("echo"), extra='execution = "worker"'))
    for _ in range(200):
        assert await host.request("t/echo/0", b"x") == b"x"
    placed = _placement(host, "t/echo/0")
    assert not placed.allowed
    assert placed.inline_calls == 0
    assert placed.worker_calls >= 200


async def test_the_operator_can_turn_inlining_off(
    host_config: HostConfig, manifest: ManifestFactory
) -> None:
    limits = dataclasses.replace(host_config.limits, inline_slice_us=0)
    async with Host.open(dataclasses.replace(host_config, limits=limits)) as host:
        await host.start(manifest("t/echo/0", wat_binary("echo")))
        for _ in range(200):
            assert await host.request("t/echo/0", b"x") == b"x"
        placed = _placement(host, "t/echo/0")
        assert placed.inline_calls == 0


async def test_an_inline_send_into_a_full_waiting_mailbox_loses_nothing(
    host: Host, manifest: ManifestFactory
) -> None:
    # sender.wat forwards every payload to test/echo/0: here a pacer on worker threads with a
    # one-slot mailbox whose policy makes senders wait
    extra = 'mailbox = 1\nbackpressure = "wait"\nexecution = "worker"'
    await host.start(manifest("test/echo/0", wat_binary("pacer"), extra=extra))
    grant = '[capabilities.messaging]\nsend = ["test/echo/0"]'
    await host.start(manifest("t/sender/0", wat_binary("sender"), extra=grant))
    await _until_inline(host, "t/sender/0")

    def processed(cid: str) -> int:
        (status,) = [s for s in host.components() if str(s.id) == cid]
        return status.actor.processed

    forwarded = processed("t/sender/0")
    await wait_until(lambda: processed("test/echo/0") == forwarded, "the warm-up handled")
    await host.send("test/echo/0", b"ssss")  # keeps the pacer busy for a while
    await wait_busy(host, "test/echo/0")
    await host.send("test/echo/0", b"x")  # its one slot: full
    # the sender's inline send finds the mailbox full: it is accepted and waits for room
    assert await host.request("t/sender/0", b"late") is None
    assert not _placement(host, "t/sender/0").inline  # back to workers, where senders wait
    await wait_until(
        lambda: processed("test/echo/0") == forwarded + 3, "the waiting send delivered"
    )
    assert host.dead_letters.entries() == []


def test_the_slice_and_the_execution_key_are_checked(tmp_path: Path) -> None:
    bad = write_host_config(tmp_path, [], extra="\n[limits]\ninline-slice-us = -1")
    with pytest.raises(ConfigError, match="inline-slice-us"):
        load_host_config(bad)
    path = tmp_path / "c" / "component.toml"
    path.parent.mkdir()
    wasm = wat_binary("echo")
    path.write_text(
        f'[component]\nid = "t/echo/0"\nwasm = "{wasm}"\nversion = "1.0.0"\n\n'
        '[resources]\nexecution = "inline"\n'
    )
    with pytest.raises(ManifestError, match="execution"):
        load_manifest(path)


def test_the_back_off_grows_with_each_overstay_and_with_its_length() -> None:
    now = [0.0]
    placement = CallPlacement(1000)
    placement._clock = lambda: now[0]

    def overstay(seconds: float, cpu: float, *, blocked: bool = False) -> float:
        for _ in range(8):
            placement.ran_on_worker(0.0001)
        assert placement.inline
        placement.ran_inline(seconds, cpu, blocked=blocked)
        assert not placement.inline
        back = placement.statistics().back_off_s
        now[0] += back
        return back

    # 1.1 ms of computing: 50 ms, 100, 200, 400 ... but never under 100 x 1.1 ms
    backs = [overstay(0.0011, 0.0011) for _ in range(4)]
    assert backs == pytest.approx([0.11, 0.11, 0.2, 0.4])
    # a long stall costs a hundred times its length
    assert overstay(0.02, 0.0001, blocked=True) == pytest.approx(2.0)  # slept
    # good behaviour forgives: 20,000 inline calls within the slice take two strikes off
    for _ in range(8):
        placement.ran_on_worker(0.0001)
    for _ in range(2 * 10_000):
        placement.ran_inline(0.0001, 0.0001)
    assert overstay(0.0011, 0.0011) == pytest.approx(0.4)
    assert placement.overstays == 6
    # a call over half the slice (but within it) just sends it back to earn its place again
    for _ in range(8):
        placement.ran_on_worker(0.0001)
    placement.ran_inline(0.0007, 0.0007)
    assert not placement.inline
    assert placement.overstays == 6
    # preempted by the machine (neither computing nor blocked): no strike, a pause of 10 times
    # its length
    for _ in range(8):
        placement.ran_on_worker(0.0001)
    placement.ran_inline(0.02, 0.0001)
    assert not placement.inline
    assert placement.overstays == 6
    assert placement.statistics().back_off_s == pytest.approx(0.2)
    # blocked as well: an overstay
    now[0] += 1
    assert overstay(0.0011, 0.0001, blocked=True) == pytest.approx(0.8)
    assert placement.overstays == 7


async def test_a_component_that_keeps_messaging_itself_does_not_starve_the_others(
    host: Host, manifest: ManifestFactory
) -> None:
    # sender.wat forwards every payload to test/echo/0: named so, it sends to itself, each of
    # its calls queueing its next message, at up to 100,000 messages/s
    extra = 'message-rate = 100000\n[capabilities.messaging]\nsend = ["test/echo/0"]'
    await host.start(manifest("test/echo/0", wat_binary("sender"), extra=extra))
    await host.start(manifest("t/echo/0", wat_binary("echo")))
    await _until_inline(host, "test/echo/0")  # each of these starts a chain of its own

    def looper_processed() -> int:
        (status,) = [s for s in host.components() if str(s.id) == "test/echo/0"]
        return status.actor.processed

    start = looper_processed()
    for i in range(100):  # answered while the chains run
        assert await host.request("t/echo/0", b"%d" % i) == b"%d" % i
    assert looper_processed() > start  # it did keep running meanwhile


async def test_a_guest_that_sleeps_is_never_inlined_again(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("t/probe/0", guest_binary("probe")))
    await _until_inline(host, "t/probe/0", b"millis", echo=False)
    before = _placement(host, "t/probe/0").overstays
    assert await host.request("t/probe/0", b"sleep 30") == b"slept"  # it blocked the loop once
    placed = _placement(host, "t/probe/0")
    assert not placed.allowed
    assert not placed.inline
    assert placed.overstays == before + 1  # a blocking call past the slice
    inline_calls = placed.inline_calls
    for _ in range(2 * PROMOTE_AFTER):
        await host.request("t/probe/0", b"millis")
    assert _placement(host, "t/probe/0").inline_calls == inline_calls
