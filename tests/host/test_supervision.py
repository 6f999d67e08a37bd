"""OTP supervision of real components: strategies, restart types, intensity, backoff, health."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest

from cli.test_call import wactor
from conftest import ManifestFactory, guest_binary, wat_binary, write_host_config, write_manifest
from wactor._ids import ComponentId
from wactor.actors import SupervisorSpec
from wactor.cli._run import _write_snapshot
from wactor.errors import (
    ActorStoppedError,
    HostConfigError,
    TargetNotFoundError,
    TrapError,
    WactorError,
)
from wactor.host import Host, HostConfig, HostSupervision, load_host_config
from waiting import wait_busy

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
    def make(
        strategy: str, max_restarts: int = 10, significant: tuple[str, ...] = ()
    ) -> HostConfig:
        sup = HostSupervision(strategy, max_restarts, 30.0)  # type: ignore[arg-type]
        if significant:
            ids = frozenset(ComponentId.parse(s) for s in significant)
            sup = dataclasses.replace(sup, significant=ids)
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
    await host.wait_event("gave_up", "t/weak/0")
    assert await host.request("t/ok/0", b"fine") == b"fine"
    assert not host.failed.is_set()
    assert [c.id for c in host.components()] == [ComponentId.parse("t/ok/0")]


async def test_exceeding_host_intensity_stops_everything_and_escalates(
    config_for,
    manifest: ManifestFactory,  # type: ignore[no-untyped-def]
) -> None:
    trio = ("t/a/0", "t/b/0", "t/c/0")
    async with Host.open(config_for("one_for_one", max_restarts=2, significant=trio)) as host:
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
    config_for,
    manifest: ManifestFactory,  # type: ignore[no-untyped-def]
) -> None:
    async with Host.open(config_for("one_for_one", significant=("t/a/0", "t/b/0"))) as host:
        await _group_escalates(host, manifest)


async def _group_escalates(host: Host, manifest: ManifestFactory) -> None:
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
    await wait_busy(host, "t/stuck/0")
    started = time.monotonic()
    await host.stop("t/stuck/0")
    assert time.monotonic() - started < 10  # bounded by the 200 ms timeout, not the 60 s call limit
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


# -- own budgets and significant components (wactor.toml [supervision] significant) ----------


def _line_of(output: str, component: str) -> str:
    (line,) = [ln for ln in output.splitlines() if ln.strip().startswith(f"{component} ")]
    return line


async def test_a_crash_looping_component_does_not_stop_the_echo_beside_it(
    host: Host, manifest: ManifestFactory
) -> None:
    # The host supervisor allows 3 restarts in 5 s; the looper's manifest allows 100 of its own.
    assert (host.config.supervision.max_restarts, host.config.supervision.within_seconds) == (
        3,
        5.0,
    )
    await host.start(
        manifest("t/looper/0", wat_binary("trap"), extra=_supervised(max_restarts=100))
    )
    await host.start(manifest("t/echo/0", wat_binary("echo")))
    for n in range(1, 21):
        await _boom(host, "t/looper/0")
        assert await host.request("t/echo/0", f"ping {n}".encode()) == f"ping {n}".encode()
        await host.wait_event("restarted", "t/looper/0", count=n)
    assert not host.failed.is_set()
    assert host.supervisor.state == "running"
    assert await host.request("t/looper/0", b"alive") == b"alive"
    assert await host.request("t/echo/0", b"after") == b"after"


async def test_a_component_out_of_its_restarts_fails_alone_audited_and_shown_failed(
    tmp_path: Path,
) -> None:
    components = tmp_path / "components"
    weak = write_manifest(
        components, "t/weak/0", wat_binary("trap"), extra=_supervised(max_restarts=2)
    )
    echo = write_manifest(components, "t/echo/0", wat_binary("echo"))
    config_path = write_host_config(tmp_path, [weak, echo])
    config = load_host_config(config_path)
    async with Host.open(config) as host:
        for n in (1, 2):
            await _boom(host, "t/weak/0")
            await host.wait_event("restarted", "t/weak/0", count=n)
        await _boom(host, "t/weak/0")
        await host.wait_event("gave_up", "t/weak/0")

        assert await host.request("t/echo/0", b"still here") == b"still here"
        assert not host.failed.is_set()
        assert [str(c.id) for c in host.components()] == ["t/echo/0"]
        # A request to the failed component gets a clear error at once.
        with pytest.raises(ActorStoppedError) as info:
            await host.request("t/weak/0", b"anyone?", timeout=30)
        assert str(info.value).startswith("t/weak/0: gave up after 2 restarts within 30 s: ")
        assert "unreachable" in str(info.value)
        assert str(info.value).count("t/weak/0") == 1
        with pytest.raises(ActorStoppedError):
            await host.send("t/weak/0", b"anyone?")

        denied = host.audit.query(component="t/weak/0", denied_only=True)
        assert [(e.event, e.action) for e in denied] == [("restart", "gave_up")]
        assert "gave up after 2 restarts" in denied[0].reason

        nodes = {c["id"]: c for c in host.snapshot()["tree"]["children"]}
        assert list(nodes) == ["t/weak/0", "t/echo/0"]
        assert nodes["t/weak/0"]["state"] == "failed"
        assert nodes["t/weak/0"]["restarts"] == 2
        assert nodes["t/weak/0"]["last_failure"].startswith("gave up after 2 restarts")
        assert nodes["t/echo/0"]["state"] == "ready"
        assert host.snapshot()["failure"] is None
        _write_snapshot(host, config.state_dir / "status.json")

    shown = wactor("ps", "--config", str(config_path))
    assert shown.returncode == 0, shown.stderr
    line = _line_of(shown.stdout, "t/weak/0")
    assert line.strip().startswith("t/weak/0 failed ")
    assert "restarts=2" in line
    assert "last-failure='gave up after 2 restarts within 30 s: " in line
    assert _line_of(shown.stdout, "t/echo/0").strip().startswith("t/echo/0 ready ")
    assert "gave up" not in shown.stdout.splitlines()[1]  # the host supervisor did not


async def test_a_failed_component_is_started_anew_or_stopped_by_the_operator(
    host: Host, manifest: ManifestFactory
) -> None:
    path = manifest("t/weak/0", wat_binary("trap"), extra=_supervised(max_restarts=0))
    await host.start(path)
    await _boom(host, "t/weak/0")
    await host.wait_event("gave_up", "t/weak/0")

    await host.start(path)  # replaces the failed record
    assert await host.request("t/weak/0", b"again") == b"again"
    (node,) = host.snapshot()["tree"]["children"]
    assert (node["id"], node["state"]) == ("t/weak/0", "ready")

    await _boom(host, "t/weak/0")
    await host.wait_event("gave_up", "t/weak/0", count=2)
    await host.stop("t/weak/0")  # removes the failed record
    assert host.snapshot()["tree"]["children"] == []
    with pytest.raises(TargetNotFoundError):
        await host.request("t/weak/0", b"gone")


async def test_requests_queued_behind_the_final_crash_fail_at_once_with_the_reason(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("t/weak/0", wat_binary("trap"), extra=_supervised(max_restarts=0)))
    boom = asyncio.create_task(host.request("t/weak/0", b"boom", timeout=600))
    queued = [asyncio.create_task(host.request("t/weak/0", b"x", timeout=600)) for _ in range(5)]
    with pytest.raises(TrapError):
        await boom
    for request in queued:
        with pytest.raises(ActorStoppedError) as info:
            await asyncio.wait_for(request, 60)  # failed by the give-up, not by a timeout
        assert "gave up after 0 restarts within 30 s" in str(info.value)


async def test_only_significant_components_count_toward_the_host_intensity(
    config_for,
    manifest: ManifestFactory,  # type: ignore[no-untyped-def]
) -> None:
    async with Host.open(config_for("one_for_one", 2, significant=("t/key/0",))) as host:
        for name in ("key", "plugin"):
            extra = _supervised(max_restarts=100)
            await host.start(manifest(f"t/{name}/0", wat_binary("trap"), extra=extra))
        for n in range(1, 6):  # the plugin's restarts are its own business
            await _boom(host, "t/plugin/0")
            await host.wait_event("restarted", "t/plugin/0", count=n)
        for n in (1, 2):
            await _boom(host, "t/key/0")
            await host.wait_event("restarted", "t/key/0", count=n)
        assert not host.failed.is_set()
        await _boom(host, "t/key/0")  # the third significant restart in the window
        await asyncio.wait_for(host.failed.wait(), 30)
        assert host.failure is not None
        assert host.failure.startswith("t/key/0: ")


async def test_a_significant_components_final_failure_stops_the_host(tmp_path: Path) -> None:
    components = tmp_path / "components"
    key = write_manifest(
        components, "t/key/0", wat_binary("trap"), extra=_supervised(max_restarts=1)
    )
    echo = write_manifest(components, "t/echo/0", wat_binary("echo"))
    extra = '[supervision]\nmax-restarts = 100\nwithin-seconds = 30\nsignificant = ["t/key"]\n'
    config = load_host_config(write_host_config(tmp_path, [key, echo], extra))
    async with Host.open(config) as host:
        await _boom(host, "t/key/0")
        await host.wait_event("restarted", "t/key/0")
        assert await host.request("t/echo/0", b"fine") == b"fine"
        await _boom(host, "t/key/0")  # out of its own budget: its final failure
        await asyncio.wait_for(host.failed.wait(), 30)
        assert host.failure == (
            "t/key/0: gave up after 1 restart within 30 s: "
            + host.failure.split("within 30 s: ", 1)[1]
        )
        assert "unreachable" in host.failure
        assert host.components() == []
        denied = host.audit.query(component="host", denied_only=True)
        assert [(e.action, e.reason) for e in denied] == [("gave_up", host.failure)]
        with pytest.raises(TargetNotFoundError):
            await host.request("t/echo/0", b"gone")


def test_significant_lists_component_ids(tmp_path: Path) -> None:
    path = tmp_path / "wactor.toml"
    path.write_text('[supervision]\nsignificant = ["t/ok/0", "not an id"]\n')
    with pytest.raises(HostConfigError) as info:
        load_host_config(path)
    text = str(info.value)
    assert text.startswith(f"{path}: supervision.significant[1]: component id 'not an id' ")
    assert "\n" not in text

    path.write_text('[supervision]\nsignificant = "t/ok/0"\n')
    with pytest.raises(HostConfigError) as info:
        load_host_config(path)
    assert str(info.value).startswith(f"{path}: supervision.significant: got string ")
    assert "array of strings" in str(info.value)

    shown = wactor("run", "--once", str(path))
    assert shown.returncode == 2
    assert "supervision.significant" in shown.stderr
    assert "Traceback" not in shown.stderr

    path.write_text('[supervision]\nsignificant = ["t/ok", "t/later/1"]\n')
    ids = load_host_config(path).supervision.significant
    assert ids == {ComponentId("t", "ok", "0"), ComponentId("t", "later", "1")}
