"""Network grants through the CLI: listed by ``approvals``, narrowed on approval, signed.

A real guest (``tests/guests/fetcher``) is run by ``wactor call`` in a subprocess against a
recording server on loopback, so what an operator approved is what the guest can reach.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import guest_binary
from httpserver import TestServer, serving

_ENTRY = "import wactor.cli._security; from wactor.cli import main; main()"


def wactor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _ENTRY, *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def web() -> Iterator[TestServer]:
    with serving() as server:
        yield server


@pytest.fixture
def app(tmp_path: Path, web: TestServer) -> Path:
    """A host config with one unknown component asking for two network grants."""
    folder = tmp_path / "fetch"
    folder.mkdir()
    shutil.copy(guest_binary("fetcher"), folder / "fetch.wasm")
    (folder / "component.toml").write_text(
        '[component]\nid = "t/fetch/0"\nwasm = "fetch.wasm"\n\n[resources]\ntimeout-ms = 30000\n\n'
        f'[capabilities.network]\nconnect = ["127.0.0.1:{web.port}", "localhost:*"]\n'
    )
    config = tmp_path / "wactor.toml"
    config.write_text('state-dir = "state"\ncomponents = ["fetch/component.toml"]\n')
    return config


def _call(app: Path, *urls: str) -> subprocess.CompletedProcess[str]:
    payloads = [json.dumps({"url": url}) for url in urls]
    return wactor("call", "t/fetch/0", *payloads, "--config", str(app))


def _answers(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _pending(app: Path) -> list[dict[str, object]]:
    listed = wactor("approvals", "list", "--status", "pending", "--json", "-c", str(app))
    return [json.loads(line) for line in listed.stdout.splitlines()]


def test_network_grants_are_listed_narrowed_on_approval_and_the_guest_gets_only_those(
    app: Path, web: TestServer
) -> None:
    refused = _call(app, web.url("/ok"))
    assert refused.returncode == 3
    assert "waits for approval" in refused.stderr
    row = wactor("approvals", "list", "--config", str(app)).stdout.splitlines()[1]
    assert f"connect=127.0.0.1:{web.port},localhost:*" in row
    [request] = _pending(app)
    assert request["requested"]["network"] == {  # type: ignore[index]
        "connect": [f"127.0.0.1:{web.port}", "localhost:*"]
    }
    assert web.accepted == 0

    wider = json.dumps({"network": {"connect": ["*:*"]}})
    refused = wactor("approvals", "approve", "t/fetch/0", "--narrow", wider, "-c", str(app))
    assert refused.returncode == 2
    assert "narrowing may only remove" in refused.stderr

    narrow = json.dumps({"network": {"connect": [f"127.0.0.1:{web.port}"]}})
    approved = wactor("approvals", "approve", "t/fetch/0", "--narrow", narrow, "-c", str(app))
    assert approved.returncode == 0, approved.stderr
    assert f"connect=127.0.0.1:{web.port} " in approved.stdout

    granted, removed = _answers(_call(app, web.url("/ok"), web.url("/ok", host="localhost")))

    assert granted["status"] == 200
    assert removed == {
        "error": "denied",
        "detail": f"t/fetch/0: localhost:{web.port} is not granted by [capabilities.network] "
        "connect",
    }
    assert [seen.header("Host") for seen in web.seen] == [f"127.0.0.1:{web.port}"]
    # the table shows what was asked for and, narrowed, what was granted
    row = wactor("approvals", "list", "-c", str(app)).stdout.splitlines()[1]
    assert f"connect=127.0.0.1:{web.port},localhost:*" in row
    assert row.count(f"connect=127.0.0.1:{web.port}") == 2
    assert row.count("localhost") == 1


def test_a_changed_network_grant_needs_a_new_approval(app: Path, web: TestServer) -> None:
    _call(app, web.url("/ok"))
    assert wactor("approvals", "approve", "t/fetch/0", "-c", str(app)).returncode == 0
    assert _answers(_call(app, web.url("/ok")))[0]["status"] == 200
    manifest = app.parent / "fetch" / "component.toml"
    manifest.write_text(manifest.read_text().replace('"localhost:*"', '"*:*"'))

    again = _call(app, web.url("/ok"))

    assert again.returncode == 3
    assert "waits for approval" in again.stderr
    [request] = _pending(app)
    assert request["requested"]["network"] == {  # type: ignore[index]
        "connect": [f"127.0.0.1:{web.port}", "*:*"]
    }
    assert len(web.seen) == 1


def test_a_signature_covers_the_network_grants(app: Path, web: TestServer, tmp_path: Path) -> None:
    manifest = app.parent / "fetch" / "component.toml"
    assert wactor("keygen", "--out", str(tmp_path / "keys" / "k")).returncode == 0
    assert wactor("sign", str(manifest), "--key", str(tmp_path / "keys" / "k")).returncode == 0
    app.write_text(app.read_text() + f'\n[trust]\nkeys = ["{tmp_path / "keys" / "k.pub"}"]\n')
    assert _answers(_call(app, web.url("/ok")))[0]["status"] == 200  # signed: trusted

    manifest.write_text(manifest.read_text().replace('"localhost:*"', '"localhost:*", "*:*"'))
    widened = _call(app, web.url("/ok"))

    assert widened.returncode == 3
    assert (
        widened.stderr
        == f"error: {manifest}: signature rejected: the manifest changed after signing\n"
    )
    assert len(web.seen) == 1
    assert _pending(app) == []
