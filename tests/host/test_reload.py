"""Hot code swap (``Host.reload``) and restart on request, through real components.

A reload checks and compiles the new code before anything changes; the call in progress
finishes on the old code; queued messages are answered by the new; nothing is lost. New code
that fails its trust check or fails to start leaves the old code running, and says why.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil

import pytest

from conftest import ManifestFactory, guest_binary, wat_binary
from wactor.errors import (
    ApprovalPendingError,
    DigestMismatchError,
    TargetNotFoundError,
    WactorError,
)
from wactor.host import Host
from waiting import wait_busy

PROBE = "t/probe/0"
STORAGE = '[capabilities.storage]\nquota = "1MiB"\n'


def _reloads(host: Host) -> list[tuple[bool, str, str]]:
    return [
        (e.allowed, e.target, e.reason)
        for e in host.audit.query(component=PROBE)
        if e.event == "reload"
    ]


async def test_queued_requests_survive_a_reload_and_the_new_code_answers_afterwards(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest(PROBE, guest_binary("probe"), timeout_ms=10_000))
    assert await host.request(PROBE, b"echo warm", timeout=10) == b"warm"
    held = asyncio.create_task(host.request(PROBE, b"sleep 300", timeout=10))
    await wait_busy(host, PROBE)
    queued = [
        asyncio.create_task(host.request(PROBE, f"echo q{i}".encode(), timeout=30))
        for i in range(50)
    ]
    await asyncio.sleep(0)  # every request queued behind the one in progress

    handle = await host.reload(PROBE, wasm=wat_binary("echo"))

    assert await held == b"slept"  # the call in progress finished on the old code
    replies = await asyncio.gather(*queued)  # none lost, none failed
    old = [f"q{i}".encode() for i in range(50)]  # probe answers "echo X" with X
    new = [f"echo q{i}".encode() for i in range(50)]  # the WAT echo answers with the payload
    switch = next((i for i, r in enumerate(replies) if r == new[i]), 50)
    assert replies == old[:switch] + new[switch:]  # one switch, in order
    assert await host.request(PROBE, b"after", timeout=10) == b"after"
    assert handle.digest == hashlib.sha256(wat_binary("echo").read_bytes()).hexdigest()
    [status] = host.components()
    assert status.id == handle.id
    assert host.registry.lookup(PROBE).restarts == 0  # a swap, not a crash
    assert _reloads(host) == [(True, handle.digest, "")]
    assert [e.kind for e in host.events if e.child == PROBE][-1] == "reloaded"


async def test_a_reload_reads_the_manifest_again(host: Host, manifest: ManifestFactory) -> None:
    path = manifest(PROBE, guest_binary("probe"))
    await host.start(path)
    assert await host.request(PROBE, b"echo x", timeout=10) == b"x"
    manifest(PROBE, wat_binary("echo"))  # the same file, now naming other code
    await host.reload(PROBE)
    assert await host.request(PROBE, b"echo x", timeout=10) == b"echo x"


async def test_a_binary_that_fails_its_pinned_digest_leaves_the_old_code_running(
    host: Host, manifest: ManifestFactory
) -> None:
    probe = guest_binary("probe")
    path = manifest(PROBE, probe)
    pin = hashlib.sha256(probe.read_bytes()).hexdigest()
    path.write_text(path.read_text().replace('version = "1.0.0"', f'sha256 = "{pin}"'))
    await host.start(path)
    with pytest.raises(DigestMismatchError):
        await host.reload(PROBE, wasm=wat_binary("echo"))
    assert await host.request(PROBE, b"echo still", timeout=10) == b"still"
    [(allowed, _target, reason)] = _reloads(host)
    assert not allowed
    assert "pins" in reason


async def test_an_unapproved_binary_is_refused_and_the_old_code_keeps_its_state(
    host: Host, manifest: ManifestFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    await host.start(manifest(PROBE, guest_binary("examples/counter"), extra=STORAGE))
    assert await host.request(PROBE, b"+", timeout=10) == b"memory=1 stored=1"
    elsewhere = tmp_path_factory.mktemp("untrusted") / "echo.wasm"  # outside trusted paths
    shutil.copyfile(wat_binary("echo"), elsewhere)

    with pytest.raises(ApprovalPendingError) as refused:
        await host.reload(PROBE, wasm=elsewhere)

    assert "approv" in refused.value.message
    assert await host.request(PROBE, b"+", timeout=10) == b"memory=2 stored=2"  # same instance
    [(allowed, _target, reason)] = _reloads(host)
    assert not allowed
    assert reason == refused.value.message


async def test_new_code_that_fails_to_start_leaves_the_old_code_running(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(
        manifest(
            PROBE, guest_binary("examples/counter"), extra=STORAGE + '[config]\ndata = "refuse"\n'
        )
    )
    assert await host.request(PROBE, b"+", timeout=10) == b"memory=1 stored=1"
    with pytest.raises(WactorError, match="refuse"):  # liar.wat fails initialize with [config]
        await host.reload(PROBE, wasm=wat_binary("liar"))
    assert await host.request(PROBE, b"+", timeout=10) == b"memory=2 stored=2"
    assert not _reloads(host)[0][0]


async def test_reload_and_restart_of_an_unknown_component_say_so(host: Host) -> None:
    with pytest.raises(TargetNotFoundError):
        await host.reload("t/nobody/0")
    with pytest.raises(TargetNotFoundError):
        await host.restart("t/nobody/0")


async def test_restart_starts_a_fresh_instance_and_keeps_storage(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest(PROBE, guest_binary("examples/counter"), extra=STORAGE))
    for n in (1, 2):
        assert await host.request(PROBE, b"+", timeout=10) == f"memory={n} stored={n}".encode()
    await host.restart(PROBE)
    assert await host.request(PROBE, b"+", timeout=10) == b"memory=1 stored=3"
    assert host.registry.lookup(PROBE).restarts == 1
    restarted = [e for e in host.events if e.child == PROBE and e.kind == "restarted"]
    assert [e.reason for e in restarted] == ["restart requested"]


async def test_restart_brings_back_a_component_that_failed_for_good(
    host: Host, manifest: ManifestFactory
) -> None:
    extra = "[supervision]\nmax-restarts = 0\nwithin-seconds = 60\n"
    await host.start(manifest(PROBE, guest_binary("probe"), extra=extra))
    with pytest.raises(WactorError):
        await host.request(PROBE, b"crash", timeout=10)
    await host.wait_event("gave_up", PROBE)
    await host.restart(PROBE)
    assert await host.request(PROBE, b"echo back", timeout=10) == b"back"


async def test_reloads_at_once_take_turns_and_the_last_code_runs(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest(PROBE, wat_binary("echo")))
    await asyncio.gather(
        host.reload(PROBE, wasm=guest_binary("probe")),
        host.reload(PROBE, wasm=wat_binary("echo")),
    )
    assert await host.request(PROBE, b"echo x", timeout=10) == b"echo x"
    assert [allowed for allowed, _, _ in _reloads(host)] == [True, True]
    assert len(host.components()) == 1


async def test_a_reload_keeps_the_guests_subscriptions_and_delivers_each_publication_once(
    host: Host, manifest: ManifestFactory
) -> None:
    grants = '[capabilities.messaging]\nsubscribe = ["orders.*.created", "audit.#"]\n'
    topics = guest_binary("topics")
    await host.start(manifest(PROBE, topics, extra=grants, timeout_ms=10_000))
    assert await host.request(PROBE, b"unsub audit.#", timeout=30) == b"ok"
    await host.reload(PROBE, wasm=topics)  # its initialize subscribes to both patterns again
    assert await host.publish("orders.eu.created", b"1") == 1  # one subscription, not two
    assert await host.publish("audit.x", b"2") == 1
    seen = b""
    while b"audit.x=2" not in seen:
        seen = await host.request(PROBE, b"seen", timeout=30) or b""
    assert seen == b"orders.eu.created=1;audit.x=2"
