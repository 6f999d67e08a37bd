"""Traps, timeouts and memory hogs are contained: the instance is discarded, the host lives on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import wasmtime

from conftest import WAT_DIR, ManifestFactory, guest_binary, wat_binary
from wactor.errors import ActorStoppedError, ExecutionTimeoutError, ResourceLimitError, TrapError
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

    with pytest.raises(ResourceLimitError) as info:
        await host.request("test/hog/0", b"eat")
    assert info.value.component == "test/hog/0"
    assert info.value.limit == "memory"
    assert str(info.value) == "test/hog/0: memory limit of 4 MiB reached"
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


# -- errors in the user's words: the component once, its WIT export, the manifest's limit --------


async def test_timeout_names_the_export_and_the_manifest_limit(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("acc/adv/0", wat_binary("loop"), timeout_ms=300))

    with pytest.raises(ExecutionTimeoutError) as info:
        await host.request("acc/adv/0", b"spin", timeout=10)
    assert str(info.value) == "acc/adv/0: handle-message timed out after 300 ms"


@pytest.mark.parametrize("memory", ["1MiB", "4MiB"])
async def test_guest_trap_stays_a_trap_worded_without_wrappers(
    host: Host, manifest: ManifestFactory, memory: str
) -> None:
    await host.start(manifest("test/trap/0", wat_binary("trap"), memory=memory))

    with pytest.raises(TrapError) as info:
        await host.request("test/trap/0", b"boom")
    assert not isinstance(info.value, ResourceLimitError)
    assert str(info.value) == (
        "test/trap/0: handle-message trapped: wasm `unreachable` instruction executed"
    )


async def test_a_guest_cannot_pass_its_trap_off_as_a_limit_through_function_names(
    host: Host, manifest: ManifestFactory, tmp_path: Path
) -> None:
    # wasmtime's backtrace names guest functions, and a guest chooses those names
    name = "wactor: wall-clock deadline reached; interrupt; all fuel consumed; out of memory"
    text = (WAT_DIR / "trap.wat").read_text()
    text = text.replace(
        '(func (export "handle-message")', f'(func $"{name}" (export "handle-message")', 1
    )
    wasm = tmp_path / "named-trap.wasm"
    wasm.write_bytes(bytes(wasmtime.wat2wasm(text)))
    await host.start(manifest("test/named/0", wasm))

    with pytest.raises(TrapError) as info:
        await host.request("test/named/0", b"boom")
    assert type(info.value) is TrapError
    assert str(info.value) == (
        "test/named/0: handle-message trapped: wasm `unreachable` instruction executed"
    )


async def test_python_guest_exception_surfaces_its_own_last_error_line(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("test/py/0", guest_binary("probe"), memory="64MiB"))

    with pytest.raises(TrapError) as info:
        await host.request("test/py/0", b"crash", timeout=30)
    assert not isinstance(info.value, ResourceLimitError)
    assert str(info.value) == (
        "test/py/0: handle-message trapped: RuntimeError: probe crash requested"
    )
    assert await host.request("test/py/0", b"echo fresh", timeout=30) == b"fresh"


async def test_python_guest_missing_module_is_named_in_the_fault(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("acc/f/0", guest_binary("faulty"), memory="64MiB"))

    with pytest.raises(TrapError) as info:
        await host.request("acc/f/0", b"import wactor_no_such_module", timeout=30)
    assert str(info.value) == (
        "acc/f/0: handle-message trapped: "
        "ModuleNotFoundError: No module named 'wactor_no_such_module'"
    )


async def test_guest_error_line_is_found_after_much_stderr_noise(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("acc/f/0", guest_binary("faulty"), memory="64MiB"))

    with pytest.raises(TrapError) as info:
        await host.request("acc/f/0", b"noise 300000 the \x1b[2Jlast words", timeout=30)
    assert str(info.value) == "acc/f/0: handle-message trapped: ValueError: the ?[2Jlast words"


async def test_python_guest_growing_to_its_cap_hits_the_memory_limit(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("acc/f/0", guest_binary("faulty"), memory="32MiB"))

    assert await host.request("acc/f/0", b"hog 4", timeout=30) == b"holding 4 MiB"
    with pytest.raises(ResourceLimitError) as info:
        await host.request("acc/f/0", b"hog 64", timeout=30)
    assert str(info.value) == "acc/f/0: memory limit of 32 MiB reached"
    assert await host.request("acc/f/0", b"echo fresh", timeout=30) == b"fresh"


async def test_python_guest_allocating_past_its_cap_hits_the_memory_limit(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("test/pyhog/0", guest_binary("probe"), memory="32MiB"))

    with pytest.raises(ResourceLimitError) as info:
        await host.request("test/pyhog/0", b"bign 100000000", timeout=30)
    assert info.value.limit == "memory"
    assert str(info.value) == "test/pyhog/0: memory limit of 32 MiB reached"
    assert await host.request("test/pyhog/0", b"bign 3", timeout=30) == b"\0\0\0"


async def test_a_fault_relayed_by_the_supervisor_names_the_component_once(
    host: Host, manifest: ManifestFactory
) -> None:
    extra = "[supervision]\nmax-restarts = 0\nwithin-seconds = 60\n"
    await host.start(manifest("t/adv/0", wat_binary("loop"), timeout_ms=200, extra=extra))

    # both are queued before the first call ends; its fault stops the component for good
    first = asyncio.ensure_future(host.request("t/adv/0", b"spin", timeout=30))
    second = asyncio.ensure_future(host.request("t/adv/0", b"spin", timeout=30))
    with pytest.raises(ExecutionTimeoutError) as timed_out:
        await first
    with pytest.raises(ActorStoppedError) as stopped:
        await second
    for error in (timed_out.value, stopped.value):
        assert str(error).count("t/adv/0") == 1, str(error)
        assert "fast:" not in str(error)
    assert "handle-message timed out after 200 ms" in str(stopped.value)
    crashed = await host.wait_event("crashed", "t/adv/0")
    assert crashed.reason == "handle-message timed out after 200 ms"  # shown after the id
