"""The CLI against a running ``wactor run``: real processes, real components, real exit codes."""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cli.test_call import wactor
from conftest import ROOT, guest_binary, wat_binary, write_host_config, write_manifest
from wactor.cli._remote import RunningHost
from wactor.host import load_host_config
from wactor.host._control import control_socket_path
from wactor.host._control_wire import decode_bytes, encode_bytes
from waiting import poll_until


def _snapshot(config: Path) -> dict[str, Any] | None:
    found = RunningHost.find(load_host_config(config))
    if found is None:
        return None
    with found:
        snapshot: dict[str, Any] = found.request("ps")
    return snapshot


@contextmanager
def running(config: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``wactor run CONFIG`` until the block ends, answering its control socket."""
    log = config.parent / f"run-{len(list(config.parent.glob('run-*.log')))}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wactor", "run", str(config)], stdout=out, stderr=out
        )
    try:
        poll_until(
            lambda: proc.poll() is not None or _snapshot(config) is not None,
            "the host to answer its control socket",
        )
        assert proc.poll() is None, log.read_text()
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def _component(config: Path, cid: str) -> dict[str, Any] | None:
    snapshot = _snapshot(config)
    assert snapshot is not None
    children = snapshot["tree"]["children"]
    return next((c for c in children if c["id"] == cid), None)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A host config with the example counter (its count lives in the instance) and a trap."""
    components = tmp_path / "components"
    counter = components / "counter"
    counter.mkdir(parents=True)
    text = (ROOT / "examples" / "counter" / "component.toml").read_text()
    wasm = guest_binary("examples/counter")
    (counter / "component.toml").write_text(
        text.replace('wasm = "counter.wasm"', f'wasm = "{wasm}"')
    )
    trap = write_manifest(components, "test/trap/0", wat_binary("trap"))
    return write_host_config(tmp_path, [counter / "component.toml", trap])


def test_call_reaches_the_running_instance_and_its_count_goes_on(app: Path) -> None:
    with running(app):
        first = wactor("call", "demo/counter/0", "a", "--config", str(app))
        second = wactor("call", "demo/counter/0", "b", "c", "--config", str(app))
        shown = wactor("ps", "--config", str(app))
    assert (first.returncode, first.stdout, first.stderr) == (0, "memory=1 stored=1\n", "")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == ["memory=2 stored=2", "memory=3 stored=3"]
    assert shown.returncode == 0, shown.stderr
    (line,) = [ln for ln in shown.stdout.splitlines() if "demo/counter/0" in ln]
    assert "processed=3" in line


def test_errors_from_the_running_host_are_the_same_one_line_and_exit_code(app: Path) -> None:
    with running(app):
        trapped = wactor("call", "test/trap/0", "boom", "--config", str(app))
        missing = wactor("call", "nope/x/0", "hi", "--config", str(app))
        as_json = wactor("call", "nope/x/0", "hi", "--json", "--config", str(app))
        letters = wactor("dead-letters", "--config", str(app))
    assert trapped.returncode == 4
    assert trapped.stderr.startswith("error: test/trap/0: ")
    assert "trapped" in trapped.stderr
    assert trapped.stderr.count("\n") == 1
    assert (missing.returncode, missing.stderr) == (5, "error: target not found: nope/x/0\n")
    assert as_json.returncode == 5
    assert '"type": "TargetNotFoundError"' in as_json.stdout
    assert letters.returncode == 0, letters.stderr
    assert "test/trap/0 request from wactor/host/0" in letters.stdout


def test_stop_and_start_act_on_the_running_host(app: Path) -> None:
    with running(app):
        assert wactor("call", "demo/counter/0", "a", "--config", str(app)).returncode == 0
        stopped = wactor("stop", "demo/counter/0", "--config", str(app))
        gone = _component(app, "demo/counter/0")
        refused = wactor("call", "demo/counter/0", "b", "--config", str(app))
        # a relative MANIFEST is the client's: resolved where the command runs
        started = wactor(
            "start", "counter/component.toml", "--config", str(app), cwd=app.parent / "components"
        )
        back = _component(app, "demo/counter/0")
        fresh = wactor("call", "demo/counter/0", "c", "--config", str(app))
    assert (stopped.returncode, stopped.stdout) == (0, "stopped demo/counter/0\n")
    assert gone is None
    assert (refused.returncode, refused.stderr) == (5, "error: target not found: demo/counter/0\n")
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith("started demo/counter/0 v0.1.0 (sha256 ")
    assert back is not None
    assert back["state"] == "ready"
    assert fresh.stdout == "memory=1 stored=2\n"  # a new instance; its storage kept


def test_lifecycle_verbs_without_a_running_host_say_so(app: Path) -> None:
    manifest = str(app.parent / "components" / "counter" / "component.toml")
    for args in (
        ("start", manifest),
        ("stop", "demo/counter/0"),
        ("restart", "demo/counter/0"),
        ("reload", "demo/counter/0"),
    ):
        result = wactor(*args, "--config", str(app))
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr == (
            f"error: no wactor host is running with --config {app} (start one with `wactor run`)\n"
        )


def test_a_second_host_on_the_same_config_is_refused_in_one_line(app: Path) -> None:
    with running(app) as first:
        second = wactor("run", str(app))
        still = wactor("call", "demo/counter/0", "a", "--config", str(app))
    assert second.returncode == 2
    assert second.stderr == (
        f"error: {app}: another wactor host (pid {first.pid}) is running with state directory "
        f"{app.parent / 'state'}; stop it first, or give this host another state-dir\n"
    )
    assert still.stdout == "memory=1 stored=1\n"


def test_a_killed_host_leaves_a_stale_socket_that_call_falls_back_from_and_run_replaces(
    app: Path,
) -> None:
    with running(app) as killed:
        assert wactor("call", "demo/counter/0", "a", "--config", str(app)).returncode == 0
        killed.kill()
        killed.wait(timeout=60)
    assert control_socket_path(app.parent / "state").exists()  # nobody removed it
    embedded = wactor("call", "demo/counter/0", "b", "--config", str(app))
    assert (embedded.returncode, embedded.stdout, embedded.stderr) == (
        0,
        "memory=1 stored=2\n",
        "",
    )
    stop = wactor("stop", "demo/counter/0", "--config", str(app))
    assert stop.returncode == 2
    assert "no wactor host is running" in stop.stderr
    with running(app):
        first = wactor("call", "demo/counter/0", "c", "--config", str(app))
        second = wactor("call", "demo/counter/0", "d", "--config", str(app))
    assert (first.stdout, second.stdout) == ("memory=1 stored=3\n", "memory=2 stored=4\n")


def test_the_host_dying_mid_call_is_one_line_and_exit_code_4(tmp_path: Path) -> None:
    looping = write_manifest(
        tmp_path / "components", "test/loop/0", wat_binary("loop"), timeout_ms=60_000
    )
    config = write_host_config(tmp_path, [looping])
    with running(config) as host:
        command = ["call", "test/loop/0", "spin", "--timeout", "120", "--config", str(config)]
        call = subprocess.Popen(
            [sys.executable, "-m", "wactor", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            poll_until(
                lambda: (_component(config, "test/loop/0") or {}).get("depth") == 1,
                "the running host to be handling the call",
            )
            host.kill()
            out, err = call.communicate(timeout=60)
        finally:
            call.kill()
    assert call.returncode == 4
    assert out == ""
    assert err == (
        f"error: {config}: the host (pid {host.pid}) went away before it answered call\n"
    )


def test_approving_while_the_host_runs_starts_the_waiting_component(tmp_path: Path) -> None:
    echo = write_manifest(tmp_path / "components", "test/echo/0", wat_binary("echo"))
    config = tmp_path / "wactor.toml"
    config.write_text(f'state-dir = "state"\ncomponents = ["{echo}"]\n')  # trusts nothing
    with running(config):
        before = wactor("call", "test/echo/0", "hi", "--config", str(config))
        listed = wactor("approvals", "list", "--status", "pending", "--config", str(config))
        approved = wactor("approvals", "approve", "test/echo/0", "--config", str(config))
        after = wactor("call", "test/echo/0", "hi", "--config", str(config))
        audited = wactor("audit", "--component", "test/echo/0", "--config", str(config))
    assert before.returncode == 3
    assert "waits for approval" in before.stderr
    assert "test/echo/0  pending" in listed.stdout
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.splitlines()[1:] == ["started test/echo/0"]
    assert (after.returncode, after.stdout) == (0, "hi\n")
    events = [line.split()[2] for line in audited.stdout.splitlines()[1:]]
    assert events[-3:] == ["approved", "grant", "start"]


def test_restart_gives_the_component_a_fresh_instance(app: Path) -> None:
    with running(app):
        before = wactor("call", "demo/counter/0", "a", "b", "--config", str(app))
        restarted = wactor("restart", "demo/counter/0", "--config", str(app))
        after = wactor("call", "demo/counter/0", "c", "--config", str(app))
        missing = wactor("restart", "nope/x/0", "--config", str(app))
    assert before.stdout.splitlines() == ["memory=1 stored=1", "memory=2 stored=2"]
    assert (restarted.returncode, restarted.stdout) == (0, "restarted demo/counter/0\n")
    assert after.stdout == "memory=1 stored=3\n"  # its memory anew, its storage kept
    assert (missing.returncode, missing.stderr) == (5, "error: target not found: nope/x/0\n")


PROBE = "t/probe/0"


def test_reload_swaps_the_code_under_queued_requests_none_lost(tmp_path: Path) -> None:
    probe = write_manifest(tmp_path / "components", PROBE, guest_binary("probe"), timeout_ms=30_000)
    config = write_host_config(tmp_path, [probe])
    answers: dict[str, bytes | BaseException | None] = {}

    def ask(key: str, payload: bytes) -> None:
        try:
            found = RunningHost.find(load_host_config(config))
            assert found is not None
            with found:
                args = {"target": PROBE, "payload": encode_bytes(payload), "timeout": 120}
                reply = found.request("call", args)["reply"]
            answers[key] = None if reply is None else decode_bytes(reply, "reply")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertions below
            answers[key] = exc

    def depth() -> int:
        return int((_component(config, PROBE) or {}).get("depth", -1))

    with running(config):
        held = threading.Thread(target=ask, args=("held", b"sleep 1500"))
        held.start()
        poll_until(lambda: depth() == 1, "the probe to be handling the held call")
        queued = [
            threading.Thread(target=ask, args=(f"q{i}", f"echo q{i}".encode())) for i in range(8)
        ]
        for thread in queued:
            thread.start()
        poll_until(lambda: depth() == 9, "eight requests queued behind the held one")
        echo = wat_binary("echo")
        reloaded = wactor("reload", PROBE, "--wasm", str(echo), "--config", str(config))
        for thread in (held, *queued):
            thread.join(timeout=120)
        after = wactor("call", PROBE, "after", "--config", str(config))
    assert reloaded.returncode == 0, reloaded.stderr
    digest = hashlib.sha256(echo.read_bytes()).hexdigest()
    assert reloaded.stdout == f"reloaded {PROBE} v1.0.0 (sha256 {digest[:12]})\n"
    assert answers.pop("held") == b"slept"  # the call in progress finished on the old code
    # none lost, none failed: each answered by the old code ("echo X" -> X) or by the new
    # (the WAT echo answers with the payload itself)
    assert sorted(answers) == sorted(f"q{i}" for i in range(8))
    wrong = {k: a for k, a in answers.items() if a not in (k.encode(), f"echo {k}".encode())}
    assert wrong == {}
    assert after.stdout == "after\n"  # the new code answers afterwards


def test_a_reload_to_code_that_fails_its_trust_check_leaves_the_old_code_running(
    app: Path,
) -> None:
    elsewhere = Path(tempfile.mkdtemp(prefix="wactor-untrusted-"))
    try:
        untrusted = shutil.copy(wat_binary("echo"), elsewhere / "echo.wasm")
        with running(app):
            before = wactor("call", "demo/counter/0", "a", "--config", str(app))
            refused = wactor(
                "reload", "demo/counter/0", "--wasm", str(untrusted), "--config", str(app)
            )
            after = wactor("call", "demo/counter/0", "b", "--config", str(app))
    finally:
        shutil.rmtree(elsewhere)
    assert before.stdout == "memory=1 stored=1\n"
    assert refused.returncode == 3
    assert refused.stderr.startswith("error: demo/counter/0 is not trusted and waits for approval")
    assert refused.stderr.count("\n") == 1
    assert after.stdout == "memory=2 stored=2\n"  # the old instance, its memory intact


def test_approving_the_new_code_of_a_waiting_reload_does_the_reload(app: Path) -> None:
    elsewhere = Path(tempfile.mkdtemp(prefix="wactor-untrusted-"))
    try:
        untrusted = shutil.copy(wat_binary("echo"), elsewhere / "echo.wasm")
        with running(app):
            refused = wactor(
                "reload", "demo/counter/0", "--wasm", str(untrusted), "--config", str(app)
            )
            approved = wactor("approvals", "approve", "demo/counter/0", "--config", str(app))
            after = wactor("call", "demo/counter/0", "new code", "--config", str(app))
    finally:
        shutil.rmtree(elsewhere)
    assert refused.returncode == 3
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.splitlines()[1:] == ["reloaded demo/counter/0"]
    assert after.stdout == "new code\n"  # the echo answers now
