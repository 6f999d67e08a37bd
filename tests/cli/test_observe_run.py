"""A real ``wactor run`` process with its observe endpoint: /metrics, /api/status, the dashboard
in headless chromium, and ``wactor ps --watch``. Messages reach the host's components from
outside over NATS, as any NATS client can send them."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest

from chromium import Browser
from conftest import wat_binary, write_host_config, write_manifest
from observe_client import fetch_sync, samples, value
from wactor._ids import ComponentId
from wactor.messaging import component_subject
from wactor.testing import NatsServer

COMPONENTS = ("test/echo/0", "test/trap/0", "test/liar/0")


class Lines:
    """The lines a process writes to one of its pipes, read by a thread as they come."""

    def __init__(self, pipe: object) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: object) -> None:
        for line in pipe:  # type: ignore[attr-defined]
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, what: str, timeout: float = 120) -> re.Match[str]:
        """The first line (seen before or after now) that matches ``pattern``."""
        regex = re.compile(pattern)
        for line in self.seen:
            if found := regex.search(line):
                return found
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"timed out waiting for {what}; saw {self.seen}") from None
            if line is None:
                raise AssertionError(f"the process ended before {what}; saw {self.seen}")
            self.seen.append(line)
            if found := regex.search(line):
                return found


@dataclass
class Running:
    """A ``wactor run`` process, its config, its endpoint's URL and the NATS server."""

    proc: subprocess.Popen[str]
    config: Path
    url: str
    nats_url: str
    stderr: Lines


