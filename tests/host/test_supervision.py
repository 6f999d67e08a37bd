"""OTP supervision of real components: strategies, restart types, intensity, backoff, health."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest

from conftest import ManifestFactory, guest_binary, wat_binary
from wactor.actors import SupervisorSpec
from wactor.errors import ActorStoppedError, TargetNotFoundError, TrapError, WactorError
from wactor.host import Host, HostConfig, HostSupervision

FAST = (
    '[supervision]\nrestart = "{restart}"\nmax-restarts = {max}\nwithin-seconds = 30\n'
    "backoff = {{ initial-ms = 1, max-ms = 5 }}\n"
)


def _supervised(restart: str = "permanent", max_restarts: int = 10) -> str:
    return FAST.format(restart=restart, max=max_restarts)


async def _boom(host: Host, target: str) -> None:
    with pytest.raises(TrapError):
        await host.request(target, b"boom")


def _restarts(host: Host) -> dict[str, int]:
    return {str(s.id): s.actor.restarts for s in host.components()}


async def _start_trio(host: Host, manifest: ManifestFactory, group: str | None = None) -> None:
    for name in ("a", "b", "c"):
        await host.start(
            manifest(f"t/{name}/0", wat_binary("trap"), extra=_supervised()), group=group
        )


@pytest.fixture
def config_for(host_config: HostConfig, tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(strategy: str, max_restarts: int = 10) -> HostConfig:
        sup = HostSupervision(strategy, max_restarts, 30.0)  # type: ignore[arg-type]
        return dataclasses.replace(
            host_config, state_dir=tmp_path / f"state-{strategy}", supervision=sup
        )

    return make


async def test_one_for_one_restarts_only_the_crashed_child(
    config_for,
    manifest: ManifestFactory,  # type: ignore[no-untyped-def]
) -> None:
    async with Host.open(config_for("one_for_one")) as host:
        await _start_trio(host, manifest)
        await _boom(host, "t/b/0")
        await host.wait_event("restarted", "t/b/0")
        assert _restarts(host) == {"t/a/0": 0, "t/b/0": 1, "t/c/0": 0}
        assert await host.request("t/b/0", b"ok") == b"ok"


async def test_one_for_all_restarts_all_children(
    config_for,
    manifest: ManifestFactory,  # type: ignore[no-untyped-def]
) -> None:
    async with Host.open(config_for("one_for_all")) as host:
        await _start_trio(host, manifest)
        await _boom(host, "t/b/0")
        for name in ("a", "b", "c"):
            await host.wait_event("restarted", f"t/{name}/0")
        assert _restarts(host) == {"t/a/0": 1, "t/b/0": 1, "t/c/0": 1}
        kinds = [(e.kind, e.child) for e in host.events if e.kind == "restarted"]
        assert [c for _, c in kinds] == ["t/a/0", "t/b/0", "t/c/0"]  # start order
        for name in ("a", "b", "c"):
            assert await host.request(f"t/{name}/0", b"x") == b"x"


async def test_rest_for_one_restarts_the_crashed_and_later_children(
    config_for,
    manifest: ManifestFactory,  # type: ignore[no-untyped-def]
) -> None:
    async with Host.open(config_for("rest_for_one")) as host:
        await _start_trio(host, manifest)
        await _boom(host, "t/b/0")
        await host.wait_event("restarted", "t/c/0")
        assert _restarts(host) == {"t/a/0": 0, "t/b/0": 1, "t/c/0": 1}


async def test_transient_is_restarted_after_a_crash_but_not_after_a_normal_stop(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("t/tr/0", wat_binary("trap"), extra=_supervised("transient")))
    await _boom(host, "t/tr/0")
    await host.wait_event("restarted", "t/tr/0")
    assert await host.request("t/tr/0", b"alive") == b"alive"

    host._cell(host.components()[0].id).ref.stop()  # a normal exit, like gen_server:stop
    await host.wait_event("removed", "t/tr/0")
    with pytest.raises(TargetNotFoundError):
        await host.request("t/tr/0", b"gone")


async def test_permanent_is_restarted_even_after_a_normal_stop(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("t/perm/0", wat_binary("trap"), extra=_supervised("permanent")))
    host._cell(host.components()[0].id).ref.stop()
    await host.wait_event("restarted", "t/perm/0")
    assert await host.request("t/perm/0", b"back") == b"back"


async def test_temporary_is_never_restarted(host: Host, manifest: ManifestFactory) -> None:
    await host.start(manifest("t/tmp/0", wat_binary("trap"), extra=_supervised("temporary")))
    await _boom(host, "t/tmp/0")
    await host.wait_event("removed", "t/tmp/0")
    assert not any(e.kind == "restarted" for e in host.events)
    with pytest.raises(TargetNotFoundError):
        await host.request("t/tmp/0", b"gone")


async def test_child_out_of_its_own_restarts_is_given_up_alone(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("t/weak/0", wat_binary("trap"), extra=_supervised(max_restarts=2)))
    await host.start(manifest("t/ok/0", wat_binary("echo")))
    for n in (1, 2):
        await _boom(host, "t/weak/0")
        await host.wait_event("restarted", "t/weak/0", count=n)
    await _boom(host, "t/weak/0")
    await host.wait_event("removed", "t/weak/0")
    assert await host.request("t/ok/0", b"fine") == b"fine"
    assert not host.failed.is_set()


async def test_exceeding_host_intensity_stops_everything_and_escalates(
    config_for,
    manifest: ManifestFactory,  # type: ignore[no-untyped-def]
) -> None:
    async with Host.open(config_for("one_for_one", max_restarts=2)) as host:
        await _start_trio(host, manifest)
        for name in ("a", "b"):
            await _boom(host, f"t/{name}/0")
            await host.wait_event("restarted", f"t/{name}/0")
        await _boom(host, "t/c/0")  # the third restart within the window: too many
        await asyncio.wait_for(host.failed.wait(), 30)
        assert host.failure is not None
        assert "t/c/0" in host.failure
        assert host.components() == []
        with pytest.raises(TargetNotFoundError):
            await host.request("t/a/0", b"x")


async def test_group_escalates_to_the_host_which_restarts_it(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.add_group(
        "workers", SupervisorSpec("one_for_all", max_restarts=1, within_seconds=30)
    )
    for name in ("a", "b"):
        await host.start(
            manifest(f"t/{name}/0", wat_binary("trap"), extra=_supervised()), group="workers"
        )
    await _boom(host, "t/a/0")
    await host.wait_event("restarted", "t/b/0")
    await _boom(host, "t/b/0")  # second restart in the window: the group gives up
    await host.wait_event("escalated", "workers")
    await host.wait_event("restarted", "workers")  # the host supervisor restarts the group
    assert await host.request("t/a/0", b"a") == b"a"
    assert await host.request("t/b/0", b"b") == b"b"
    assert not host.failed.is_set()


async def test_crash_in_a_burst_dead_letters_exactly_the_poisoned_message(
    host: Host, manifest: ManifestFactory
) -> None:
    extra = '[capabilities.storage]\nquota = "1MiB"\n' + _supervised()
    await host.start(manifest("t/burst/0", guest_binary("probe"), extra=extra, timeout_ms=10_000))
    poison = 400
    payloads = [b"crash" if i == poison else f"push {i}".encode() for i in range(1000)]
    results = await asyncio.gather(
        *(host.request("t/burst/0", p, timeout=120) for p in payloads), return_exceptions=True
    )
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [poison]
    assert isinstance(results[poison], TrapError)
    assert all(r == b"ok" for i, r in enumerate(results) if i != poison)
    letters = host.dead_letters.entries("t/burst/0")
    assert [(d.size, d.kind) for d in letters] == [(5, "request")]
    log = await host.request("t/burst/0", b"get log", timeout=30)
    assert log is not None
    assert log.decode().split(",")[:-1] == [str(i) for i in range(1000) if i != poison]


async def test_unhealthy_component_is_restarted(host: Host, manifest: ManifestFactory) -> None:
    extra = _supervised() + "health-interval-ms = 20\nhealth-threshold = 2\n"
    await host.start(manifest("t/sick/0", guest_binary("probe"), extra=extra))
    assert await host.request("t/sick/0", b"sick") == b"sick"
    event = await host.wait_event("restarted", "t/sick/0")
    assert event.reason is not None
    assert "unhealthy 2 times" in event.reason
    assert await host.request("t/sick/0", b"init?") == b"yes"  # a fresh, initialized instance


async def test_shutdown_of_a_component_stuck_in_a_loop_completes_within_its_timeout(
    host: Host, manifest: ManifestFactory
) -> None:
    extra = "[supervision]\nshutdown-timeout-ms = 200\n"
    await host.start(manifest("t/stuck/0", wat_binary("loop"), timeout_ms=60_000, extra=extra))
    spinning = asyncio.create_task(host.request("t/stuck/0", b"spin", timeout=600))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await host.stop("t/stuck/0")
    assert time.monotonic() - started < 10  # bounded by the 200 ms timeout, not the 1 min limit
    with pytest.raises(WactorError) as info:
        await spinning
    assert isinstance(info.value, ActorStoppedError | TrapError)


async def test_backoff_pauses_grow_and_are_bounded_for_a_crash_looping_component(
    config_for,
    manifest: ManifestFactory,  # type: ignore[no-untyped-def]
) -> None:
    async with Host.open(config_for("one_for_one", max_restarts=20)) as host:
        await _crash_loop(host, manifest)


async def _crash_loop(host: Host, manifest: ManifestFactory) -> None:
    extra = (
        '[supervision]\nrestart = "permanent"\nmax-restarts = 20\nwithin-seconds = 60\n'
        "backoff = { initial-ms = 20, max-ms = 80 }\n"
    )
    await host.start(manifest("t/loopy/0", wat_binary("trap"), extra=extra))
    for n in range(1, 6):
        await _boom(host, "t/loopy/0")
        event = await host.wait_event("restarted", "t/loopy/0", count=n)
        assert event.backoff is not None
    crashed = [e.time for e in host.events if e.kind == "crashed"]
    restarted = [e.time for e in host.events if e.kind == "restarted"]
    gaps = [r - c for c, r in zip(crashed, restarted, strict=True)]  # the supervisor's own clock
    pauses = [e.backoff for e in host.events if e.kind == "restarted"]
    base = [0.02, 0.04, 0.08, 0.08, 0.08]  # doubling from 20 ms, capped at 80 ms
    for pause, expected in zip(pauses, base, strict=True):
        assert pause is not None
        assert expected * 0.8 <= pause <= min(0.08, expected * 1.2)  # jitter of ±20 %, capped
    # really waited (1 ms of slack for the wall clock's resolution)
    assert all(gap >= pause - 0.001 for gap, pause in zip(gaps, pauses, strict=True))
