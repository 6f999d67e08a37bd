"""Sockets from a real guest: refused, whatever its manifest grants.

``socket.wat`` is a hand-written wasi:sockets 0.2.0 guest (a componentize-py guest has no
``socket`` module). It asks for the instance network, creates an IPv4 TCP socket and calls
``start-connect`` to 127.0.0.1:<port>, or (payload ``L``) looks up ``localhost``; the reply has
one byte per step (see the fixture's header): ``N``, then ``S``/``s<code>``, ``C``/``c<code>``,
``F``/``f<code>``, or ``R``/``r<code>``.

The guest gets its network handle but no socket: ``create-tcp-socket`` answers
``access-denied`` and ``resolve-addresses`` a ``permanent-resolver-failure``, with or without a
network grant (WASI sockets and name lookups are closed for every guest: a ``connect`` grant
opens the host's ``wactor:http`` client, nothing else), and nothing reaches the server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conftest import TRUSTED, ManifestFactory, wat_binary
from wactor.host import Host, HostConfig

# wasi:sockets/network@0.2.0 error-code enum indices.
ACCESS_DENIED = 1
PERMANENT_RESOLVER_FAILURE = 20


async def _look_up(host: Host, target: str) -> bytes:
    reply = await host.request(target, b"L", timeout=30)  # resolve-addresses("localhost")
    assert reply is not None
    return reply


async def _connect(host: Host, target: str, port: int) -> bytes:
    reply = await host.request(target, port.to_bytes(2, "big"), timeout=30)
    assert reply is not None
    return reply


async def test_a_guest_without_network_grant_cannot_connect(
    host: Host, manifest: ManifestFactory
) -> None:
    accepted = asyncio.Event()
    server = await asyncio.start_server(lambda r, w: accepted.set() or w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await host.start(manifest("t/sock/0", wat_binary("socket")))
        # instance-network works, create-tcp-socket(ipv4) is refused: err(access-denied).
        assert await _connect(host, "t/sock/0", port) == b"Ns" + bytes([ACCESS_DENIED])
        # and so is a name lookup
        assert await _look_up(host, "t/sock/0") == b"Nr" + bytes([PERMANENT_RESOLVER_FAILURE])
        await asyncio.sleep(0.1)
        assert not accepted.is_set()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("dev", [False, True], ids=["trusted", "dev"])
async def test_a_guest_with_a_network_grant_still_gets_no_socket_and_no_name_lookup(
    tmp_path: Path, manifest: ManifestFactory, dev: bool
) -> None:
    # WASI sockets are closed for every guest, whatever its manifest: a grant of that very
    # address (and of every address, "*:*") is not a way around it, in dev mode neither
    accepted = asyncio.Event()
    server = await asyncio.start_server(lambda r, w: accepted.set() or w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    extra = f'[capabilities.network]\nconnect = ["127.0.0.1:{port}", "localhost:*", "*:*"]\n'
    config = HostConfig.default(tmp_path / "state", trusted_paths=(tmp_path, *TRUSTED), dev=dev)
    try:
        async with Host.open(config) as host:
            await host.start(manifest("t/sock/0", wat_binary("socket"), extra=extra))
            assert await _connect(host, "t/sock/0", port) == b"Ns" + bytes([ACCESS_DENIED])
            assert await _look_up(host, "t/sock/0") == b"Nr" + bytes([PERMANENT_RESOLVER_FAILURE])
            await asyncio.sleep(0.1)
            assert not accepted.is_set()
    finally:
        server.close()
        await server.wait_closed()
