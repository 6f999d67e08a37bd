"""The control socket of a host: requests reach the host, and no peer can disturb it.

A real host with real components behind a real Unix socket; peers are raw sockets that send
what a hostile local process could.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ManifestFactory, wat_binary
from wactor.cli._remote import RunningHost
from wactor.errors import (
    ApprovalPendingError,
    ComponentError,
    HostConfigError,
    TargetNotFoundError,
)
from wactor.host import Host, HostConfig
from wactor.host._control import CONTROL_DIR, SOCKET_NAME, ControlServer, socket_address
from wactor.host._control_wire import (
    HEADER_SIZE,
    decode_error,
    decode_message,
    encode_bytes,
    encode_frame,
)
from waiting import wait_busy, wait_until

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
NOBODY = 65534


class Peer:
    """A raw client of the control socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, control: ControlServer, *, greeted: bool = True) -> Peer:
        fd = os.open(control.directory, os.O_PATH | os.O_DIRECTORY)
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(socket_address(control.directory, fd, SOCKET_NAME))
        finally:
            os.close(fd)
        peer = cls(*await asyncio.open_unix_connection(sock=sock))
        if greeted:
            hello = await peer.read()
            assert hello["wactor"] == "control"
        return peer

    async def read(self) -> dict[str, Any]:
        header = await self.reader.readexactly(HEADER_SIZE)
        return decode_message(await self.reader.readexactly(int.from_bytes(header, "big")))

    async def request(self, op: str, **args: Any) -> dict[str, Any]:
        self.writer.write(encode_frame({"op": op, "args": args}))
        return await self.read()

    async def closed(self) -> bool:
        """Read to the end of what the host sends; whether it closed the connection there."""
        await self.reader.read()
        return self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def control(host: Host, manifest: ManifestFactory) -> AsyncIterator[ControlServer]:
    """The control socket of ``host`` (running an echo), with short deadlines for peers."""
    await host.start(manifest("test/echo/0", wat_binary("echo")))
    async with ControlServer.open(
        host.config, idle_timeout=0.5, frame_timeout=0.5, max_connections=4
    ) as server:
        server.serve(host)
        yield server


async def _echo_works(control: ControlServer) -> None:
    peer = await Peer.connect(control)
    hi = encode_bytes(b"hi")
    answer = await peer.request("call", target="test/echo/0", payload=hi, timeout=5)
    peer.close()
    assert answer == {"ok": True, "result": {"reply": hi}}


async def test_a_call_reaches_the_running_instance(control: ControlServer) -> None:
    await _echo_works(control)


async def test_a_host_error_crosses_as_its_type_message_and_exit_code(
    control: ControlServer,
) -> None:
    peer = await Peer.connect(control)
    answer = await peer.request("call", target="nope/x/0", payload="", timeout=5)
    error = decode_error(answer["error"])
    assert isinstance(error, TargetNotFoundError)
    assert (str(error), error.exit_code) == ("target not found: nope/x/0", 5)
    peer.close()


