"""The control socket of a running host: ``wactor`` verbs given the same config act on it.

Where: ``<state-dir>/control/host.sock``, in a directory of its own that only the host's user may
enter (0700, owned by that user: checked, and tightened if it is looser), the socket itself 0600.
``host.lock`` beside it stays locked (``flock``) while the host runs, so a second host on the
same state directory is refused, and a socket left behind by a killed host is known to be stale:
the new host binds under a temporary name and renames it over the old one. The socket is removed
on exit.

Every connection is checked (``SO_PEERCRED``): the host's own user or root; anyone else is closed
without a word, and audited. Frames are bounded (:mod:`wactor.host._control_wire`), a peer has a
deadline for each one and for being idle, and connections are bounded in number: a peer that
sends garbage, too much or nothing is closed, and reaches nothing but what its requests ask.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from wactor.errors import ComponentError, HostConfigError, InvalidMessageError, WactorError
from wactor.host._config import HostConfig
from wactor.host._control_address import (
    CONTROL_DIR,
    LOCK_NAME,
    SOCKET_NAME,
    control_socket_path,
    peer_credentials,
    socket_address,
)
from wactor.host._control_ops import ControlOps
from wactor.host._control_wire import (
    HEADER_SIZE,
    PROTOCOL,
    decode_message,
    encode_error,
    encode_frame,
    frame_length,
)
from wactor.host._host import Host

__all__ = [
    "CONTROL_DIR",
    "SOCKET_NAME",
    "ControlServer",
    "control_socket_path",
    "peer_credentials",
    "socket_address",
]

_log = logging.getLogger("wactor.host.control")


def _trusted_uid(uid: int) -> bool:
    return uid in (os.geteuid(), 0)


class ControlServer:
    """Serves the control socket of the host that runs with ``config``.

    Use ``async with ControlServer.open(config) as control:`` around the host, and
    ``control.serve(host)`` once it has started its components: a client that connects earlier
    is told the host is starting and waits.
    """

    def __init__(
        self,
        config: HostConfig,
        *,
        idle_timeout: float = 30.0,
        frame_timeout: float = 10.0,
        max_connections: int = 32,
    ) -> None:
        self.config = config
        self.directory = config.state_dir / CONTROL_DIR
        self.path = self.directory / SOCKET_NAME
        self._idle_timeout = idle_timeout
        self._frame_timeout = frame_timeout
        self._max_connections = max_connections
        # a call's payload, base64 in JSON, plus room for the rest of the request
        self._max_request = max(1 << 20, config.max_payload_bytes * 4 // 3 + (64 << 10))
        self._dir_fd: int | None = None
        self._lock_fd: int | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._ops: ControlOps | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._closed = False

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, config: HostConfig, **kwargs: Any) -> AsyncIterator[ControlServer]:
        """Claim the state directory and serve its control socket until the block ends."""
        server = cls(config, **kwargs)
        try:
            await server.start()
            yield server
        finally:
            await server.close()

    # -- claiming the directory and the socket ------------------------------------------------

    async def start(self) -> None:
        """Lock the state directory for this host and listen on its control socket."""
        self._dir_fd = _private_directory(self.directory, self.config)
        self._lock_fd = _lock(self._dir_fd, self.config)
        temporary = f"{SOCKET_NAME}.{os.getpid()}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary, dir_fd=self._dir_fd)
            sock.bind(socket_address(self.directory, self._dir_fd, temporary))
            os.chmod(temporary, 0o600, dir_fd=self._dir_fd)
            sock.listen(self._max_connections)
            # atomic: a client sees the stale socket or this one, never none or half of one
            os.replace(temporary, SOCKET_NAME, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
        except OSError as exc:
            sock.close()
            raise HostConfigError(
                f"cannot serve the control socket {self.path}: {exc.strerror or exc}",
                file=_config_file(self.config),
                key="state-dir",
            ) from exc
        self._server = await asyncio.start_unix_server(self._connection, sock=sock)

    def serve(self, host: Host) -> None:
        """Answer requests with ``host`` from now on."""
        self._ops = ControlOps(host)
        self._ready.set()

    async def stop_serving(self) -> None:
        """The host is stopping: requests in progress and new ones are told so."""
        self._stopping = True
        await self._end_connections()

    async def close(self) -> None:
        """Stop listening, end every connection, remove the socket, release the lock.

        Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        if self._server is not None:
            self._server.close()
        await self._end_connections()
        if self._dir_fd is not None:
            if self._server is not None:
                with contextlib.suppress(OSError):
                    os.unlink(SOCKET_NAME, dir_fd=self._dir_fd)
            os.close(self._dir_fd)
            self._dir_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock: the socket is gone already
            self._lock_fd = None

    async def _end_connections(self) -> None:
        current = asyncio.current_task()
        tasks = [task for task in self._connections if task is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    # -- one connection -----------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            if not self._admit(writer) or self._closed:
                return
            self._connections.add(task)
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the peer went away, or was too slow: nothing to tell it
        except InvalidMessageError as exc:
            with contextlib.suppress(ConnectionError, RuntimeError):
                writer.write(encode_frame({"ok": False, "error": encode_error(exc)}))
        except Exception:  # noqa: BLE001 - one peer must never take the host down
            _log.exception("control connection failed")
        finally:
            self._connections.discard(task)
            writer.close()

    def _admit(self, writer: asyncio.StreamWriter) -> bool:
        """Whether the peer is the host's user or root; audit anyone else."""
        sock = writer.get_extra_info("socket")
        credentials = None if sock is None else peer_credentials(sock)
        if credentials is None or _trusted_uid(credentials[1]):
            return True
        pid, uid = credentials
        _log.warning("control socket: refused a connection from uid %d (pid %d)", uid, pid)
        if self._ops is not None:
            with contextlib.suppress(WactorError):
                self._ops.host.audit.record(
                    "denial",
                    None,
                    allowed=False,
                    action="control",
                    target=f"uid {uid} pid {pid}",
                    reason="control socket: a connection from another user refused",
                )
        return False

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) > self._max_connections:
            return
        state = "ready" if self._ready.is_set() else "starting"
        hello = {"wactor": "control", "version": PROTOCOL, "pid": os.getpid(), "state": state}
        await self._send(writer, hello)
        if state == "starting":
            await self._ready.wait()
            await self._send(writer, {"state": "ready"})
        while True:
            request = await self._read(reader)
            if request is None:
                return
            await self._send(writer, await self._answer(request))
            if self._stopping:
                return

    async def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        ops = self._ops
        assert ops is not None
        op = request.get("op")
        if self._stopping:
            return _stopping(op)
        try:
            return await ops.answer(request)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._stopping and task is not None:  # the host stops under this request:
                task.uncancel()  # tell the client so, then end the connection
                return _stopping(op)
            raise

    async def _read(self, reader: asyncio.StreamReader) -> dict[str, Any] | None:
        """The next request, or None when the peer closed (or stayed idle too long)."""
        try:
            async with asyncio.timeout(self._idle_timeout):
                header = await reader.readexactly(HEADER_SIZE)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise InvalidMessageError("control frame cut short") from None
            return None
        except TimeoutError:
            return None
        length = frame_length(header, self._max_request)
        async with asyncio.timeout(self._frame_timeout):
            body = await reader.readexactly(length)
        return decode_message(body)

    async def _send(self, writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
        writer.write(encode_frame(message))
        async with asyncio.timeout(self._idle_timeout):  # a peer that does not read is dropped
            await writer.drain()


def _stopping(op: object) -> dict[str, Any]:
    error = ComponentError(f"the host is stopping; {op!s} was not done", case="invalid-state")
    return {"ok": False, "error": encode_error(error)}


def _config_file(config: HostConfig) -> str | None:
    return None if config.path is None else str(config.path)


def _private_directory(directory: Path, config: HostConfig) -> int:
    """Create or check ``directory``: a real directory of this user, nobody else's to enter.

    Return it opened (the checks are made on what was opened, not on a name that could change).
    """

    def refuse(why: str) -> HostConfigError:
        return HostConfigError(
            f"control directory {directory} {why}",
            file=_config_file(config),
            key="state-dir",
            expected="a state directory that belongs to the user running the host",
        )

    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise HostConfigError(
            f"cannot create directory {directory}: {exc.strerror or exc}",
            file=_config_file(config),
            key="state-dir",
            expected="a directory the host can create and write",
        ) from exc
    info = os.fstat(fd)
    if info.st_uid != os.geteuid():
        os.close(fd)
        raise refuse(f"belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.fchmod(fd, 0o700)
    return fd


def _lock(dir_fd: int, config: HostConfig) -> int:
    """Hold the state directory's host lock, or say which host holds it."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(LOCK_NAME, flags, 0o600, dir_fd=dir_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        raise HostConfigError(
            f"another wactor host (pid {holder or '?'}) is running with state directory "
            f"{config.state_dir}; stop it first, or give this host another state-dir",
            file=_config_file(config),
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
