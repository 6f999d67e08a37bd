"""host-services and identity through a real Python guest."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from conftest import ManifestFactory, guest_binary, wat_binary
from wactor.host import Host
from waiting import wait_busy


async def _ask(host: Host, target: str, command: str) -> str:
    reply = await host.request(target, command.encode(), timeout=30)
    assert reply is not None
    return reply.decode()


@pytest.fixture
async def probe(host: Host, manifest: ManifestFactory) -> Host:
    await host.start(manifest("t/probe/0", guest_binary("probe")))
    await host.start(manifest("t/echo/0", wat_binary("echo")))
    return host


async def test_self_id_is_the_hosts_id_for_the_caller(probe: Host) -> None:
    assert await _ask(probe, "t/probe/0", "self-id") == "t/probe/0"


async def test_initialize_ran_before_the_first_message(probe: Host) -> None:
    assert await _ask(probe, "t/probe/0", "init?") == "yes"


async def test_time_functions_agree_with_the_host_clock(probe: Host) -> None:
    before = time.time_ns() // 1_000_000
    millis = int(await _ask(probe, "t/probe/0", "millis"))
    seconds, nanos = (int(x) for x in (await _ask(probe, "t/probe/0", "time")).split())
    after = time.time_ns() // 1_000_000
    assert before <= millis <= after
    assert before // 1000 <= seconds <= after // 1000 + 1
    assert 0 <= nanos < 1_000_000_000


async def test_log_reaches_the_host_log_tagged_with_the_component(
    probe: Host, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="wactor.guest"):
        assert await _ask(probe, "t/probe/0", "log warn disk almost full") == "logged"
    (record,) = [r for r in caplog.records if "disk almost full" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert record.component == "t/probe/0"  # type: ignore[attr-defined]
    assert record.guest_context == {"k": "v"}  # type: ignore[attr-defined]


async def test_list_components_and_metadata(probe: Host) -> None:
    assert set((await _ask(probe, "t/probe/0", "list")).split(",")) == {"t/probe/0", "t/echo/0"}
    assert await _ask(probe, "t/probe/0", "meta t/echo/0") == "t/echo/0 wat-echo 1.0.0 healthy"
    assert await _ask(probe, "t/probe/0", "meta t/probe/0") == "t/probe/0 probe 0.1.0 healthy"
    assert (await _ask(probe, "t/probe/0", "meta t/nobody/0")).startswith("err invalid-state")


async def test_sleep_blocks_only_the_calling_component(probe: Host) -> None:
    sleeper = asyncio.create_task(probe.request("t/probe/0", b"sleep 1500", timeout=30))
    await wait_busy(probe, "t/probe/0")
    assert await probe.request("t/echo/0", b"quick") == b"quick"
    assert not sleeper.done()  # the echo answered while the probe was still asleep
    assert await sleeper == b"slept"


async def test_sleep_past_the_call_deadline_is_a_timeout(
    host: Host, manifest: ManifestFactory
) -> None:
    from wactor.errors import ExecutionTimeoutError

    await host.start(manifest("t/slow/0", guest_binary("probe"), timeout_ms=300))
    started = time.monotonic()
    with pytest.raises(ExecutionTimeoutError):
        await host.request("t/slow/0", b"sleep 20000", timeout=30)
    assert time.monotonic() - started < 15  # bounded by the 300 ms limit, not the 20 s sleep
    assert await _ask(host, "t/slow/0", "echo back") == "back"
