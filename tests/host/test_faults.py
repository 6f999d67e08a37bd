"""Traps, timeouts and memory hogs are contained: the instance is discarded, the host lives on."""

from __future__ import annotations

import pytest

from conftest import ManifestFactory, wat_binary
from wactor.errors import ExecutionTimeoutError, ResourceLimitError, TrapError
from wactor.host import Host


async def test_infinite_loop_is_stopped_at_timeout_and_host_keeps_serving(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("test/loop/0", wat_binary("loop"), timeout_ms=200))
    await host.start(manifest("test/echo/0", wat_binary("echo")))

    with pytest.raises(ExecutionTimeoutError) as info:
        await host.request("test/loop/0", b"spin", timeout=10)
    assert info.value.timeout_ms == 200
    assert info.value.component == "test/loop/0"
    assert "200 ms" in str(info.value)
    assert "\n" not in str(info.value)

    assert await host.request("test/echo/0", b"still here") == b"still here"
    await host.wait_event("restarted", "test/loop/0")
    stats = {s.id.name: s.actor for s in host.components()}
    assert stats["loop"].restarts == 1
    assert stats["loop"].failed == 1


async def test_trap_discards_instance_and_next_message_gets_a_fresh_one(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("test/trap/0", wat_binary("trap")))

    with pytest.raises(TrapError) as info:
        await host.request("test/trap/0", b"boom")
    assert "unreachable" in str(info.value)
    assert "\n" not in str(info.value)  # one line, no wasm backtrace
    assert await host.request("test/trap/0", b"after") == b"after"
    await host.wait_event("restarted", "test/trap/0")
    (status,) = host.components()
    assert status.actor.restarts == 1
    letters = host.dead_letters.entries("test/trap/0")
    assert len(letters) == 1
    assert letters[0].size == 4


async def test_memory_hog_hits_manifest_cap_and_is_contained(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("test/hog/0", wat_binary("memhog"), memory="4MiB"))

    with pytest.raises((ResourceLimitError, TrapError)) as info:
        await host.request("test/hog/0", b"eat")
    assert info.value.component == "test/hog/0"
    assert await host.request("test/hog/0", b"small") == b"small"


async def test_fuel_budget_stops_a_busy_loop(host: Host, manifest: ManifestFactory) -> None:
    path = manifest("test/fuel/0", wat_binary("loop"), timeout_ms=60_000)
    path.write_text(
        path.read_text().replace("timeout-ms = 60000", "timeout-ms = 60000\nfuel = 5_000_000")
    )
    await host.start(path)

    with pytest.raises(ResourceLimitError) as info:
        await host.request("test/fuel/0", b"spin", timeout=30)
    assert info.value.limit == "fuel"
