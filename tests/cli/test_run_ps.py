"""``wactor run`` until SIGTERM, and ``wactor ps`` showing the supervision tree."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.test_call import wactor
from conftest import wat_binary, write_host_config, write_manifest
from wactor.cli._run import _write_snapshot
from wactor.errors import TrapError
from wactor.host import Host, load_host_config


def test_run_serves_until_sigterm_and_publishes_its_status(tmp_path: Path) -> None:
    components = tmp_path / "components"
    config = write_host_config(
        tmp_path, [write_manifest(components, "test/echo/0", wat_binary("echo"))]
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "wactor", "run", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        status = tmp_path / "state" / "status.json"
        deadline = time.monotonic() + 120
        while not status.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the host never wrote its status"
            time.sleep(0.05)
        shown = wactor("ps", "--config", str(config))
        assert shown.returncode == 0, shown.stderr
        assert "running" in shown.stdout.splitlines()[0]
        assert "host [supervisor one_for_one] running" in shown.stdout
        assert "test/echo/0 ready health=healthy mailbox=0/1024" in shown.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped" in err


async def test_ps_shows_restarts_and_last_failure(tmp_path: Path) -> None:
    components = tmp_path / "components"
    config_path = write_host_config(
        tmp_path,
        [
            write_manifest(components, "test/echo/0", wat_binary("echo")),
            write_manifest(components, "test/trap/0", wat_binary("trap")),
        ],
    )
    config = load_host_config(config_path)
    async with Host.open(config) as host:
        with pytest.raises(TrapError):
            await host.request("test/trap/0", b"boom")
        await host.wait_event("restarted", "test/trap/0")
        _write_snapshot(host, config.state_dir / "status.json")
    shown = wactor("ps", "--config", str(config_path))
    assert shown.returncode == 0, shown.stderr
    (line,) = [ln for ln in shown.stdout.splitlines() if ln.strip().startswith("test/trap/0 ")]
    assert "restarts=1" in line
    assert "failed=1" in line
    assert "last-failure=" in line
    assert "unreachable" in line
    assert "dead letters: 1" in shown.stdout.splitlines()[0]
    raw = json.loads(wactor("ps", "--json", "--config", str(config_path)).stdout)
    assert raw["tree"]["children"][1]["restarts"] == 1
