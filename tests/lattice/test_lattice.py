"""A lattice of real host processes over a real nats-server on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from conftest import guest_binary, wat_binary, write_host_config, write_manifest
from wactor._ids import ComponentId
from wactor.errors import DeliveryFailedError, RequestTimeoutError, TargetNotFoundError
from wactor.host import Host, HostConfig
from wactor.lattice import HostEntry, read_lattice
from wactor.messaging import component_subject
from wactor.testing import NatsCluster, NatsServer

GRANTS = """
[capabilities.messaging]
request = ["t/**"]

[capabilities.storage]
quota = "1MiB"
"""


@pytest.fixture
def server() -> Iterator[NatsServer]:
    with NatsServer() as srv:
        yield srv


class HostProcess:
    """``wactor run CONFIG --nats URL`` in a subprocess."""

    def __init__(self, config: Path, url: str) -> None:
        self.config = config
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wactor", "run", str(config), "--nats", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _host(
    tmp_path: Path, name: str, url: str, components: list[tuple[str, Path, str]]
) -> HostProcess:
    folder = tmp_path / name
    manifests = [
        write_manifest(folder / "components", cid, wasm, extra=extra, timeout_ms=10_000)
        for cid, wasm, extra in components
    ]
    return HostProcess(write_host_config(folder, manifests), url)


async def _lattice_view(url: str) -> list[HostEntry]:
    """The registry as a reader sees it; empty while the servers cannot answer yet (a cluster
    electing its JetStream leader times out requests for a moment)."""
    try:
        return await read_lattice(url, "default")
    except Exception:  # noqa: BLE001 - not ready: the callers retry until their deadline
        return []


async def _wait_for(url: str, *ids: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen = {c for e in await _lattice_view(url) for c in e.components}
        if set(ids) <= seen:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{ids} never showed up in the lattice (saw {seen})")


async def _wait_hosts(url: str, ok: Callable[[int], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    count = -1
    for _ in range(int(timeout * 10)):
        count = len(await _lattice_view(url))
        if ok(count) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert ok(count), f"the lattice has {count} hosts"


def _client(tmp_path: Path, url: str) -> HostConfig:
    """An in-process lattice client: a host with no components of its own."""
    base = HostConfig.default(tmp_path / "client-state")
    return HostConfig(
        path=None,
        state_dir=base.state_dir,
        broker=type(base.broker)("nats", url, "default"),
    )


async def test_request_and_callback_across_two_host_processes(
    tmp_path: Path, server: NatsServer
) -> None:
    a = _host(tmp_path, "a", server.url, [("t/alice/0", guest_binary("probe"), GRANTS)])
    b = _host(tmp_path, "b", server.url, [("t/echo/0", wat_binary("echo"), "")])
    try:
        await _wait_for(server.url, "t/alice/0", "t/echo/0")
        async with Host.open(_client(tmp_path, server.url)) as client:
            # each host refreshes its view of the lattice with every heartbeat (1 s)
            for _ in range(100):
                listed = await client.request("t/alice/0", b"list", timeout=30)
                assert listed is not None
                if {"t/alice/0", "t/echo/0"} <= set(listed.decode().split(",")):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"alice never saw the echo: {listed!r}")
            correlation = await client.request("t/alice/0", b"request t/echo/0 5000 ping")
            assert correlation is not None
            for _ in range(300):
                seen = await client.request("t/alice/0", b"callbacks", timeout=30)
                if seen:
                    break
                await asyncio.sleep(0.05)
            assert seen == correlation + b" ok ping"  # the reply came back across hosts
    finally:
        a.stop()
        b.stop()


async def test_a_plain_nats_client_calls_a_component_by_its_subject(
    tmp_path: Path, server: NatsServer
) -> None:
    host = _host(tmp_path, "a", server.url, [("t/echo/0", wat_binary("echo"), "")])
    try:
        await _wait_for(server.url, "t/echo/0")
        nc = await nats.connect(server.url)
        try:
            subject = component_subject(ComponentId.parse("t/echo/0"), "default")
            assert subject == "wactor.default.t.echo.0"
            reply = await nc.request(subject, b"hello from plain nats", timeout=10)
            assert reply.data == b"hello from plain nats"
        finally:
            await nc.close()
    finally:
        host.stop()


async def test_killed_host_fails_fast_or_moves_to_a_live_instance(
    tmp_path: Path, server: NatsServer
) -> None:
    a = _host(tmp_path, "a", server.url, [("t/echo/0", wat_binary("echo"), "")])
    b = _host(
        tmp_path,
        "b",
        server.url,
        [("t/echo/0", wat_binary("echo"), ""), ("t/only/0", wat_binary("echo"), "")],
    )
    try:
        await _wait_for(server.url, "t/echo/0", "t/only/0")
        await _wait_hosts(server.url, lambda n: n == 2)
        b.kill()
        async with Host.open(_client(tmp_path, server.url)) as client:
            for i in range(20):  # every request goes to the surviving instance
                assert await client.request("t/echo/0", b"%d" % i, timeout=10) == b"%d" % i
            started = time.monotonic()
            with pytest.raises(TargetNotFoundError):
                await client.request("t/only/0", b"x", timeout=30)
            assert time.monotonic() - started < 10  # no responders: fast, not the 30 s timeout
        await _wait_hosts(server.url, lambda n: n == 1)  # the dead host's heartbeat expires
    finally:
        a.stop()
        b.stop()


async def _mailbox_depth(url: str, cid: str) -> int:
    """The mailbox depth of ``cid`` in the lattice view (what ``wactor ps`` shows), or -1."""

    def walk(node: dict[str, Any]) -> int:
        if node.get("kind") == "component" and node.get("id") == cid:
            return int(node.get("depth", -1))
        return max([walk(child) for child in node.get("children", [])], default=-1)

    depths = [walk(e.snapshot.get("tree", {})) for e in await _lattice_view(url)]
    return max(depths, default=-1)


async def test_requests_in_flight_to_a_killed_host_fail_fast_with_a_clear_error(
    tmp_path: Path, server: NatsServer
) -> None:
    # t/slow/0 answers "sleep 50000" after 50 s; the requests wait up to 60 s. Only the
    # lattice noticing the dead host can end them sooner, and it must (README: within ~6 s).
    asker = write_manifest(
        tmp_path / "a" / "components", "t/alice/0", guest_binary("probe"), extra=GRANTS
    )
    a = HostProcess(write_host_config(tmp_path / "a", [asker]), server.url)
    slow = write_manifest(
        tmp_path / "b" / "components", "t/slow/0", guest_binary("probe"), timeout_ms=55_000
    )
    b = HostProcess(write_host_config(tmp_path / "b", [slow]), server.url)
    try:
        await _wait_for(server.url, "t/alice/0", "t/slow/0")
        async with Host.open(_client(tmp_path, server.url)) as client:
            corr = await client.request("t/alice/0", b"request t/slow/0 60000 sleep 50000")
            assert corr is not None
            in_flight = [
                asyncio.ensure_future(client.request("t/slow/0", b"sleep 50000", timeout=60))
                for _ in range(2)
            ]
            deadline = time.monotonic() + 30  # all three taken by host b: one runs, two wait
            while await _mailbox_depth(server.url, "t/slow/0") < 2:
                assert time.monotonic() < deadline, "host b never queued the requests"
                await asyncio.sleep(0.1)
            b.kill()
            killed = time.monotonic()
            for fut in in_flight:
                with pytest.raises(DeliveryFailedError, match="stopped answering") as info:
                    await fut
                assert str(info.value).startswith("t/slow/0: its host ")
                assert info.value.component == "t/slow/0"
            while True:
                seen = await client.request("t/alice/0", b"callbacks", timeout=30)
                if seen:
                    break
                assert time.monotonic() - killed < 40, "the guest's request never ended"
                await asyncio.sleep(0.1)
            outcome = seen.decode()
            assert outcome.startswith(f"{corr.decode()} err t/slow/0: its host "), outcome
            assert "stopped answering" in outcome
            assert time.monotonic() - killed < 40  # not the 50 s reply nor the 60 s timeout
    finally:
        a.stop()
        b.stop()


async def test_hosts_reconnect_after_the_nats_server_restarts(
    tmp_path: Path, server: NatsServer
) -> None:
    host = _host(tmp_path, "a", server.url, [("t/echo/0", wat_binary("echo"), "")])
    try:
        await _wait_for(server.url, "t/echo/0")
        server.restart()
        async with Host.open(_client(tmp_path, server.url)) as client:
            # until the host has reconnected: not found (no subscription yet) or not delivered
            back = await _once_settled(lambda: client.request("t/echo/0", b"back", timeout=5))
            assert back == b"back"
        assert host.proc.poll() is None
    finally:
        host.stop()


async def _stream_leader(urls: list[str], stream: str) -> str:
    nc = await nats.connect(urls)
    try:
        info = await nc.jetstream().stream_info(stream)
    finally:
        await nc.close()
    assert info.cluster is not None
    assert info.cluster.leader is not None
    return info.cluster.leader


async def _once_settled(ask: Callable[[], Awaitable[bytes | None]]) -> bytes | None:
    """``ask()`` again while the lattice fails over, then its answer; only the failures a
    failover causes are retried (the host reconnecting: not found, delivery failed, timed
    out; its storage electing a leader: the guest's ``err io-error``), anything else fails."""
    deadline = time.monotonic() + 120
    while True:
        try:
            reply = await ask()
            if not (reply or b"").startswith(b"err io-error"):
                return reply
            why = reply.decode() if reply else ""
        except (TargetNotFoundError, DeliveryFailedError, RequestTimeoutError) as exc:
            why = str(exc)
        print("failing over:", why)  # shown with the output of a failed test
        assert time.monotonic() < deadline, f"the lattice never settled: {why}"
        await asyncio.sleep(0.2)


@pytest.mark.timeout(400)
async def test_stored_data_survives_losing_the_storage_leader_of_a_three_node_cluster(
    tmp_path: Path,
) -> None:
    with NatsCluster(3) as cluster:
        url = ",".join(cluster.urls)
        folder = tmp_path / "a"
        # a storage call waits (up to 15 s) through a leader election: the call may take that
        manifest = write_manifest(
            folder / "components",
            "t/keeper/0",
            guest_binary("probe"),
            extra=GRANTS,
            timeout_ms=40_000,
        )
        config = write_host_config(
            folder, [manifest], extra='storage = "nats"\nstorage-replicas = 3\n'
        )
        host = HostProcess(config, url)
        try:
            await _wait_for(url, "t/keeper/0")
            leader = await _stream_leader(cluster.urls, "KV_wactor-default-kv")
            victim = next(i for i, node in enumerate(cluster.nodes) if node.name == leader)
            survivors = ",".join(u for i, u in enumerate(cluster.urls) if i != victim)
            # the client talks to the survivors only: what it sees is the host failing over
            async with Host.open(_client(tmp_path, survivors)) as client:
                assert await client.request("t/keeper/0", b"set k kept", timeout=30) == b"ok"
                cluster.kill(victim)  # the node leading the storage bucket's stream
                keeper = ComponentId.parse("t/keeper/0")
                assert (
                    await _once_settled(lambda: client.request(keeper, b"get k", timeout=50))
                    == b"kept"
                )
                assert (
                    await _once_settled(
                        lambda: client.request(keeper, b"set k2 written-after", timeout=50)
                    )
                    == b"ok"
                )
                assert await client.request(keeper, b"get k2", timeout=30) == b"written-after"
                assert host.proc.poll() is None
        finally:
            host.stop()


def test_environment_has_nats_server() -> None:
    from wactor.testing import find_nats_server

    assert os.access(find_nats_server(), os.X_OK)
