"""Text a guest or a NATS peer chose reaches the operator's terminal only escaped, one line each."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.js.api import KeyValueConfig

from cli.test_call import wactor
from conftest import TRUSTED, wat_binary, write_host_config, write_manifest
from wactor.errors import InvalidComponentError
from wactor.host import Host, HostConfig
from wactor.host._host import DEAD_LETTERS_FILE
from wactor.messaging import DeadLetterLog
from wactor.testing import NatsServer

# a newline (a fake line of output), an OSC title sequence and a bidi override
HOSTILE = "one\nFAKE LINE \x1b]0;pwned\x07 \u202eevil"


def _assert_escaped(text: str) -> None:
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "\u202e" not in text
    assert not any(line.startswith("FAKE") for line in text.splitlines())


def test_call_prints_a_guests_error_text_escaped_on_one_line(tmp_path: Path) -> None:
    config = write_host_config(
        tmp_path, [write_manifest(tmp_path / "components", "test/liar/0", wat_binary("liar"))]
    )
    shown = wactor("call", "test/liar/0", HOSTILE, "--config", str(config))
    assert shown.returncode == 4, shown.stderr
    lines = shown.stderr.splitlines()
    assert len(lines) == 1, shown.stderr
    assert lines[0].startswith("error: test/liar/0: ")
    assert "one\\nFAKE LINE" in lines[0]
    _assert_escaped(shown.stderr)


def test_dead_letters_shows_reasons_and_senders_escaped(tmp_path: Path) -> None:
    config = write_host_config(tmp_path, [])
    log = DeadLetterLog(tmp_path / "state" / DEAD_LETTERS_FILE)
    log.record("test/liar/0", f"reason {HOSTILE}", sender=f"peer {HOSTILE}", kind="request", size=3)
    log.close()
    shown = wactor("dead-letters", "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 1, shown.stdout
    assert "reason one\\nFAKE LINE" in lines[0]
    _assert_escaped(shown.stdout)


@pytest.fixture(scope="module")
def server() -> Iterator[NatsServer]:
    with NatsServer() as srv:
        yield srv


async def _plant(url: str, lattice: str, key: str, body: bytes) -> None:
    """Write a registry entry as any NATS peer of the lattice can."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        kv = await js.create_key_value(KeyValueConfig(bucket=f"wactor-{lattice}-registry"))
        await kv.put(key, body)
    finally:
        await nc.close()


def _lattice_config(tmp_path: Path, url: str, lattice: str) -> Path:
    return write_host_config(
        tmp_path, [], extra=f'\n[broker]\ntype = "nats"\nurl = "{url}"\nlattice = "{lattice}"\n'
    )


def test_ps_shows_a_peers_heartbeat_text_escaped(tmp_path: Path, server: NatsServer) -> None:
    lattice = f"p{uuid.uuid4().hex[:10]}"
    tree = {
        "kind": "supervisor",
        "id": f"host {HOSTILE}",
        "strategy": HOSTILE,
        "state": HOSTILE,
        "restarts": HOSTILE,
        "last_failure": None,
        "children": [
            {
                "kind": "component",
                "id": HOSTILE,
                "state": HOSTILE,
                "health": HOSTILE,
                "depth": HOSTILE,
                "capacity": 1,
                "processed": 0,
                "failed": 0,
                "restarts": 0,
                "last_failure": HOSTILE,
            }
        ],
    }
    body = {"pid": 1, "time": 0, "components": [], "snapshot": {"tree": tree}}
    asyncio.run(_plant(server.url, lattice, "hosts.evil", json.dumps(body).encode()))
    shown = wactor("ps", "--config", str(_lattice_config(tmp_path, server.url, lattice)))
    assert shown.returncode == 0, shown.stderr
    assert "host evil pid 1" in shown.stdout
    # the header, the host, its supervisor and its one component: no line more
    assert len(shown.stdout.splitlines()) == 4, shown.stdout
    _assert_escaped(shown.stdout)


def test_ps_shows_a_peers_malformed_tree_without_failing(
    tmp_path: Path, server: NatsServer
) -> None:
    lattice = f"p{uuid.uuid4().hex[:10]}"
    tree = {"kind": "supervisor", "children": [{"kind": "component"}, 7, {"id": "x/y/0"}]}
    body = {"pid": 1, "time": 0, "components": [], "snapshot": {"tree": tree}}
    asyncio.run(_plant(server.url, lattice, "hosts.odd", json.dumps(body).encode()))
    shown = wactor("ps", "--config", str(_lattice_config(tmp_path, server.url, lattice)))
    assert shown.returncode == 0, shown.stderr
    assert "host odd pid 1" in shown.stdout


def test_ps_survives_a_peers_heartbeat_nested_too_deep(tmp_path: Path, server: NatsServer) -> None:
    lattice = f"p{uuid.uuid4().hex[:10]}"
    good = {"pid": 2, "time": 0, "components": ["a/b/0"], "snapshot": {}}
    asyncio.run(_plant(server.url, lattice, "hosts.good", json.dumps(good).encode()))
    deep = b'{"pid": 1, "time": 0, "components": [], "snapshot": {"tree": ' + b"[" * 200_000
    asyncio.run(_plant(server.url, lattice, "hosts.deep", deep))
    shown = wactor("ps", "--config", str(_lattice_config(tmp_path, server.url, lattice)))
    assert shown.returncode == 0, shown.stderr
    assert "host good pid 2" in shown.stdout


def test_run_logs_a_guests_initialize_failure_escaped(tmp_path: Path) -> None:
    toml_text = json.dumps(HOSTILE)  # a JSON string is a TOML basic string here
    manifest = write_manifest(
        tmp_path / "components",
        "test/liar/0",
        wat_binary("liar"),
        extra=f"[config]\ndata = {toml_text}\n",
    )
    shown = wactor("run", "--once", str(write_host_config(tmp_path, [manifest])))
    assert shown.returncode != 0
    assert "one\\nFAKE LINE" in shown.stderr
    _assert_escaped(shown.stderr)


def test_inspect_lists_a_guests_import_names_escaped() -> None:
    shown = wactor("inspect", str(wat_binary("urlimport")))
    assert shown.returncode == 2, shown.stderr  # it does not fit the world
    assert "url=<https://example.com/\\x1b[2J" in shown.stdout
    assert "fits airssys:core/runtime-host@1.0.0: no" in shown.stdout
    _assert_escaped(shown.stdout)


async def test_a_component_refused_for_its_import_names_is_worded_escaped(
    tmp_path: Path,
) -> None:
    config = HostConfig.default(tmp_path / "state", trusted_paths=(tmp_path, *TRUSTED))
    async with Host.open(config) as host:
        with pytest.raises(InvalidComponentError) as caught:
            await host.start(write_manifest(tmp_path, "test/url/0", wat_binary("urlimport")))
    assert "url=<https://example.com/\\x1b[2J" in str(caught.value)
    _assert_escaped(str(caught.value))
