"""`wactor new NAME --with …`: scaffolds that use wactor's extensions build and run."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from cli.test_call import wactor
from conftest import TRUSTED
from wactor.host import Host, HostConfig
from wactor.tooling._scaffold import render
from wactor.wasm._engine import WORLD_IMPORTS
from waiting import wait_until

# A first build and compile of a scaffold takes minutes on a loaded machine; later runs hit the
# build and compile caches.
COLD_BUILD_S = 600


def _scaffold(tmp_path: Path, name: str, extensions: str) -> Path:
    created = wactor("new", name, "--dir", str(tmp_path), "--with", extensions)
    assert created.returncode == 0, created.stderr
    project = tmp_path / name
    assert f"--with {extensions}" in created.stdout  # the next step names the flag
    built = wactor(
        "build", str(project / "app.py"), "-o", str(project / f"{name}.wasm"), "--with", extensions
    )
    assert built.returncode == 0, built.stderr
    return project


def test_new_refuses_an_unknown_extension(tmp_path: Path) -> None:
    result = wactor("new", "odd", "--dir", str(tmp_path), "--with", "topics,smtp")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "unknown extension 'smtp'; known extensions: http, topics" in line
    assert not (tmp_path / "odd").exists()


def test_a_plain_scaffold_mentions_no_extension(tmp_path: Path) -> None:
    assert wactor("new", "plain", "--dir", str(tmp_path)).returncode == 0
    project = tmp_path / "plain"
    app = (project / "app.py").read_text()
    for word in ("pubsub", "client", "{{"):
        assert word not in app
    manifest = (project / "component.toml").read_text()
    for word in ("network", "subscribe", "{{"):
        assert word not in manifest


@pytest.mark.timeout(COLD_BUILD_S)
async def test_a_topics_scaffold_subscribes_and_publishes(tmp_path: Path) -> None:
    project = _scaffold(tmp_path, "newsy", "topics")
    config = HostConfig.default(tmp_path / "state", trusted_paths=(tmp_path, *TRUSTED))
    async with Host.open(config) as host:
        await host.start(project / "component.toml")
        echoed: list[bytes] = []
        await host.subscribe("newsy.echoed", lambda subject, env: echoed.append(env.payload))
        assert await host.publish("news.today", b"headline") == 1  # subscribed in initialize
        assert await host.publish("weather.today", b"rain") == 0
        assert await host.request("local/newsy/0", b"hello", timeout=60) == b"hello"
        await wait_until(lambda: echoed == [b"hello"], "the echo's publication")
        assert host.audit.query(component="local/newsy/0", denied_only=True) == []


class _Recorder(http.server.BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    _Recorder.paths = []
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.mark.timeout(COLD_BUILD_S)
async def test_an_http_and_topics_scaffold_builds_and_fetches_what_it_is_granted(
    tmp_path: Path, server: http.server.HTTPServer
) -> None:
    project = _scaffold(tmp_path, "caller", "http,topics")
    wasm = (project / "caller.wasm").read_bytes()  # its import names, without compiling it
    assert b"wactor:http/client@0.1.0" in wasm
    assert b"wactor:topics/pubsub@0.1.0" in wasm
    manifest = project / "component.toml"
    assert 'connect = ["api.example.com:443"]' in manifest.read_text()
    if "wactor:http/client@0.1.0" not in WORLD_IMPORTS:
        pytest.skip("this host does not define wactor:http/client yet")
    port = server.server_address[1]
    manifest.write_text(
        manifest.read_text().replace('"api.example.com:443"', f'"127.0.0.1:{port}"')
    )
    config = HostConfig.default(tmp_path / "state", trusted_paths=(tmp_path, *TRUSTED))
    async with Host.open(config) as host:
        await host.start(manifest)
        url = f"http://127.0.0.1:{port}/status"
        reply = await host.request("local/caller/0", f"fetch {url}".encode(), timeout=60)
        assert reply == b'200 {"ok": true}'
        denied = await host.request(
            "local/caller/0", f"fetch http://127.0.0.1:{port + 1}/x".encode(), timeout=60
        )
        assert denied is not None
        assert denied.startswith(b"error HttpError_Denied"), denied
    assert _Recorder.paths == ["/status"]


def test_template_sections_keep_or_drop_whole_lines_and_nest() -> None:
    text = "a\n{{#x}}\nx {{v}}\n{{#y}}\nxy\n{{/y}}\n{{/x}}\nb {{#y}}Y{{/y}}{{^y}}N{{/y}}\n"
    assert render(text, {"x": True, "y": False}, {"v": "1"}) == "a\nx 1\nb N\n"
    assert render(text, {"x": True, "y": True}, {"v": "1"}) == "a\nx 1\nxy\nb Y\n"
    assert render(text, {"x": False, "y": True}, {"v": "1"}) == "a\nb Y\n"
