"""Host functions with byte lists in both directions, called from a hand-written component."""

from __future__ import annotations

import pytest

from conftest import ManifestFactory, wat_binary
from wactor.errors import GuestError
from wactor.host import Host


@pytest.mark.parametrize("size", [0, 7, 1024, 65536, 1 << 20])
async def test_payload_round_trips_through_host_set_and_get(
    host: Host, manifest: ManifestFactory, size: int
) -> None:
    extra = '[capabilities.storage]\nquota = "4MiB"\n'
    # a generous limit: a 1 MiB byte list crosses the C API four times per message
    await host.start(manifest("t/kv/0", wat_binary("kv"), timeout_ms=30_000, extra=extra))
    payload = bytes((i * 31) % 256 for i in range(size))
    assert await host.request("t/kv/0", payload, timeout=60) == payload
    assert host.storage.get("t/kv/0", "k") == payload


async def test_storage_error_reaches_the_guest_as_err(
    host: Host, manifest: ManifestFactory
) -> None:
    extra = '[capabilities.storage]\nquota = "1KiB"\n'
    await host.start(manifest("t/kv/0", wat_binary("kv"), extra=extra))
    with pytest.raises(GuestError) as info:
        await host.request("t/kv/0", b"x" * 2048)  # over quota: set fails, guest answers err
    assert info.value.case == "runtime-error"
    assert info.value.detail == "kv"
    assert await host.request("t/kv/0", b"small") == b"small"  # no fault, same instance
    (status,) = host.components()
    assert status.actor.restarts == 0
