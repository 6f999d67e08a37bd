"""Storage through the real host functions, called by a real Python guest."""

from __future__ import annotations

import pytest

from conftest import ManifestFactory, guest_binary
from wactor.host import Host, HostConfig

STORAGE = '[capabilities.storage]\nquota = "{quota}"\n'


async def _ask(host: Host, target: str, command: str) -> str:
    reply = await host.request(target, command.encode(), timeout=30)
    assert reply is not None
    return reply.decode()


@pytest.fixture
async def two_probes(host: Host, manifest: ManifestFactory) -> Host:
    wasm = guest_binary("probe")
    await host.start(manifest("t/a/0", wasm, extra=STORAGE.format(quota="4KiB")))
    await host.start(manifest("t/b/0", wasm, extra=STORAGE.format(quota="4KiB")))
    return host


async def test_two_components_writing_the_same_key_see_only_their_own(two_probes: Host) -> None:
    host = two_probes
    assert await _ask(host, "t/a/0", "set shared from-a") == "ok"
    assert await _ask(host, "t/b/0", "set shared from-b") == "ok"
    assert await _ask(host, "t/a/0", "get shared") == "from-a"
    assert await _ask(host, "t/b/0", "get shared") == "from-b"
    assert await _ask(host, "t/a/0", "keys") == "shared"
    assert await _ask(host, "t/a/0", "del shared") == "ok"
    assert await _ask(host, "t/a/0", "exists shared") == "false"
    assert await _ask(host, "t/b/0", "exists shared") == "true"


@pytest.mark.parametrize(
    "key",
    [
        "../t/b/0/secret",  # path traversal
        "t/b/0/secret",  # the other component's id as a prefix
        "secret\x00t/b/0",  # NUL byte
        "ｓｅｃｒｅｔ",  # fullwidth unicode look-alike
        "%",  # SQL wildcard
    ],
)
async def test_tricky_keys_stay_inside_the_callers_scope(two_probes: Host, key: str) -> None:
    host = two_probes
    assert await _ask(host, "t/b/0", "set secret b-only") == "ok"
    hexkey = "hex:" + key.encode().hex()
    assert await _ask(host, "t/a/0", f"get {hexkey}") == "none"
    assert await _ask(host, "t/a/0", f"set {hexkey} mine") == "ok"
    assert await _ask(host, "t/b/0", "get secret") == "b-only"
    assert await _ask(host, "t/b/0", "keys") == "secret"
    assert await _ask(host, "t/a/0", "keys") == key


async def test_quota_is_enforced_exactly_at_its_boundary(two_probes: Host) -> None:
    host = two_probes
    # used bytes = len(key) + len(value); quota 4 KiB = 4096 bytes
    assert await _ask(host, "t/a/0", "setn k 4095") == "ok"
    assert await _ask(host, "t/a/0", "usage") == "4096 4096 1"
    assert await _ask(host, "t/a/0", "setn j 0") == "err quota-exceeded"
    assert await _ask(host, "t/a/0", "usage") == "4096 4096 1"
    assert await _ask(host, "t/a/0", "setn k 4096") == "err quota-exceeded"
    assert await _ask(host, "t/a/0", "get k") == "x" * 4095  # nothing half-written
    assert await _ask(host, "t/a/0", "setn k 100") == "ok"
    assert await _ask(host, "t/a/0", "usage") == "101 4096 1"


async def test_component_without_storage_capability_gets_an_error(
    host: Host, manifest: ManifestFactory
) -> None:
    await host.start(manifest("t/nostore/0", guest_binary("probe")))
    reply = await _ask(host, "t/nostore/0", "set k v")
    assert reply.startswith("err io-error")
    assert "no storage capability" in reply


async def test_stored_values_survive_a_host_restart(
    host_config: HostConfig, manifest: ManifestFactory
) -> None:
    path = manifest("t/durable/0", guest_binary("probe"), extra=STORAGE.format(quota="1MiB"))
    async with Host.open(host_config) as host:
        await host.start(path)
        assert await _ask(host, "t/durable/0", "set k kept") == "ok"
    async with Host.open(host_config) as host:
        await host.start(path)
        assert await _ask(host, "t/durable/0", "get k") == "kept"
        assert await _ask(host, "t/durable/0", "usage") == "5 1048576 1"


async def test_a_failing_backend_becomes_the_guests_err_not_a_dead_instance(
    host: Host, manifest: ManifestFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    await host.start(manifest("t/a/0", guest_binary("probe"), extra=STORAGE.format(quota="4KiB")))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(host.storage, "get", broken)
    assert await _ask(host, "t/a/0", "get k") == "err io-error internal error: RuntimeError"
    monkeypatch.undo()
    assert await _ask(host, "t/a/0", "get k") == "none"  # same instance, still healthy
    (status,) = host.components()
    assert status.actor.restarts == 0


async def test_an_empty_key_is_the_guests_invalid_key_err(two_probes: Host) -> None:
    assert await _ask(two_probes, "t/a/0", "get hex:") == (
        "err invalid-key t/a/0: storage key must not be empty"
    )
