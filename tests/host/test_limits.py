"""The host's [limits]: defaults for silent manifests, ceilings, store caps, guest log volume,
audit budget and broadcast fan-out, driven through real components.

Counting tests bound what got through by the token bucket's own arithmetic (burst plus rate times
the measured duration of the guest's call), never by how fast anything ran.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.test_call import wactor
from conftest import (
    CACHE_ROOT,
    ManifestFactory,
    guest_binary,
    wat_binary,
    write_host_config,
    write_manifest,
)
from wactor.errors import (
    ApprovalPendingError,
    ComponentFault,
    GuestError,
    HostConfigError,
    InstantiationError,
    ManifestError,
)
from wactor.host import Host, HostConfig, HostLimits, load_host_config

FLOOD_GRANTS = '[capabilities.messaging]\nsend = ["t/**"]\nbroadcast = ["t/**"]\n'


def _counts(reply: bytes | None) -> tuple[int, int, int]:
    assert reply is not None
    match = re.fullmatch(rb"ok=(\d+) limited=(\d+) other=(\d+)", reply)
    assert match, reply
    ok, limited, other = (int(g) for g in match.groups())
    return ok, limited, other


async def _timed(host: Host, target: str, payload: bytes) -> tuple[bytes | None, float]:
    started = time.monotonic()
    reply = await host.request(target, payload, timeout=60)
    return reply, time.monotonic() - started


def _config(tmp_path: Path, manifests: list[Path], limits: str) -> HostConfig:
    return load_host_config(write_host_config(tmp_path, manifests, f"\n[limits]\n{limits}\n"))


# --- message rate ------------------------------------------------------------------------------


async def test_a_silent_manifest_gets_the_default_rate_and_refusals_are_audited_with_shedding(
    host: Host, manifest: ManifestFactory
) -> None:
    # The manifest says nothing about message-rate: the host's default (1000/s) applies.
    await host.start(
        manifest("t/flood/0", guest_binary("flood"), timeout_ms=30_000, extra=FLOOD_GRANTS)
    )
    await host.start(manifest("t/echo/0", wat_binary("echo")))
    sent = 20_000
    reply, elapsed = await _timed(host, "t/flood/0", f"flood t/echo/0 {sent}".encode())
    ok, limited, other = _counts(reply)
    assert ok + limited + other == sent
    # every send that got past the bucket took a token: at most the burst plus what refilled
    # while the call ran (the call is bounded by its 30 s timeout, so this is below 20,000)
    assert ok + other <= 1000 + 1000 * elapsed + 1
    assert limited >= 1

    # Every refusal is either an audit row or counted in a summary row; rows per component
    # are bounded by the audit budget (100 per second) for each window the flood spanned.
    entries = host.audit.query(component="t/flood/0", limit=1_000_000)
    rows = [e for e in entries if e.event == "denial" and "rate limit" in e.reason]
    summaries = [e for e in entries if e.event == "audit-shed"]
    shed = 0
    for entry in summaries:
        match = re.match(r"(\d+) audit entries shed: more than 100 per second", entry.reason)
        assert match, entry.reason
        shed += int(match[1])
    assert len(rows) + shed == limited
    assert summaries
    assert len(rows) <= 100 * (elapsed + 2)
    assert all("rate limit of 1000/s" in e.reason for e in rows)


async def test_limits_message_rate_applies_to_silent_manifests(tmp_path: Path) -> None:
    folder = tmp_path / "components"
    flood = write_manifest(
        folder, "t/flood/0", guest_binary("flood"), timeout_ms=20_000, extra=FLOOD_GRANTS
    )
    echo = write_manifest(folder, "t/echo/0", wat_binary("echo"))
    config = _config(tmp_path, [flood, echo], "message-rate = 50")
    assert config.limits.message_rate == 50
    async with Host.open(config) as host:
        assert not host.load_failures
        reply, elapsed = await _timed(host, "t/flood/0", b"flood t/echo/0 3000")
        ok, limited, other = _counts(reply)
        assert ok + other <= 50 + 50 * elapsed + 1
        assert ok + limited + other == 3000
        assert limited >= 1


# --- defaults and ceilings ---------------------------------------------------------------------


def test_host_config_shows_the_defaults_and_ceilings(tmp_path: Path) -> None:
    default = HostConfig.default(tmp_path / "state").limits
    assert default == HostLimits()
    assert (default.message_rate, default.memory_bytes, default.timeout_ms) == (
        1000,
        64 << 20,
        1000,
    )
    assert (default.max_memory_bytes, default.max_timeout_ms) == (1 << 30, 60_000)
    loaded = _config(tmp_path, [], 'message-rate = 10\nmax-memory = "128MiB"\nmailbox = 16')
    assert (loaded.limits.message_rate, loaded.limits.max_memory_bytes) == (10, 128 << 20)
    assert loaded.limits.mailbox == 16
    assert loaded.limits.timeout_ms == 1000  # unset keys keep the defaults


async def test_silent_keys_take_the_host_defaults_and_written_keys_stay(tmp_path: Path) -> None:
    folder = tmp_path / "components"
    echo = write_manifest(folder, "t/echo/0", wat_binary("echo"), memory="2MiB")
    config = _config(
        tmp_path, [], "message-rate = 7\ntimeout-ms = 3000\nmailbox = 16\nfuel = 10_000_000"
    )
    async with Host.open(config) as host:
        handle = await host.start(echo)
        limits = handle.manifest.limits
        # written in the manifest: memory and timeout-ms; the rest from [limits]
        assert (limits.memory_bytes, limits.timeout_ms) == (2 << 20, 2000)
        assert (limits.message_rate, limits.message_burst) == (7, 7)
        assert (limits.mailbox, limits.fuel) == (16, 10_000_000)
        assert await host.request("t/echo/0", b"hi") == b"hi"


def test_a_default_above_its_ceiling_is_a_config_error(tmp_path: Path) -> None:
    path = write_host_config(tmp_path, [], '\n[limits]\nmemory = "2GiB"\n')
    with pytest.raises(HostConfigError) as caught:
        load_host_config(path)
    assert caught.value.exit_code == 2
    assert "limits.memory" in str(caught.value)
    assert "max-memory" in str(caught.value)


@pytest.mark.parametrize(
    ("resources", "key", "shown", "ceiling", "ceiling_key"),
    [
        ('memory = "256MiB"', "memory", "256MiB", "128MiB", "max-memory"),
        ("timeout-ms = 90000", "timeout-ms", "90000", "60000", "max-timeout-ms"),
        ("message-rate = 500", "message-rate", "500", "100", "max-message-rate"),
        ("mailbox = 100000", "mailbox", "100000", "65536", "max-mailbox"),
        ("fuel = 2_000_000", "fuel", "2000000", "1000000", "max-fuel"),
    ],
)
async def test_a_manifest_over_a_ceiling_is_refused_with_one_line(
    tmp_path: Path, *, resources: str, key: str, shown: str, ceiling: str, ceiling_key: str
) -> None:
    folder = tmp_path / "components" / "greedy"
    folder.mkdir(parents=True)
    path = folder / "component.toml"
    wasm = wat_binary("echo")
    path.write_text(
        f'[component]\nid = "t/greedy/0"\nwasm = "{wasm}"\n\n[resources]\n{resources}\n'
    )
    config_path = write_host_config(
        tmp_path,
        [path],
        '\n[limits]\nmax-memory = "128MiB"\nmax-message-rate = 100\nmessage-rate = 100\n'
        "max-fuel = 1_000_000\n",
    )
    async with Host.open(config_path) as host:
        (failure,) = host.load_failures
        error = failure.error
        assert isinstance(error, ManifestError)
        assert error.exit_code == 2
        assert str(error) == (
            f"{path}: resources.{key}: {shown} is more than the host allows "
            f"(expected at most {ceiling}, {ceiling_key} of [limits] in {config_path})"
        )
        assert "\n" not in str(error)
        assert host.components() == []
        (entry,) = host.audit.query(component="t/greedy/0", denied_only=True)
        assert (entry.event, entry.action, entry.reason) == ("denial", "admit", str(error))


async def test_a_fuel_ceiling_meters_a_silent_manifest(tmp_path: Path) -> None:
    echo = write_manifest(tmp_path / "components", "t/echo/0", wat_binary("echo"))
    config = _config(tmp_path, [], "max-fuel = 5_000_000")
    async with Host.open(config) as host:
        handle = await host.start(echo)
        assert handle.manifest.limits.fuel == 5_000_000


# --- wasm store caps ---------------------------------------------------------------------------


async def test_a_table_grown_past_the_cap_traps(tmp_path: Path) -> None:
    grow = write_manifest(tmp_path / "components", "t/grow/0", wat_binary("tablegrow"))
    config = _config(tmp_path, [], "table-elements = 150_000")
    async with Host.open(config) as host:
        await host.start(grow)
        assert await host.request("t/grow/0", b"one") == b"one"  # 100,001 elements
        with pytest.raises(ComponentFault) as caught:  # 200,001 would pass the cap
            await host.request("t/grow/0", b"two")
        assert "t/grow/0" in str(caught.value)


async def test_the_default_table_cap_applies(host: Host, manifest: ManifestFactory) -> None:
    await host.start(manifest("t/grow/0", wat_binary("tablegrow")))
    assert await host.request("t/grow/0", b"one") == b"one"  # 100,001 elements
    with pytest.raises(ComponentFault):  # 200,001: past the default of 200,000
        await host.request("t/grow/0", b"two")


async def test_an_instance_count_over_the_cap_refuses_instantiation(tmp_path: Path) -> None:
    echo = write_manifest(tmp_path / "components", "t/echo/0", wat_binary("echo"))
    config = _config(tmp_path, [], "instances = 1")
    async with Host.open(config) as host:
        with pytest.raises(InstantiationError) as caught:
            await host.start(echo)
        assert str(caught.value).startswith("t/echo/0: instantiation failed")
        assert str(caught.value).endswith("(the host's [limits] instances is 1)")
        assert "\n" not in str(caught.value)


# --- guest log ---------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of(self, component: str) -> list[str]:
        return [r.getMessage() for r in self.records if getattr(r, "component", None) == component]


@pytest.fixture
def guest_log() -> Iterator[_Records]:
    handler = _Records()
    logger = logging.getLogger("wactor.guest")
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


async def test_guest_log_lines_are_escaped_and_cut(
    host: Host, manifest: ManifestFactory, guest_log: _Records
) -> None:
    await host.start(manifest("t/noisy/0", guest_binary("probe")))
    forged = "hello\x1b[2J\x1b[31m\nWARNING wactor.host: fake\r\u202eevil\x00" + "z" * 100_000
    reply = await host.request("t/noisy/0", f"log warn {forged}".encode(), timeout=60)
    assert reply == b"logged"
    (line,) = guest_log.of("t/noisy/0")
    assert line.startswith("t/noisy/0: hello\\x1b[2J\\x1b[31m\\nWARNING wactor.host: fake\\r")
    assert "\\u202eevil\\x00zzz" in line
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c == "\u202e" for c in line)
    assert line.endswith(f"... [line of {len(forged.encode())} bytes cut to 8192]")
    assert len(line.encode()) < 8192 + 100


async def test_guest_log_volume_is_capped_per_component(
    tmp_path: Path, guest_log: _Records
) -> None:
    noisy = write_manifest(tmp_path / "components", "t/noisy/0", guest_binary("flood"))
    config = _config(tmp_path, [], "log-lines-per-second = 20\nlog-line = 100")
    async with Host.open(config) as host:
        await host.start(noisy)
        reply, elapsed = await _timed(host, "t/noisy/0", b"logs 500 " + b"x" * 300)
        assert reply == b"logged 500"
        lines = guest_log.of("t/noisy/0")
        assert 1 <= len(lines) <= 20 + 20 * elapsed + 1
        assert all(len(line.encode()) < 100 + 100 for line in lines)
        # once the budget refills, the next line says how many were dropped
        deadline = time.monotonic() + 30
        while not any("earlier lines dropped" in line for line in guest_log.of("t/noisy/0")):
            assert time.monotonic() < deadline, "no line ever reported the dropped ones"
            await host.request("t/noisy/0", b"logs 1 after", timeout=60)
            await asyncio.sleep(0.05)
        (note,) = [line for line in guest_log.of("t/noisy/0") if "earlier lines dropped" in line]
        dropped = int(re.search(r"\[(\d+) earlier lines dropped: over 20 lines/s\]", note)[1])  # type: ignore[index]
        assert dropped >= 500 - (20 + 20 * elapsed + 1)


# --- broadcast ---------------------------------------------------------------------------------


def _processed(host: Host, component: str) -> int:
    (status,) = [s for s in host.components() if str(s.id) == component]
    return status.actor.processed


async def test_broadcast_targets_are_deduplicated(host: Host, manifest: ManifestFactory) -> None:
    await host.start(manifest("t/caster/0", guest_binary("probe"), extra=FLOOD_GRANTS))
    await host.start(manifest("t/echo/0", wat_binary("echo")))
    targets = ",".join(["t/echo/0"] * 1000)
    reply = await host.request("t/caster/0", f"broadcast {targets} hello".encode(), timeout=60)
    assert reply == b"ok"
    # the copies were queued before the broadcast returned; a request queued after them is
    # answered only once they were all handled
    assert await host.request("t/echo/0", b"marker") == b"marker"
    assert _processed(host, "t/echo/0") == 2


async def test_broadcast_past_the_fan_out_cap_is_refused_and_audited(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("t/caster/0", guest_binary("probe"), extra=FLOOD_GRANTS))
    await host.start(manifest("t/echo/0", wat_binary("echo")))
    targets = ",".join(["t/echo/0", *(f"t/n{i}/0" for i in range(64))])
    reply = await host.request("t/caster/0", f"broadcast {targets} hello".encode(), timeout=60)
    assert reply is not None
    assert reply.decode() == (
        "err invalid-message t/caster/0: broadcast to 65 targets exceeds the limit of 64 "
        "([limits] broadcast-targets)"
    )
    assert await host.request("t/echo/0", b"marker") == b"marker"
    assert _processed(host, "t/echo/0") == 1  # nothing was delivered
    (entry,) = host.audit.query(component="t/caster/0", denied_only=True)
    assert entry.action == "messaging.broadcast"
    assert entry.reason == "broadcast to 65 targets exceeds the limit of 64"


# --- approvals ---------------------------------------------------------------------------------


async def test_approvals_show_the_limits_asked_for_and_can_narrow_them(tmp_path: Path) -> None:
    trusted = tmp_path / "trusted"
    echo = write_manifest(trusted, "t/echo/0", wat_binary("echo"))
    untrusted = tmp_path / "untrusted"
    untrusted.mkdir()
    shutil.copy(guest_binary("flood"), untrusted / "app.wasm")
    flood = untrusted / "component.toml"
    flood.write_text(
        '[component]\nid = "t/flood/0"\nwasm = "app.wasm"\n\n[resources]\ntimeout-ms = 20000\n\n'
        + FLOOD_GRANTS
    )
    config_path = tmp_path / "wactor.toml"
    config_path.write_text(
        f'state-dir = "{tmp_path / "state"}"\n\n[limits]\nmessage-rate = 40\n\n'
        f'[trust]\npaths = ["{trusted}", "{CACHE_ROOT}"]\n'
    )
    async with Host.open(config_path) as host:
        await host.start(echo)
        with pytest.raises(ApprovalPendingError):
            await host.start(flood)

        listed = wactor("approvals", "list", "--config", str(config_path))
        assert listed.returncode == 0, listed.stderr
        (row,) = [line for line in listed.stdout.splitlines() if "t/flood/0" in line]
        # what the manifest wrote (timeout-ms) and what the host's [limits] filled in
        assert (
            "send=t/** broadcast=t/** memory=64MiB timeout-ms=20000 mailbox=1024 "
            "message-rate=40/s message-burst=40" in row
        )

        raised = '{"limits": {"message-rate": 500}}'
        refused = wactor(
            "approvals", "approve", "t/flood/0", "--narrow", raised, "-c", str(config_path)
        )
        assert refused.returncode == 2
        assert "limits.message-rate: 500 is more than the requested 40" in refused.stderr
        narrowed = '{"limits": {"message-rate": 5}}'
        approved = wactor(
            "approvals", "approve", "t/flood/0", "--narrow", narrowed, "-c", str(config_path)
        )
        assert approved.returncode == 0, approved.stderr
        assert "message-rate=5/s message-burst=5" in approved.stdout

        handle = await host.start(flood)
        assert (handle.manifest.limits.message_rate, handle.manifest.limits.message_burst) == (5, 5)
        reply, elapsed = await _timed(host, "t/flood/0", b"flood t/echo/0 300")
        ok, limited, other = _counts(reply)
        assert ok + other <= 5 + 5 * elapsed + 1
        assert ok + limited + other == 300


async def test_publishing_is_counted_against_the_message_rate(tmp_path: Path) -> None:
    grants = '[capabilities.messaging]\npublish = ["wat.*"]\n'
    pub = write_manifest(tmp_path / "components", "t/pub/0", wat_binary("publisher"), extra=grants)
    config = _config(tmp_path, [], "message-rate = 5")
    async with Host.open(config) as host:
        await host.start(pub)
        seen: list[bytes] = []
        await host.subscribe("wat.#", lambda subject, env: seen.append(env.payload))
        errors: list[GuestError] = []
        started = time.monotonic()
        for n in range(50):
            try:
                await host.request("t/pub/0", str(n).encode())
            except GuestError as exc:
                errors.append(exc)
        elapsed = time.monotonic() - started
        refused = len(errors)
        assert all(e.detail == "publish failed" for e in errors)
        assert len(seen) + refused == 50
        assert len(seen) <= 5 + 5 * elapsed + 1
        denials = host.audit.query(component="t/pub/0", denied_only=True)
        assert len(denials) == refused
        assert all(e.action == "messaging.publish" and "rate limit" in e.reason for e in denials)


async def test_guest_stdout_is_logged_line_by_line_escaped_and_capped(
    tmp_path: Path, guest_log: _Records
) -> None:
    noisy = write_manifest(tmp_path / "components", "t/noisy/0", guest_binary("flood"))
    config = _config(tmp_path, [], "log-lines-per-second = 20")
    async with Host.open(config) as host:
        await host.start(noisy)
        reply = await host.request(
            "t/noisy/0", b"print a\x1b[31mb\nWARNING wactor.host: x", timeout=60
        )
        assert reply == b"printed"
        assert guest_log.of("t/noisy/0") == [
            "t/noisy/0: a\\x1b[31mb",
            "t/noisy/0: WARNING wactor.host: x",
        ]
        payload = b"print " + b"\n".join(b"line %d" % n for n in range(500))
        reply, elapsed = await _timed(host, "t/noisy/0", payload)
        assert reply == b"printed"
        assert len(guest_log.of("t/noisy/0")) <= 2 + 20 + 20 * elapsed + 1