def _request(nats_url: str, target: str, payload: bytes) -> tuple[bytes, dict[str, str]]:
    """One request to a component of the running host, by its NATS subject."""

    async def go() -> tuple[bytes, dict[str, str]]:
        nc = await nats.connect(nats_url)
        try:
            subject = component_subject(ComponentId.parse(target), "default")
            reply = await nc.request(subject, payload, timeout=30)
            return reply.data, dict(reply.headers or {})
        finally:
            await nc.close()

    return asyncio.run(go())


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    components = tmp_path / "components"
    manifests = [
        write_manifest(components, cid, wat_binary(cid.split("/")[1])) for cid in COMPONENTS
    ]
    with NatsServer() as server:
        config = write_host_config(
            tmp_path,
            manifests,
            extra=f'\n[broker]\ntype = "nats"\nurl = "{server.url}"\n\n'
            '[observe]\nlisten = "127.0.0.1:0"\n',
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "wactor", "run", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        stderr = Lines(proc.stderr)
        try:
            url = stderr.wait_for(r"dashboard at (http://\S+/)", "the dashboard's address")[1]
            yield Running(proc, config, url, server.url, stderr)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    assert proc.returncode == 0, stderr.seen


def test_metrics_of_a_running_host_count_what_a_component_handled(running: Running) -> None:
    for i in range(3):
        assert _request(running.nats_url, "test/echo/0", b"hello %d" % i)[0] == b"hello %d" % i

    reply = fetch_sync(running.url, "/metrics")
    assert reply.status == 200
    text = reply.body.decode()
    assert samples(text)  # Prometheus text, as its own parser reads it
    echo = {"component": "test/echo/0"}
    assert value(text, "wactor_component_messages_total", **echo, kind="request") == 3
    assert value(text, "wactor_component_call_duration_seconds_count", **echo, kind="request") == 3
    for cid in COMPONENTS:
        assert value(text, "wactor_component_up", component=cid) == 1
        assert value(text, "wactor_component_restarts_total", component=cid) == 0


def test_status_of_a_running_host_lists_the_tree(running: Running) -> None:
    status = fetch_sync(running.url, "/api/status").json()
    assert status["host"]["pid"] == running.proc.pid
    tree = status["tree"]
    assert tree["id"] == "host"
    assert [c["id"] for c in tree["children"]] == list(COMPONENTS)
    assert {c["state"] for c in tree["children"]} == {"ready"}


def test_run_listen_flag_serves_and_ps_names_the_dashboard(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "components", "test/echo/0", wat_binary("echo"))
    config = write_host_config(tmp_path, [manifest])
    proc = subprocess.Popen(
        [sys.executable, "-m", "wactor", "run", str(config), "--listen", "localhost:0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = Lines(proc.stderr)
    try:
        url = stderr.wait_for(r"dashboard at (http://127\.0\.0\.1:\d+/)", "the address")[1]
        assert fetch_sync(url, "/api/status").status == 200
        status_file = tmp_path / "state" / "status.json"
        deadline = time.monotonic() + 60
        while json.loads(status_file.read_text() or "{}").get("observe") != url:
            assert time.monotonic() < deadline, "the status file never named the dashboard"
            time.sleep(0.05)
        shown = subprocess.run(
            [sys.executable, "-m", "wactor", "ps", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr
        assert f"dashboard at {url}" in shown.stdout.splitlines()[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0, stderr.seen


def test_run_refuses_a_listen_address_that_is_not_loopback(tmp_path: Path) -> None:
    config = write_host_config(tmp_path, [])
    done = subprocess.run(
        [sys.executable, "-m", "wactor", "run", str(config), "--listen", "0.0.0.0:9464"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: --listen: 0.0.0.0:9464 is not a loopback address")
    assert "--allow-remote" in line


_ROWS = """JSON.stringify(Object.fromEntries(
    [...document.querySelectorAll('tr[data-component]')].map((tr) => [
        tr.dataset.component,
        Object.fromEntries([...tr.querySelectorAll('td[data-field]')]
            .map((td) => [td.dataset.field, td.textContent]))])))"""


@pytest.mark.timeout(600)  # the first run may install chromium
def test_dashboard_in_a_headless_browser_shows_every_component_and_a_restart(
    running: Running, tmp_path: Path
) -> None:
    browser = Browser(tmp_path / "chromium")
    try:
        page = browser.open(running.url + "?interval=0.2")
        every = " && ".join(
            f"!!document.querySelector('tr[data-component=\"{c}\"]')" for c in COMPONENTS
        )
        browser.wait_for(page, every, "a row for every component")
        rows = json.loads(browser.evaluate(page, _ROWS))
        assert list(rows) == list(COMPONENTS)
        for cid in COMPONENTS:
            assert rows[cid]["state"] == "ready"
            assert rows[cid]["health"] == "healthy"
            assert rows[cid]["restarts"] == "0"
            assert rows[cid]["failed"] == "0"
            assert rows[cid]["depth"].startswith("0 / 1,024")
        assert browser.evaluate(
            page, "document.querySelector('tr[data-supervisor=\"sup:host\"]') !== null"
        )

        data, headers = _request(running.nats_url, "test/trap/0", b"boom")
        assert "unreachable" in data.decode() + json.dumps(headers)
        trap_row = "document.querySelector('tr[data-component=\"test/trap/0\"]')"
        browser.wait_for(
            page,
            f"{trap_row}.querySelector('[data-field=restarts]').textContent === '1'",
            "the trap's restart on the page",
        )
        rows = json.loads(browser.evaluate(page, _ROWS))
        assert rows["test/trap/0"]["failed"] == "1"
        assert "unreachable" in rows["test/trap/0"]["last_failure"]
        assert rows["test/echo/0"]["restarts"] == "0"
        browser.wait_for(
            page,
            "[...document.querySelectorAll('#dead tbody td')]"
            ".some((td) => td.textContent === 'test/trap/0')",
            "the dead letter on the page",
        )
        cards = browser.evaluate(
            page,
            "Object.fromEntries([...document.querySelectorAll('[data-card]')]"
            ".map((c) => [c.dataset.card, c.lastChild.textContent]))",
        )
        assert cards["dead_letters"] == "1"
        assert cards["restarts"] == "1"
        assert cards["components"] == "3"

        # a guest's text is shown as text, never run as markup
        hostile = (
            b"<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
        )
        _request(running.nats_url, "test/liar/0", hostile)
        liar_row = "document.querySelector('tr[data-component=\"test/liar/0\"]')"
        browser.wait_for(
            page,
            f"{liar_row}.querySelector('[data-field=last_failure]').textContent.includes('<img')",
            "the liar's error text on the page",
        )
        assert browser.evaluate(page, "document.title") == "wactor"
        assert browser.evaluate(page, "document.querySelectorAll('img, main script').length") == 0
        thrown = [e for e in browser.events() if e.get("method") == "Runtime.exceptionThrown"]
        assert not thrown
    finally:
        browser.close()


def test_ps_watch_shows_the_running_tree_and_stops_cleanly_on_ctrl_c(running: Running) -> None:
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wactor",
            "ps",
            "--watch",
            "--interval",
            "0.2",
            "--config",
            str(running.config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = Lines(watch.stdout)
    try:
        out.wait_for(r"^\s*test/trap/0 ready .*restarts=0", "the trap, not yet restarted")
        _request(running.nats_url, "test/trap/0", b"boom")
        line = out.wait_for(r"^\s*test/trap/0 ready .*restarts=1", "the trap's restart").string
        assert "failed=1" in line
    finally:
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=60)
        assert watch.stderr is not None
        err = watch.stderr.read()
    assert watch.returncode == 0
    assert "Traceback" not in err
    assert err == ""


def test_call_with_an_observed_config_serves_no_endpoint_of_its_own(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "components", "test/echo/0", wat_binary("echo"))
    with socket.socket() as taken:  # the port a running host would hold
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_host_config(
            tmp_path, [manifest], extra=f'\n[observe]\nlisten = "127.0.0.1:{port}"\n'
        )
        done = subprocess.run(
            [sys.executable, "-m", "wactor", "call", "test/echo/0", "hi", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hi\n"