async def test_a_missing_target_is_answered_as_an_embedded_host_answers_it(
    host_config: HostConfig, manifest: ManifestFactory
) -> None:
    unreadable = manifest("test/echo/0", wat_binary("echo"))
    unreadable.write_text(unreadable.read_text().replace('id = "test/echo/0"', "id = 42"))
    config = dataclasses.replace(host_config, components=(unreadable,))
    async with Host.open(config) as host, ControlServer.open(config) as server:
        server.serve(host)
        peer = await Peer.connect(server)
        answer = await peer.request("call", target="test/echo/0", payload="", timeout=5)
        peer.close()
    error = decode_error(answer["error"])  # the manifest it may have meant, as `wactor call` says
    assert (type(error).__name__, error.exit_code) == ("ManifestError", 2)
    assert str(error).startswith(f"{unreadable}: component.id: ")


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"op": "launch-missiles"}, "unknown control request 'launch-missiles'"),
        ({"op": 7}, "unknown control request 7"),
        ({"op": "call", "args": []}, "call: args must be a JSON object"),
        ({"op": "call", "args": {"target": 1}}, "call: target must be text"),
        (
            {"op": "call", "args": {"target": "test/echo/0", "payload": "", "timeout": "inf"}},
            "call: timeout must be a number of seconds",
        ),
        (
            {"op": "call", "args": {"target": "test/echo/0", "payload": "", "timeout": 1e9}},
            "call: timeout must be more than 0 and at most 86400 seconds",
        ),
        ({"op": "start", "args": {"manifest": "relative.toml"}}, "must be an absolute path"),
        ({"op": "audit", "args": {"limit": -1}}, "limit must be a whole number"),
    ],
)
async def test_a_bad_request_is_an_error_answer_and_the_connection_goes_on(
    control: ControlServer, request_: dict[str, Any], expected: str
) -> None:
    peer = await Peer.connect(control)
    peer.writer.write(encode_frame(request_))
    answer = await peer.read()
    assert answer["ok"] is False
    assert expected in answer["error"]["message"]
    assert (await peer.request("ping"))["ok"] is True
    peer.close()


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # read as a frame of 1.2 GB: refused unread
        b"\x00\x00\x00\x05hello",  # a frame that is not JSON
        b"\x00\x00\x00\x02[]",  # JSON, not an object
        b"\xff\xff\xff\xff",  # the largest frame there is
    ],
)
async def test_garbage_is_answered_once_and_closed_and_the_host_goes_on(
    control: ControlServer, garbage: bytes
) -> None:
    peer = await Peer.connect(control)
    peer.writer.write(garbage)
    answer = await peer.read()
    assert answer["ok"] is False
    assert answer["error"]["type"] == "InvalidMessageError"
    assert await peer.closed()
    await _echo_works(control)


async def test_half_a_frame_then_silence_is_closed_and_others_are_served(
    control: ControlServer,
) -> None:
    silent = await Peer.connect(control)
    silent.writer.write(b"\x00\x00\x01\x00" + b'{"op": "pi')
    await _echo_works(control)  # served while the other one dawdles
    assert await silent.closed()
    await _echo_works(control)


async def test_a_peer_that_says_nothing_is_closed(control: ControlServer) -> None:
    mute = await Peer.connect(control, greeted=False)
    assert await mute.closed()  # after its greeting, nothing more: then the end


async def test_connections_past_the_bound_are_closed_and_the_rest_served(
    control: ControlServer,
) -> None:
    held = [await Peer.connect(control) for _ in range(4)]
    extra = await Peer.connect(control, greeted=False)
    assert await extra.closed()
    assert (await held[0].request("ping"))["ok"] is True
    for peer in held:
        peer.close()
    await wait_until(lambda: not control._connections, "the held connections to end")
    await _echo_works(control)


async def test_a_second_host_on_the_same_state_directory_is_refused(
    control: ControlServer,
) -> None:
    with pytest.raises(HostConfigError) as caught:
        async with ControlServer.open(control.config):
            pass
    message = str(caught.value)
    assert f"another wactor host (pid {os.getpid()}) is running" in message
    assert "\n" not in message
    assert control.path.exists()  # the refused one took nothing from the live one
    await _echo_works(control)


async def test_the_socket_is_owner_only_and_removed_on_close(host: Host) -> None:
    directory = host.config.state_dir / CONTROL_DIR
    directory.mkdir(mode=0o777)
    directory.chmod(0o777)  # loosened by someone: tightened before anything is bound
    async with ControlServer.open(host.config) as server:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
        assert stat.S_ISSOCK(server.path.stat().st_mode)
    assert not server.path.exists()
    assert [p.name for p in directory.iterdir()] == ["host.lock"]


async def test_a_stale_socket_is_not_a_host_and_is_replaced(host: Host) -> None:
    directory = host.config.state_dir / CONTROL_DIR
    directory.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(directory / SOCKET_NAME))  # a host killed before it could remove it
    stale.close()
    assert await asyncio.to_thread(RunningHost.find, host.config) is None
    async with ControlServer.open(host.config) as server:
        server.serve(host)
        found = await asyncio.to_thread(RunningHost.find, host.config)
        assert found is not None
        with found:
            pong = await asyncio.to_thread(found.request, "ping")
        assert pong["host_id"] == host.host_id


