"""The observe endpoint of a host: /metrics counts what real components did, /api/status shows
the tree, / is the dashboard; all read-only."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conftest import ManifestFactory, wat_binary
from observe_client import fetch, samples, value
from wactor.errors import ExecutionTimeoutError, GuestError, TrapError
from wactor.host import Host, HostConfig, ObserveConfig
from wactor.host._listen import observe_config
from waiting import wait_until


def _observed(config: HostConfig, **limits: int) -> HostConfig:
    return dataclasses.replace(
        config,
        observe=observe_config("127.0.0.1:0", allow_remote=False),
        limits=dataclasses.replace(config.limits, **limits),
    )


@pytest.fixture
async def observed(host_config: HostConfig) -> AsyncIterator[Host]:
    """A running host serving its observe endpoint on a free loopback port."""
    async with Host.open(_observed(host_config)) as h:
        yield h


def _url(host: Host) -> str:
    assert host.observer is not None
    assert host.observer.url is not None
    return host.observer.url


async def _metrics(host: Host) -> str:
    reply = await fetch(_url(host), "/metrics")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return reply.body.decode()


async def test_metrics_count_the_messages_a_component_handled(
    observed: Host, manifest: ManifestFactory
) -> None:
    await observed.start(manifest("test/echo/0", wat_binary("echo")))
    await observed.start(manifest("test/echo/1", wat_binary("echo")))
    for i in range(7):
        assert await observed.request("test/echo/0", b"m%d" % i) == b"m%d" % i
    await observed.send("test/echo/0", b"fire")
    await wait_until(
        lambda: observed.components()[0].actor.processed == 8, "the send to be handled"
    )

    text = await _metrics(observed)
    every = samples(text)  # parses as Prometheus text
    echo0 = {"component": "test/echo/0"}
    assert value(text, "wactor_component_messages_total", **echo0, kind="request") == 7
    assert value(text, "wactor_component_messages_total", **echo0, kind="send") == 1
    assert value(text, "wactor_component_call_duration_seconds_count", **echo0, kind="request") == 7
    assert (
        value(
            text,
            "wactor_component_call_duration_seconds_bucket",
            **echo0,
            kind="request",
            le="+Inf",
        )
        == 7
    )
    assert value(text, "wactor_component_mailbox_depth", **echo0) == 0
    assert value(text, "wactor_component_mailbox_capacity", **echo0) == 1024
    assert value(text, "wactor_component_restarts_total", **echo0) == 0
    assert value(text, "wactor_component_up", **echo0) == 1
    assert value(text, "wactor_component_fuel_used_total", **echo0) > 0  # type: ignore[operator]
    idle = {"component": "test/echo/1"}
    assert (
        "wactor_component_messages_total",
        frozenset({**idle, "kind": "request"}.items()),
    ) not in every
    assert value(text, "wactor_component_restarts_total", **idle) == 0
    assert value(text, "wactor_dead_letters_total") == 0


async def test_metrics_count_failures_by_cause_restarts_and_dead_letters(
    observed: Host, manifest: ManifestFactory
) -> None:
    await observed.start(manifest("test/trap/0", wat_binary("trap")))
    await observed.start(manifest("test/loop/0", wat_binary("loop"), timeout_ms=100))
    await observed.start(manifest("test/liar/0", wat_binary("liar")))
    with pytest.raises(TrapError):
        await observed.request("test/trap/0", b"boom")
    with pytest.raises(ExecutionTimeoutError):
        await observed.request("test/loop/0", b"spin", timeout=10)
    with pytest.raises(GuestError):
        await observed.request("test/liar/0", b"no")
    await observed.wait_event("restarted", "test/trap/0")
    await observed.wait_event("restarted", "test/loop/0")

    text = await _metrics(observed)
    trap = {"component": "test/trap/0"}
    assert value(text, "wactor_component_failures_total", **trap, cause="trap") == 1
    assert value(text, "wactor_component_restarts_total", **trap) == 1
    loop = {"component": "test/loop/0"}
    assert value(text, "wactor_component_failures_total", **loop, cause="timeout") == 1
    liar = {"component": "test/liar/0"}
    assert value(text, "wactor_component_failures_total", **liar, cause="guest-error") == 1
    assert value(text, "wactor_component_restarts_total", **liar) == 0  # an answer, not a crash
    assert value(text, "wactor_dead_letters_total") == 2


async def test_fuel_used_grows_with_each_call_metered_or_not(
    observed: Host, manifest: ManifestFactory
) -> None:
    await observed.start(manifest("test/free/0", wat_binary("echo")))
    await observed.start(manifest("test/metered/0", wat_binary("echo"), extra="fuel = 1000000"))
    before = {}
    text = await _metrics(observed)
    for cid in ("test/free/0", "test/metered/0"):
        before[cid] = value(text, "wactor_component_fuel_used_total", component=cid)
        assert before[cid] is not None
        await observed.request(cid, b"x" * 64)
    text = await _metrics(observed)
    for cid in ("test/free/0", "test/metered/0"):
        after = value(text, "wactor_component_fuel_used_total", component=cid)
        assert after is not None
        assert after > before[cid]


async def test_fuel_used_survives_a_restart(observed: Host, manifest: ManifestFactory) -> None:
    await observed.start(manifest("test/trap/0", wat_binary("trap")))
    await observed.request("test/trap/0", b"warm")
    text = await _metrics(observed)
    before = value(text, "wactor_component_fuel_used_total", component="test/trap/0")
    with pytest.raises(TrapError):
        await observed.request("test/trap/0", b"boom")
    await observed.wait_event("restarted", "test/trap/0")
    text = await _metrics(observed)
    after = value(text, "wactor_component_fuel_used_total", component="test/trap/0")
    assert before is not None
    assert after is not None
    assert after > before


async def test_storage_bytes_of_a_component_with_a_quota(
    observed: Host, manifest: ManifestFactory
) -> None:
    extra = '[capabilities.storage]\nquota = "64KiB"\n'
    await observed.start(manifest("test/kv/0", wat_binary("kv"), extra=extra))
    assert await observed.request("test/kv/0", b"v" * 100) == b"v" * 100
    text = await _metrics(observed)
    kv = {"component": "test/kv/0"}
    assert value(text, "wactor_component_storage_bytes", **kv) == 101  # key "k" + value
    assert value(text, "wactor_component_storage_quota_bytes", **kv) == 64 * 1024


async def test_denials_and_shed_audit_entries_are_counted(
    host_config: HostConfig, manifest: ManifestFactory
) -> None:
    async with Host.open(_observed(host_config, audit_per_second=1)) as host:
        # no messaging grant: every send is denied and audited, past 1 a second shed
        await host.start(manifest("test/sender/0", wat_binary("sender")))
        for _ in range(20):
            with pytest.raises(GuestError):
                await host.request("test/sender/0", b"x")
        text = await _metrics(host)
        metered = ("grant", "denial")
        written = [e for e in host.audit.query(limit=10_000) if e.event in metered]
    assert value(text, "wactor_denials_total") == 20
    assert value(text, "wactor_audit_events_total", event="denial") == 20
    grants = value(text, "wactor_audit_events_total", event="grant")
    shed = value(text, "wactor_audit_shed_total")
    assert grants is not None
    assert shed is not None
    assert shed >= 1  # twenty denials do not spread over twenty seconds
    assert shed == 20 + grants - len(written)  # every offered entry is written or counted shed
    cause = value(
        text, "wactor_component_failures_total", component="test/sender/0", cause="guest-error"
    )
    assert cause == 20


async def test_status_lists_the_supervision_tree(observed: Host, manifest: ManifestFactory) -> None:
    await observed.start(manifest("test/echo/0", wat_binary("echo")))
    await observed.add_group("workers")
    await observed.start(manifest("test/trap/0", wat_binary("trap")), group="workers")
    with pytest.raises(TrapError):
        await observed.request("test/trap/0", b"boom")
    await observed.wait_event("restarted", "test/trap/0")
    await observed.request("test/echo/0", b"hi")

    reply = await fetch(_url(observed), "/api/status")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    status = reply.json()
    tree = status["tree"]
    assert (tree["kind"], tree["id"], tree["state"]) == ("supervisor", "host", "running")
    echo, group = tree["children"]
    assert echo["id"] == "test/echo/0"
    assert echo["state"] == "ready"
    assert echo["health"] == "healthy"
    assert echo["processed"] == 1
    assert echo["messages"] == {"request": 1}
    assert echo["depth"] == 0
    assert echo["capacity"] == 1024
    assert echo["version"] == "1.0.0"
    assert (group["kind"], group["id"]) == ("supervisor", "workers")
    (trap,) = group["children"]
    assert trap["id"] == "test/trap/0"
    assert trap["restarts"] == 1
    assert trap["failed"] == 1
    assert "unreachable" in trap["last_failure"]
    assert status["host"]["dead_letters"] == 1
    (letter,) = status["dead_letters"]
    assert letter["component"] == "test/trap/0"
    observed.audit.flush()  # the status shows entries once written
    shown = (await fetch(_url(observed), "/api/status")).json()["audit"]
    assert ("start", "test/echo/0") in {(e["event"], e["component"]) for e in shown}
    assert ("restart", "test/trap/0") in {(e["event"], e["component"]) for e in shown}


async def test_dashboard_is_one_self_contained_page(observed: Host) -> None:
    reply = await fetch(_url(observed), "/")
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    page = reply.body.decode()
    assert "/api/status" in page
    csp = reply.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    # nothing is loaded from elsewhere: no external script, style, font or image
    for marker in ("http://", "https://", "//cdn", 'src="/', "@import", "url("):
        assert marker not in page, marker


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_endpoint_is_read_only(observed: Host, method: str) -> None:
    for path in ("/", "/metrics", "/api/status"):
        reply = await fetch(_url(observed), path, method=method)
        assert reply.status == 405, (path, reply)
        assert reply.headers["allow"] == "GET, HEAD"


async def test_other_paths_are_not_found_and_head_has_no_body(observed: Host) -> None:
    for path in ("/admin", "/api", "/api/status/", "/metrics/x", "/../etc/passwd", "/%2e%2e/"):
        assert (await fetch(_url(observed), path)).status == 404, path
    head = await fetch(_url(observed), "/api/status", method="HEAD")
    assert head.status == 200
    assert head.body == b""
    assert int(head.headers["content-length"]) > 0
    assert (await fetch(_url(observed), "/metrics?x=1")).status == 200


async def test_two_hosts_in_one_process_keep_their_own_metrics(
    tmp_path: Path, host_config: HostConfig, manifest: ManifestFactory
) -> None:
    other = dataclasses.replace(host_config, state_dir=tmp_path / "other-state")
    async with Host.open(_observed(host_config)) as a, Host.open(_observed(other)) as b:
        await a.start(manifest("test/echo/0", wat_binary("echo")))
        await b.start(manifest("test/echo/0", wat_binary("echo")))
        await a.request("test/echo/0", b"1")
        for _ in range(3):
            await b.request("test/echo/0", b"2")
        assert _url(a) != _url(b)
        text_a, text_b = await _metrics(a), await _metrics(b)
    label = {"component": "test/echo/0", "kind": "request"}
    assert value(text_a, "wactor_component_messages_total", **label) == 1
    assert value(text_b, "wactor_component_messages_total", **label) == 3


async def test_no_endpoint_without_an_address(host: Host) -> None:
    assert host.config.observe == ObserveConfig()
    assert host.observer is None


async def test_a_guests_long_error_text_is_cut_short_in_the_status(
    observed: Host, manifest: ManifestFactory
) -> None:
    await observed.start(manifest("test/liar/0", wat_binary("liar")))
    with pytest.raises(GuestError):
        await observed.request("test/liar/0", b"e" * 200_000)
    status = (await fetch(_url(observed), "/api/status")).json()
    (liar,) = status["tree"]["children"]
    assert liar["failed"] == 1
    assert 100 < len(liar["last_failure"]) <= 400
    assert liar["last_failure"].endswith("…")
    assert len(status["tree"]["last_failure"] or "") <= 400


async def test_metrics_speak_openmetrics_when_the_scraper_asks(
    observed: Host, manifest: ManifestFactory
) -> None:
    await observed.start(manifest("test/echo/0", wat_binary("echo")))
    await observed.request("test/echo/0", b"x")
    reply = await fetch(
        _url(observed), "/metrics", headers={"Accept": "application/openmetrics-text"}
    )
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/openmetrics-text")
    assert reply.body.endswith(b"# EOF\n")
    assert b'wactor_component_messages_total{component="test/echo/0",kind="request"} 1' in (
        reply.body
    )


async def test_status_lists_the_components_that_did_not_start(
    tmp_path: Path, host_config: HostConfig
) -> None:
    broken = tmp_path / "broken" / "component.toml"
    broken.parent.mkdir()
    broken.write_text('[component]\nid = "test/broken/0"\nwasm = "missing.wasm"\n')
    config = dataclasses.replace(_observed(host_config), components=(broken,))
    async with Host.open(config) as host:
        status = (await fetch(_url(host), "/api/status")).json()
        text = await _metrics(host)
    (failure,) = status["host"]["load_failures"]
    assert failure["component"] == "test/broken/0"
    assert failure["manifest"] == str(broken)
    assert "missing.wasm" in failure["error"]
    assert value(text, "wactor_load_failures") == 1
