"""``wactor ps --watch``: the supervision tree, redrawn as the host changes, until Ctrl-C."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cli.test_call import wactor
from cli.test_observe_run import Lines
from conftest import wat_binary, write_host_config, write_manifest
from wactor.cli._run import _write_snapshot
from wactor.errors import GuestError, TrapError
from wactor.host import Host, load_host_config


def _watch(config: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "wactor", "ps", "--watch", "-n", "0.1", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(watch: subprocess.Popen[str]) -> str:
    """Ctrl-C; the error output of the process."""
    watch.send_signal(signal.SIGINT)
    watch.wait(timeout=60)
    assert watch.stderr is not None
    return watch.stderr.read()


async def test_watch_waits_for_a_host_then_follows_its_restarts(tmp_path: Path) -> None:
    components = tmp_path / "components"
    config_path = write_host_config(
        tmp_path,
        [
            write_manifest(components, "test/echo/0", wat_binary("echo")),
            write_manifest(components, "test/trap/0", wat_binary("trap")),
        ],
    )
    config = load_host_config(config_path)
    watch = _watch(config_path)
    out = Lines(watch.stdout)
    try:
        out.wait_for(r"^no host running with this config", "the wait for a host")
        async with Host.open(config) as host:
            status = config.state_dir / "status.json"
            _write_snapshot(host, status)
            out.wait_for(r"^\s+test/trap/0 ready .*restarts=0", "the tree of the host")
            with pytest.raises(TrapError):
                await host.request("test/trap/0", b"boom")
            await host.wait_event("restarted", "test/trap/0")
            _write_snapshot(host, status)
            line = out.wait_for(r"^\s+test/trap/0 ready .*restarts=1", "the restart").string
            assert "failed=1" in line
            assert "unreachable" in line
            assert out.wait_for(r"^wactor ps --watch · every 0\.1 s", "the heading")
    finally:
        err = _stop(watch)
    assert watch.returncode == 0
    assert err == ""


def test_watch_on_a_terminal_redraws_in_place_and_stops_cleanly(tmp_path: Path) -> None:
    config = write_host_config(tmp_path, [])
    primary, secondary = pty.openpty()
    watch = subprocess.Popen(
        [sys.executable, "-m", "wactor", "ps", "--watch", "-n", "0.1", "--config", str(config)],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    seen = bytearray()
    two_frames = threading.Event()

    def read() -> None:
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen.extend(chunk)
            if seen.count(b"\x1b[H") >= 2:
                two_frames.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert two_frames.wait(120), bytes(seen)
    finally:
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=60)
        reader.join(timeout=10)
        os.close(primary)
    assert watch.returncode == 0
    text = bytes(seen).decode(errors="replace")
    assert "no host running with this config" in text
    assert "Traceback" not in text
    assert "KeyboardInterrupt" not in text


def test_watch_and_json_do_not_go_together(tmp_path: Path) -> None:
    config = write_host_config(tmp_path, [])
    done = wactor("ps", "--watch", "--json", "--config", str(config))
    assert done.returncode == 2
    assert "--json and --watch do not go together" in done.stderr


@pytest.mark.parametrize("interval", ["0", "-1", "nan", "soon"])
def test_watch_interval_must_be_a_positive_number_of_seconds(tmp_path: Path, interval: str) -> None:
    config = write_host_config(tmp_path, [])
    done = wactor("ps", "--watch", "--interval", interval, "--config", str(config))
    assert done.returncode == 2
    assert re.search(r"Invalid value for '--interval'", done.stderr)


async def test_ps_cuts_a_guests_long_error_text_short(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "components", "test/liar/0", wat_binary("liar"))
    config_path = write_host_config(tmp_path, [manifest])
    config = load_host_config(config_path)
    async with Host.open(config) as host:
        with pytest.raises(GuestError):
            await host.request("test/liar/0", b"e" * 100_000)
        _write_snapshot(host, config.state_dir / "status.json")
    shown = wactor("ps", "--config", str(config_path))
    assert shown.returncode == 0, shown.stderr
    (line,) = [ln for ln in shown.stdout.splitlines() if "test/liar/0" in ln]
    assert "failed=1" in line
    assert "eeee…" in line
    assert len(line) < 500