async def test_a_state_directory_path_longer_than_a_socket_address_works(
    tmp_path: Path, manifest: ManifestFactory
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "state"
    assert len(str(deep / CONTROL_DIR / SOCKET_NAME)) > 108
    config = HostConfig.default(deep, trusted_paths=(tmp_path, wat_binary("echo").parent))
    async with Host.open(config) as host, ControlServer.open(config) as server:
        await host.start(manifest("test/echo/0", wat_binary("echo")))
        server.serve(host)
        await _echo_works(server)


async def test_a_client_that_comes_while_the_host_starts_waits_for_it(host: Host) -> None:
    async with ControlServer.open(host.config) as server:
        finding = asyncio.create_task(asyncio.to_thread(RunningHost.find, host.config))
        await wait_until(lambda: len(server._connections) == 1, "the client to be greeted")
        assert not finding.done()
        server.serve(host)
        found = await finding
        assert found is not None
        with found:
            pong = await asyncio.to_thread(found.request, "ping")
        assert pong["host_id"] == host.host_id


async def test_a_request_in_progress_when_the_host_stops_is_told_so(
    control: ControlServer, host: Host, manifest: ManifestFactory
) -> None:
    looping = manifest(
        "test/loop/0",
        wat_binary("loop"),
        timeout_ms=60_000,
        extra="[supervision]\nshutdown-timeout-ms = 50\n",  # then the host kills it
    )
    await host.start(looping)
    peer = await Peer.connect(control)
    peer.writer.write(
        encode_frame(
            {"op": "call", "args": {"target": "test/loop/0", "payload": "", "timeout": 60}}
        )
    )
    await wait_busy(host, "test/loop/0")
    await control.stop_serving()
    error = decode_error((await peer.read())["error"])
    assert isinstance(error, ComponentError)
    assert str(error) == "the host is stopping; call was not done"
    assert await peer.closed()


# -- approvals take effect in the running host ----------------------------------------------


@pytest.fixture
def untrusted(tmp_path: Path) -> HostConfig:
    """A host config that trusts nothing: every component waits for an operator."""
    return HostConfig.default(tmp_path / "state")


async def test_approving_a_component_of_the_config_starts_it(
    untrusted: HostConfig, manifest: ManifestFactory
) -> None:
    echo = manifest("test/echo/0", wat_binary("echo"))
    config = dataclasses.replace(untrusted, components=(echo,))
    async with Host.open(config) as host, ControlServer.open(config) as server:
        server.serve(host)
        (failure,) = host.load_failures
        assert isinstance(failure.error, ApprovalPendingError)
        peer = await Peer.connect(server)
        answer = await peer.request("approve", ref="test/echo/0")
        assert answer["ok"] is True, answer
        assert answer["result"]["started"] == ["test/echo/0"]
        assert answer["result"]["failed"] == []
        assert host.load_failures == []
        assert await host.request("test/echo/0", b"approved") == b"approved"
        peer.close()


async def test_approving_a_component_given_to_start_starts_it(
    untrusted: HostConfig, manifest: ManifestFactory
) -> None:
    echo = manifest("test/echo/0", wat_binary("echo"))
    async with Host.open(untrusted) as host, ControlServer.open(untrusted) as server:
        server.serve(host)
        peer = await Peer.connect(server)
        refused = await peer.request("start", manifest=str(echo))
        error = decode_error(refused["error"])
        assert isinstance(error, ApprovalPendingError)
        assert error.exit_code == 3
        listed = await peer.request("approvals", status="pending")
        (pending,) = listed["result"]
        answer = await peer.request("approve", ref=pending["id"])
        assert answer["result"]["started"] == ["test/echo/0"]
        assert await host.request("test/echo/0", b"x") == b"x"
        peer.close()


# -- other users ------------------------------------------------------------------------------

_CONNECT_AS_OTHER = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES"); sys.exit(0)
s.settimeout(30)
print("EOF" if s.recv(4096) == b"" else "ANSWERED")
"""


@pytest.fixture
def shared_tmp() -> Any:
    """A directory other users may enter (the test's own tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="wactor-control-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def _python_for_nobody() -> str:
    """A Python interpreter another user may run (this one may live in root's home)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            subprocess.run([candidate, "-c", ""], user=NOBODY, timeout=60, check=True)
        except (OSError, subprocess.SubprocessError):
            continue
        return candidate
    pytest.skip("no Python interpreter that another user may run")


def _connect_as_nobody(path: Path) -> str:
    done = subprocess.run(
        [_python_for_nobody(), "-c", _CONNECT_AS_OTHER, str(path)],
        user=NOBODY,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


@root_only
async def test_another_user_cannot_reach_the_socket(shared_tmp: Path) -> None:
    config = HostConfig.default(shared_tmp / "state")
    shared_tmp.joinpath("state").mkdir(mode=0o755)
    async with Host.open(config) as host, ControlServer.open(config) as server:
        server.serve(host)
        assert await asyncio.to_thread(_connect_as_nobody, server.path) == "EACCES"


@root_only
async def test_another_user_who_gets_through_the_permissions_is_refused_and_audited(
    shared_tmp: Path,
) -> None:
    config = HostConfig.default(shared_tmp / "state")
    shared_tmp.joinpath("state").mkdir(mode=0o755)
    async with Host.open(config) as host, ControlServer.open(config) as server:
        server.serve(host)
        server.directory.chmod(0o777)  # an operator's mistake: the peer check still holds
        server.path.chmod(0o777)
        assert await asyncio.to_thread(_connect_as_nobody, server.path) == "EOF"
        (refused,) = [e for e in host.audit.query(denied_only=True) if e.action == "control"]
        assert refused.target.startswith(f"uid {NOBODY} pid ")
        peer = await Peer.connect(server)
        assert (await peer.request("ping"))["ok"] is True
        peer.close()


@root_only
async def test_a_control_directory_of_another_user_is_refused(host: Host) -> None:
    directory = host.config.state_dir / CONTROL_DIR
    directory.mkdir(mode=0o700)
    os.chown(directory, NOBODY, NOBODY)  # planted by someone else: never used
    with pytest.raises(HostConfigError, match=f"belongs to uid {NOBODY}, not to this user"):
        async with ControlServer.open(host.config):
            pass


_PLANTED_HOST = """
import json, os, socket, struct, sys
directory = sys.argv[1]
os.makedirs(directory)
s = socket.socket(socket.AF_UNIX)
s.bind(os.path.join(directory, "host.sock"))
os.chmod(os.path.join(directory, "host.sock"), 0o777)
s.listen()
print("listening", flush=True)
conn, _ = s.accept()
hello = json.dumps({"wactor": "control", "version": 1, "pid": os.getpid(), "state": "ready"})
try:
    conn.sendall(struct.pack(">I", len(hello)) + hello.encode())
    data = conn.recv(4096)
except OSError:  # the client hung up first
    data = b""
print("request" if data else "nothing", flush=True)
"""


@root_only
def test_a_socket_another_user_planted_is_not_talked_to(shared_tmp: Path) -> None:
    state = shared_tmp / "state"
    state.mkdir(mode=0o777)
    state.chmod(0o777)  # a state directory others can write: someone plants a "host" in it
    planted = subprocess.Popen(
        [_python_for_nobody(), "-c", _PLANTED_HOST, str(state / CONTROL_DIR)],
        user=NOBODY,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert planted.stdout is not None
        assert planted.stdout.readline() == "listening\n"
        with pytest.raises(HostConfigError, match=f"is served by uid {NOBODY}, not by this user"):
            RunningHost.find(HostConfig.default(state))
        assert planted.stdout.readline() == "nothing\n"  # no request reached it
    finally:
        planted.kill()
        planted.wait()
